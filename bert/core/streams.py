"""The random streams of training, each keyed by what it is for, so that every draw depends on
the seed and its own key alone: never on the process, the thread, the batching or a restart.

- the order of the examples in epoch ``e``: a permutation drawn from ``(seed, ORDER, e)``;
- the dropout masks of micro-batch ``i`` of step ``s``: drawn from ``(seed, DROPOUT, s, i)``;
- the default dropout generator of a model made from ``seed`` (``model_rng``).

So a run stopped anywhere and resumed from a checkpoint, or split over other numbers of threads
or processes, draws exactly what a run that never stopped would have drawn.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

DROPOUT, ORDER = 1, 2  # the streams' keys, after the seed


def model_rng(seed: int) -> np.random.Generator:
    """The dropout generator of a model made from ``seed`` (``bert.BertForPreTraining``)."""
    return np.random.default_rng([seed, DROPOUT])


@functools.lru_cache(maxsize=1)  # drawn once per epoch, not once per step
def epoch_order(seed: int, epoch: int, num_examples: int) -> np.ndarray:
    """The order (N,) in which epoch ``epoch`` visits the examples (read-only)."""
    order = np.random.default_rng([seed, ORDER, epoch]).permutation(num_examples)
    order.flags.writeable = False
    return order


def dropout_streams(seed: int, step: int) -> Callable[[int], np.random.Generator]:
    """The dropout generator of each micro-batch of step ``step`` (0-based): index -> Generator.

    Keyed by the step and the micro-batch alone, never by who computes it."""
    return lambda index: np.random.default_rng([seed, DROPOUT, step, index])
