"""How ``doit`` runs the process of a stage (``python -m bert <stage>``, or the MPI launcher of
the train stage): the action of each task in ``dodo.py``.

- The locks ``doit`` holds are passed down (``bert.workflow.lock``): the stage holds them too, so
  that a stage left running by a killed ``doit`` still keeps every other writer out.
- The stage ends with ``doit``: its process gets SIGTERM when ``doit`` ends (Linux's
  ``PR_SET_PDEATHSIG``, set in the new process before it runs the stage, which survives the
  ``exec`` of the program; the launcher passes the SIGTERM on to the ranks), and a process whose
  ``doit`` ended before that is set leaves at once. The train stage stops after its current
  step with a checkpoint, the others without a partly written file.
- Ctrl-C and SIGTERM: see ``bert.workflow.tasks.running_stage``. A Python stage starts with both
  blocked, and ``python -m bert`` unblocks them once it can stop cleanly, so that one received
  while it starts is not lost nor a traceback.
- The output goes straight to ``doit``'s own (never through a pipe that would break with
  ``doit``), and a stage that exits 0 must have written its last output: a launcher that runs
  nothing (``training.mpiexec: true``) fails instead of passing for a trained model.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from doit.action import CmdAction
from doit.exceptions import TaskError, TaskFailed

from bert.errors import BertError
from bert.workflow.interrupts import running_stage
from bert.workflow.layout import Layout
from bert.workflow.lock import child_process_options, held_locks, take_claimed

if TYPE_CHECKING:
    from bert.workflow.params import Params
    from bert.workflow.stages import Stage

PR_SET_PDEATHSIG = 1  # linux/prctl.h
STOPPING = (signal.SIGINT, signal.SIGTERM)


def _prctl() -> Callable[..., int] | None:
    """The C library's ``prctl`` (Linux), or None."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def end_with_parent(parent: int, prctl: Callable[..., int] | None) -> None:
    """Run in a new child process before it runs its program: receive SIGTERM when the parent
    (pid ``parent``) ends, and leave at once (exit 143) when it already has. ``prctl`` is looked
    up in the parent beforehand: nothing is loaded between fork and exec."""
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(128 + signal.SIGTERM)


@contextlib.contextmanager
def _blocked(signals: tuple[int, ...]) -> Iterator[None]:
    """``signals`` blocked in this thread for the block (a process started meanwhile keeps them
    blocked; they are delivered here when the block ends)."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _stamp(path: Path | None) -> tuple[int, int, int] | None:
    """What tells a file from the one written over it: (device, inode, modification time)."""
    try:
        status = os.stat(path) if path is not None else None
    except OSError:
        return None
    return None if status is None else (status.st_dev, status.st_ino, status.st_mtime_ns)


class StageAction(CmdAction):
    """A doit action running ``command`` as described in the module's docstring.

    written: the file the stage writes last (None: nothing to check); launcher: the value of
    ``training.mpiexec`` when the command is that launcher, for the message when it runs
    nothing."""

    def __init__(self, command: list[str], written: Path | None = None,
                 launcher: str = "") -> None:
        super().__init__(command, shell=False)
        self.written, self.launcher = written, launcher

    def execute(self, out: Any = None, err: Any = None) -> TaskFailed | TaskError | None:
        self.out = self.err = self.result = ""
        try:
            take_claimed()  # the locks of the runs this doit writes, at its first stage
            for lock in held_locks():  # the lock file may have been removed meanwhile
                lock.check()
        except BertError as error:
            return _failed(str(error))
        command = self.expand_action()
        before = _stamp(self.written)
        with running_stage() as stage:
            blocked = STOPPING if command[0] == sys.executable else ()  # a launcher needs them
            with _blocked(blocked):
                process = subprocess.Popen(
                    command, stdout=None if out is not None else subprocess.DEVNULL,
                    preexec_fn=functools.partial(end_with_parent, os.getpid(), _prctl()),
                    **child_process_options())
            stage.started(process)
            process.wait()
        code = process.returncode
        if code:
            failure = TaskError if code > 125 or code < 0 else TaskFailed
            return failure(f"Command failed: '{command}' returned {code}")
        if self.written is not None and _stamp(self.written) in (None, before):
            return _failed(self._wrote_nothing(command))
        return None

    def _wrote_nothing(self, command: list[str]) -> str:
        if self.launcher:
            return (f"training.mpiexec is {self.launcher!r}: it exited 0, but no rank trained "
                    f"({self.written} was not written; the launcher's output, if any, is just "
                    "above); set training.mpiexec to an MPI launcher, e.g. mpiexec")
        return (f"{' '.join(command)} exited 0 without writing {self.written}; run the command "
                "again")


def _failed(message: str) -> TaskFailed:
    """The failure of a task, said in one line on stderr as every error is (doit repeats it in
    its summary)."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    return TaskFailed(message)


def stage_action(record: Stage, command: list[str], layout: Layout,
                 params: Params) -> StageAction:
    """The action running ``command`` for stage ``record`` (its last output is checked)."""
    outputs = layout.files(record.outputs, params)
    training = params.training
    launcher = training.mpiexec if record.name == "train" and training.processes > 1 else ""
    return StageAction(command, outputs[-1] if outputs else None, launcher)
