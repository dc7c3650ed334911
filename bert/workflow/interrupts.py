"""Ctrl-C and SIGTERM: a step is never cut in half, nothing is left half written, and every
stop says in one line what it kept.

In ``doit``: it stops, with exit code 130 (143), wherever it is, without a traceback. Between
stages (or while ``dodo.py`` loads) it stops at once. While a stage runs, it waits: the stage
stops cleanly on its own (a Ctrl-C from the terminal reaches every process of the foreground
group; a SIGTERM sent to ``doit`` alone is passed on to the stage), and ``doit`` stops when the
stage has ended.

In a stage: the train stage turns the signals into a flag checked between steps
(``deferred_interrupts``) and stops after the current step with a checkpoint
(``TrainingInterrupted``); a second Ctrl-C stops at once. Every other stage stops where it is:
every write is atomic. ``interrupted_message`` is the one line each case prints.

This module imports nothing heavy, so that ``dodo.py`` installs doit's handlers before it loads
anything else.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import subprocess


class RunningStage:
    """The stage process doit is running, and the signals doit received meanwhile."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.signals: list[int] = []

    def started(self, process: subprocess.Popen) -> None:
        """The stage's process has started: pass it a SIGTERM that came while it started."""
        self.process = process
        if signal.SIGTERM in self.signals:
            process.send_signal(signal.SIGTERM)


_RUNNING: list[RunningStage] = []


def _stop_or_remember(signum: int, frame: object) -> None:
    """doit's handler of Ctrl-C (SIGINT) and SIGTERM: with no stage running, stop at once;
    during a stage, remember it, and stop when the stage has ended. The stage stops cleanly on
    its own: a Ctrl-C reaches it from the terminal, a SIGTERM is passed on to it."""
    if not _RUNNING:
        what = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        print(f"interrupted ({what}) while no stage was running; the stages that finished are "
              "kept; run `doit` to go on", file=sys.stderr, flush=True)
        raise SystemExit(128 + signum)
    stage = _RUNNING[-1]
    stage.signals.append(signum)
    if signum == signal.SIGTERM and stage.process is not None:
        stage.process.send_signal(signal.SIGTERM)


def leave_interrupts_to_stages() -> None:
    """Make the calling process (doit) stop on Ctrl-C or SIGTERM, with exit code 130 (143),
    wherever it is, without a traceback: at once between stages, and after the running stage
    has stopped cleanly (saying what it kept) during one. See ``running_stage``."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _stop_or_remember)


@contextmanager
def running_stage() -> Iterator[RunningStage]:
    """The block that runs a stage's process (it calls ``started`` with it). Ctrl-C and SIGTERM
    received meanwhile are left to the stage; once the block ends, doit stops (SystemExit with
    128 + the signal's number)."""
    stage = RunningStage()
    _RUNNING.append(stage)
    try:
        yield stage
    finally:
        _RUNNING.remove(stage)
    if stage.signals:
        if stage.process is not None and stage.process.returncode == 0:
            print("interrupted; the stage had finished, and doit stops before its next one; "
                  "run `doit` to go on", file=sys.stderr, flush=True)
        raise SystemExit(128 + stage.signals[0])


# --- in a stage ------------------------------------------------------------------------------


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on a signal at ``step``; ``saved``: a checkpoint of that step was
    written (else a second Ctrl-C stopped at once and the newest checkpoint is at ``step``)."""

    def __init__(self, step: int, saved: bool = True) -> None:
        super().__init__(f"interrupted at step {step}")
        self.step, self.saved = step, saved


@contextmanager
def deferred_interrupts() -> Iterator[list[int]]:
    """Turn SIGINT/SIGTERM into a flag checked between steps, so a step is never cut in half.

    Yields a list that receives the signal numbers. A second Ctrl-C interrupts at once.
    """
    received: list[int] = []

    def handler(signum, frame):
        if received and signum == signal.SIGINT:
            raise KeyboardInterrupt
        received.append(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def interrupted_message(interrupt: KeyboardInterrupt) -> str:
    """What a Ctrl-C left behind, in one line."""
    step = getattr(interrupt, "step", None)
    if step is None:  # every write is atomic: no partly written file was left
        return "interrupted; no partly written file was left; run `doit` to go on"
    if getattr(interrupt, "saved", True):
        return f"interrupted at step {step}; checkpoint saved; run `doit train` to resume"
    if step == 0:
        return "interrupted before the first checkpoint; run `doit train` to start again"
    return (f"interrupted; the newest checkpoint (step {step}) is intact; run `doit train` "
            "to resume from it")
