"""How the train stage is started: one process, or ``<mpiexec> -n N`` ranks of the same
command.

The launcher (``training.mpiexec``, e.g. ``mpiexec``, ``srun`` or ``mpiexec -f hosts``) is
looked up next to the running Python first, where the ``mpich`` wheel installs ``mpiexec``,
then on PATH.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path

from bert.errors import ParamsError
from bert.parallel.extra import MPI_MISSING, mpi_available
from bert.workflow.params import Params


def find_launcher(command: str) -> list[str]:
    """``command`` split into words, its program resolved to a path; ParamsError if not found."""
    words = shlex.split(command)
    program = words[0] if words else ""
    beside_python = Path(sys.executable).parent / program
    if program and "/" not in program and beside_python.is_file():
        found = str(beside_python)
    else:
        found = shutil.which(program) if program else None
    if found is None:
        raise ParamsError(
            f"training.mpiexec is {command!r}: {program or 'it'} is not found next to "
            f"{sys.executable} nor on PATH; install MPI with pip install -e \".[mpi]\" or set "
            "training.mpiexec to your site's launcher")
    return [found, *words[1:]]


def train_command(params: Params, command: list[str], source: str) -> list[str]:
    """The command of the train stage, ``command`` (``python -m bert train ...``), run by
    ``<mpiexec> -n N`` when ``training.processes`` is N > 1. ParamsError naming ``source`` (the
    parameters file) when MPI is missing."""
    processes = params.training.processes
    if processes == 1:
        return command
    try:
        if not mpi_available():
            raise ParamsError(f"training.processes is {processes}, but {MPI_MISSING}")
        launcher = find_launcher(params.training.mpiexec)
    except ParamsError as error:
        raise ParamsError(f"{source}: {error}") from None
    return [*launcher, "-n", str(processes), *command]
