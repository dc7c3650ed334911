"""Progress bars that fit where they are shown.

A stage shows a bar (tqdm, on stderr) only when ``logging.progress_bar`` asks for one and stderr
is a terminal. In a file or a pipe (``doit > log.txt 2>&1``, a CI log) it shows nothing, so that
the log holds the stages' own lines alone (one per epoch for training), without a carriage
return. While a bar is shown, the package's log lines are written above it, not into it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import TextIO

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal (False for a file, a pipe, or a closed stream)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


@contextmanager
def progress_bar(enabled: bool, **options) -> Iterator[tqdm]:
    """A tqdm bar on stderr, drawn only when ``enabled`` (``logging.progress_bar``) and stderr is
    a terminal; otherwise a bar that draws nothing. ``options`` are tqdm's (``total``,
    ``initial``, ``unit``, ``desc``)."""
    shown = enabled and is_terminal(sys.stderr)
    with ExitStack() as stack:
        if shown:
            stack.enter_context(logging_redirect_tqdm([logging.getLogger("bert")]))
        options = {"dynamic_ncols": True, "mininterval": 0.5, **options}
        yield stack.enter_context(tqdm(disable=not shown, file=sys.stderr, **options))


@contextmanager
def phase_bar(enabled: bool, what: str, phases: Sequence[str]) -> Iterator[Callable[[str], None]]:
    """A bar over work done in named ``phases``, in order: the callback it yields starts the
    phase it is given (shown beside ``what``); the bar is full when the block ends."""
    with progress_bar(enabled, total=len(phases), unit="phase", desc=what) as bar:
        def begin(phase: str) -> None:
            bar.set_description(f"{what}: {phase}", refresh=False)
            bar.update(phases.index(phase) - bar.n)

        yield begin
        bar.set_description(what, refresh=False)
        bar.update(len(phases) - bar.n)
