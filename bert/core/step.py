"""One optimizer step of pretraining: forward, backward, gradient clipping, AdamW.

The one definition of a training step, used by the train loop, the benchmark and the tests.
The learning rate and the dropout generator come from the caller, so that the step itself holds
no schedule and no randomness of its own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from bert.core.config import BertConfig
from bert.core.model import backward, forward, is_decayed
from bert.core.optim import AdamWConfig, adamw_step, clip_grad_norm, global_norm


class NonFiniteError(ArithmeticError):
    """A loss or the gradient norm of a step is NaN or infinite; nothing was updated."""

    def __init__(self, what: str, value: float) -> None:
        super().__init__(f"the {what} is {value}")
        self.what, self.value = what, value


@dataclass(frozen=True)
class StepResult:
    """What one step measured: the losses of the batch and the gradient norm before clipping."""

    losses: dict[str, float]  # "mlm", "nsp", "total"
    grad_norm: float


def training_step(
    params: dict[str, np.ndarray],
    config: BertConfig,
    batch: Mapping[str, np.ndarray],
    optimizer: dict,
    *,
    lr: float,
    adamw: AdamWConfig,
    max_grad_norm: float,
    rng: np.random.Generator | None,
    mlm_weight: float = 1.0,
    nsp_weight: float = 1.0,
) -> StepResult:
    """Update ``params`` and ``optimizer`` (``bert.core.optim`` state) in place from one batch.

    batch: the five example arrays, (B, T) and (B,). The gradient's global norm is clipped to
    ``max_grad_norm`` (0: no clipping). Raises NonFiniteError, before anything is updated, when
    the loss or the gradient norm is not finite. Weight decay follows ``model.is_decayed``.
    """
    losses, cache = forward(params, config, batch, rng, mlm_weight, nsp_weight)
    if not math.isfinite(losses["total"]):
        raise NonFiniteError("loss", losses["total"])
    grads = backward(params, config, cache)
    norm = clip_grad_norm(grads, max_grad_norm) if max_grad_norm > 0 else global_norm(grads)
    if not math.isfinite(norm):
        raise NonFiniteError("gradient norm", norm)
    adamw_step(params, grads, optimizer, lr, adamw, is_decayed)
    return StepResult(losses, norm)
