"""Ctrl-C and SIGTERM: a step is never cut in half, and every stop says what it kept.

The train stage turns the signals into a flag checked between steps (``deferred_interrupts``)
and stops after the current step with a checkpoint (``TrainingInterrupted``); a second Ctrl-C
stops at once. Every other stage stops where it is: every write is atomic, so no partly written
file is left. ``interrupted_message`` is the one line each case prints.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager


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


def leave_interrupts_to_stages() -> None:
    """Make the calling process (doit) wait through Ctrl-C instead of dying with a traceback.

    The running stage, a child process, still receives the Ctrl-C (handlers are reset in a new
    program): it stops cleanly, saying what it kept, and doit then reports the task as failed.
    """
    signal.signal(signal.SIGINT, lambda signum, frame: None)


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
