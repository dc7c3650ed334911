"""The number of threads of the BLAS library NumPy uses, through threadpoolctl.

For the B * NH small matrix products of attention: split over several threads, each product
costs a thread hand-off that can take longer than the product itself, and on a loaded machine a
wait for a time slice (the Mini-size scores alone, measured: 1 s instead of 4 ms). One thread
gives bit-identical results.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import ThreadpoolController


@functools.cache
def _blas_libraries() -> tuple:
    """threadpoolctl's controllers of the BLAS libraries loaded in the process (NumPy's), found
    once."""
    import numpy  # noqa: F401  (the BLAS to find is the one NumPy loads)

    return tuple(ThreadpoolController().select(user_api="blas").lib_controllers)


@contextmanager
def single_blas_thread() -> Iterator[None]:
    """Run the block with one BLAS thread, then restore the previous count.

    threadpoolctl's ``limit`` does the same but reads every library's version and settings at
    each call, several times slower; this reads and sets only the thread counts.
    """
    changed = [(library, library.num_threads) for library in _blas_libraries()]
    changed = [(library, count) for library, count in changed if count != 1]
    for library, _ in changed:
        library.set_num_threads(1)
    try:
        yield
    finally:
        for library, count in changed:
            library.set_num_threads(count)
