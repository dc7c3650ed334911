"""The wall clock every benchmark reads: one call of a function, timed."""

from __future__ import annotations

import time
from collections.abc import Callable


def timed(func: Callable[[], object]) -> float:
    """Seconds one call of ``func`` takes (``time.perf_counter``)."""
    start = time.perf_counter()
    func()
    return time.perf_counter() - start
