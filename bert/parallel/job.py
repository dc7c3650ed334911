"""Joining the MPI job of the train stage: the communicator of the right size, and the check that
every rank resumes from the same step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bert.errors import DataFileError, ParamsError
from bert.parallel.extra import MPI_MISSING, mpi_available
from bert.parallel.mpi import world


def join(processes: int) -> Any:
    """This process's place in the MPI job of ``processes`` ranks (the communicator);
    ParamsError when the job has another size (e.g. started without the launcher)."""
    if not mpi_available():
        raise ParamsError(f"training.processes is {processes}, but {MPI_MISSING}")
    comm = world()
    if comm.Get_size() != processes:
        raise ParamsError(
            f"training.processes is {processes}, but this job has {comm.Get_size()} "
            f"process(es): run `doit train`, or `mpiexec -n {processes} python -m bert train "
            "--params FILE`")
    return comm


def same_start(comm: Any, step: int, folder: Path) -> None:
    """Every rank must resume from the same step (e.g. a copy of a checkpoint on one host can
    be damaged); DataFileError on every rank otherwise."""
    steps = comm.allgather(step)
    if len(set(steps)) > 1:
        raise DataFileError(f"the ranks found different newest checkpoints in {folder} "
                            f"(steps {steps}); give every host the same checkpoint files")
