"""The one timer every benchmark reads, and how repetitions are taken and summed up.

``timed`` is the wall clock around one call (``time.perf_counter``); ``times`` repeats it,
between two barriers when ranks must start and end together. A comparison's sides take turns
(``alternate``): their repetitions in a few blocks (``blocks``), each after a pause
(``settle``) and one untimed call, so that a change of the machine's load hits every side
alike and no side shares the cores with the idle threads of the one before it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

ROUNDS = 5  # the repetitions of each side are timed in this many blocks, the sides alternating
SETTLE_S = 0.25  # pause before each block: longer than any library's idle threads spin


def timed(func: Callable[[], object]) -> float:
    """Seconds one call of ``func`` takes (``time.perf_counter``)."""
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def times(func: Callable[[], object], repeats: int,
          barrier: Callable[[], object] | None = None) -> list[float]:
    """Seconds of each of ``repeats`` calls of ``func``; with ``barrier``, each call starts
    after one and is timed up to the end of the next (every rank done)."""
    if barrier is None:
        return [timed(func) for _ in range(repeats)]

    def until_every_rank_is_done() -> None:
        func()
        barrier()

    found = []
    for _ in range(repeats):
        barrier()
        found.append(timed(until_every_rank_is_done))
    return found


def settle(seconds: float = SETTLE_S) -> None:
    """Sleep until the idle worker threads of the side that ran last stop spinning.

    After a step, OpenBLAS's worker threads busy-wait for about 0.1 s (2**28 cycles: ~120 ms of
    CPU measured here) before they sleep, torch's OpenMP threads for a few milliseconds.
    """
    time.sleep(seconds)


def blocks(repeats: int) -> list[int]:
    """The repetitions of each of the ``min(repeats, ROUNDS)`` blocks, ``repeats`` in all."""
    rounds = min(repeats, ROUNDS)
    return [repeats // rounds + (r < repeats % rounds) for r in range(rounds)]


def summary(seconds: list[float]) -> dict:
    """Median, quartiles and extremes of a list of durations, in milliseconds."""
    ms = sorted(1000 * s for s in seconds)
    quartiles = statistics.quantiles(ms, n=4) if len(ms) > 1 else [ms[0]] * 3
    return {"median_ms": statistics.median(ms), "q1_ms": quartiles[0], "q3_ms": quartiles[2],
            "min_ms": ms[0], "max_ms": ms[-1], "samples": len(ms)}


def alternate(sides: dict[str, dict[str, Callable[[], object]]], repeats: int,
              warmup: int) -> dict[str, dict[str, dict]]:
    """Time every work of every side (side -> work name -> function; the first work is the
    whole step): ``warmup`` untimed calls of each first, then the sides in turn, block by block,
    each block a pause, one untimed call of the side's first work (it brings the side's threads
    and buffers back) and the block's repetitions, each timing every work once. Returns the
    ``summary`` of each side's works."""
    for works in sides.values():
        for _ in range(warmup):
            for work in works.values():
                work()
    samples = {side: {name: [] for name in works} for side, works in sides.items()}
    for block in blocks(repeats):
        for side, works in sides.items():
            settle()
            next(iter(works.values()))()
            for _ in range(block):
                for name, work in works.items():
                    samples[side][name].append(timed(work))
    return {side: {name: summary(values) for name, values in found.items()}
            for side, found in samples.items()}
