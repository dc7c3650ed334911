"""The number of threads of the BLAS library NumPy uses, through threadpoolctl.

The compute pool (``bert.engine.pool``) splits every large product into blocks of rows and runs
each block as one BLAS call, so BLAS itself runs on one thread: its own threads would compete
with the pool's (they spin for a while after each call), and on a loaded machine each small
product split over several threads waits for a time slice (the Mini-size attention scores
alone, measured: 1 s instead of 4 ms).
"""

from __future__ import annotations

import functools

from threadpoolctl import ThreadpoolController


@functools.cache
def _blas_libraries() -> tuple:
    """threadpoolctl's controllers of the BLAS libraries loaded in the process (NumPy's), found
    once."""
    import numpy  # noqa: F401  (the BLAS to find is the one NumPy loads)

    return tuple(ThreadpoolController().select(user_api="blas").lib_controllers)


def set_blas_threads(threads: int) -> None:
    """Set the thread count of every BLAS library NumPy loaded (threadpoolctl's ``limit`` does
    the same but reads every library's version and settings at each call)."""
    for library in _blas_libraries():
        library.set_num_threads(threads)
