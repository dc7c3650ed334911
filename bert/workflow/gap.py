"""The gap to the optimum: how much worse than the Bayes-optimal score a model's score is.

One sign convention everywhere (the evaluation table, the results JSON, the text views): a
positive gap is worse than the optimum, for a loss (lower is better) as for an accuracy (higher
is better).
"""

from __future__ import annotations


def higher_is_better(key: str) -> bool:
    """Whether the score called ``key`` (``test_nsp_accuracy``, ``mlm_loss``, …) is better high."""
    return "accuracy" in key


def gap(key: str, score: float, optimum: float) -> float:
    """How much worse than ``optimum`` the score ``score`` called ``key`` is."""
    return optimum - score if higher_is_better(key) else score - optimum
