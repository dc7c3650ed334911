"""AdamW, global-norm gradient clipping and the learning-rate schedule, as plain functions.

The optimizer state is two moments keyed like the parameters and in their flat layout
(``exp_avg``, ``exp_avg_sq``, see ``bert.core.flat``) plus the step count, so a checkpoint can
hold it as it is and the update makes a dozen passes over whole buffers. Each function computes
what its torch / transformers counterpart computes, operation for operation:
``torch.optim.AdamW`` (on two parameter groups: decay and no decay, chosen by the caller's rule,
e.g. ``bert.core.parameters.is_decayed``),
``torch.nn.utils.clip_grad_norm_`` and ``transformers.get_linear_schedule_with_warmup``
(with two more schedules of the same shape in ``schedule_multiplier``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from bert.core.flat import FlatParams
from bert.engine.pool import for_elements


@dataclass(frozen=True)
class AdamWConfig:
    """AdamW's hyper-parameters (the learning rate comes from the schedule at each step)."""

    beta1: float = 0.9  # decay of the first-moment (mean) estimate
    beta2: float = 0.999  # decay of the second-moment (uncentred variance) estimate
    eps: float = 1e-6  # added to the root of the second moment, as BERT uses
    weight_decay: float = 0.01  # decoupled decay, on the parameters ``adamw_step`` is told to decay


def init_state(params: FlatParams) -> dict:
    """A fresh AdamW state: ``step`` 0 and zero moments in the parameters' flat layout."""
    return {"step": 0, "exp_avg": params.zeros_like(), "exp_avg_sq": params.zeros_like()}


def adamw_step(
    params: FlatParams,
    grads: FlatParams,
    state: dict,
    lr: float,
    config: AdamWConfig,
    decayed: Callable[[str], bool],
) -> None:
    """One AdamW update of ``params`` and ``state``, in place; weight decay applies to the
    parameters whose name ``decayed`` accepts. Parameters, gradients and moments share one flat
    layout; the update runs over the buffers, in blocks on the compute pool."""
    state["step"] += 1
    step = state["step"]
    bias_correction1 = 1 - config.beta1**step
    bias_correction2_sqrt = math.sqrt(1 - config.beta2**step)
    step_size = lr / bias_correction1
    if config.weight_decay:
        for name, param in params.items():
            if decayed(name):
                param *= 1 - lr * config.weight_decay  # decoupled weight decay
    layouts_agree = all(params.same_layout(d) for d in (grads, state["exp_avg"],
                                                        state["exp_avg_sq"]))
    if not layouts_agree:
        raise ValueError("parameters, gradients and moments must share one flat layout")
    param, grad = params.flat, grads.flat
    m, v = state["exp_avg"].flat, state["exp_avg_sq"].flat

    def elements(r: slice) -> None:
        scratch = np.subtract(grad[r], m[r])  # the one temporary of the block
        # m += (1 - beta1) * (grad - m)
        scratch *= 1 - config.beta1
        m[r] += scratch
        # v = beta2 * v + (1 - beta2) * grad^2
        v[r] *= config.beta2
        np.multiply(grad[r], grad[r], out=scratch)
        scratch *= 1 - config.beta2
        v[r] += scratch
        # param -= step_size * m / (sqrt(v) / sqrt(bias_correction2) + eps)
        denom = np.sqrt(v[r], out=scratch)
        denom /= bias_correction2_sqrt
        denom += config.eps
        update = np.divide(m[r], denom, out=scratch)
        update *= step_size
        param[r] -= update

    for_elements(param.shape, elements, passes=12)


def global_norm(grads: Mapping[str, np.ndarray]) -> float:
    """The 2-norm of all gradients taken as one vector: a product per tensor, in name order,
    so that its bits do not depend on how the arrays are stored (one buffer or several)."""
    return math.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))


def clip_grad_norm(grads: FlatParams, max_norm: float) -> float:
    """Scale all gradients in place so their global norm is at most ``max_norm``.

    Returns the norm before clipping. The factor is ``max_norm / (norm + 1e-6)`` capped at 1,
    as torch computes it.
    """
    total_norm = global_norm(grads)
    coefficient = min(max_norm / (total_norm + 1e-6), 1.0)
    if coefficient < 1.0:
        grads.flat *= coefficient
    return total_norm


def schedule_multiplier(step: int, schedule: str, warmup_steps: int, decay_steps: int) -> float:
    """The learning-rate multiplier of optimizer step ``step`` (0-based): a function of the
    step alone, so that training longer extends a run instead of changing it.

    Every schedule rises linearly from 0 over ``warmup_steps``. Then ``linear`` falls linearly
    to 0 at ``decay_steps`` and stays there (transformers' ``get_linear_schedule_with_warmup``),
    ``constant`` stays at 1 and ``inverse_sqrt`` decays as ``sqrt(warmup_steps / step)``.
    """
    if step < warmup_steps:  # the warmup (warmup_steps is then at least 1)
        return step / warmup_steps
    if schedule == "linear":
        return max(0.0, (decay_steps - step) / max(1, decay_steps - warmup_steps))
    if schedule == "constant":
        return 1.0
    if schedule == "inverse_sqrt":
        return math.sqrt(max(warmup_steps, 1) / max(step, 1))
    raise ValueError(f"unknown learning-rate schedule {schedule!r}")


def linear_warmup_decay(step: int, warmup_steps: int, total_steps: int) -> float:
    """The ``linear`` schedule: transformers' ``get_linear_schedule_with_warmup`` multiplier."""
    return schedule_multiplier(step, "linear", warmup_steps, total_steps)
