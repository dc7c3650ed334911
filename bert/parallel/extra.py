"""Whether the mpi extra is installed: found without importing mpi4py (importing it initialises
MPI) or NumPy, so that the workflow can check its parameters before any of the math loads."""

from __future__ import annotations

import importlib.util

MPI_MISSING = 'mpi4py is not installed: pip install -e ".[mpi]"'


def mpi_available() -> bool:
    """Whether mpi4py can be imported (looked up, not imported)."""
    return importlib.util.find_spec("mpi4py") is not None
