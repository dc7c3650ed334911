"""Our model run the way tests/reference.py runs transformers, and the per-tensor comparison.

Both sides produce a flat dict with the same keys: logits, losses, hidden states, every
parameter gradient, then a few clipped AdamW steps with warmup (losses, learning rates, gradient
norms, final parameters, optimizer moments).
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from bert import BertConfig, BertForPreTraining
from bert.core.optim import AdamWConfig, init_state, linear_warmup_decay
from bert.core.step import training_step
from tests.numgrad import relative_error

FIXTURE = Path(__file__).parent / "fixtures" / "golden.h5"

# label -> {tensor name -> largest relative difference}, printed at the end of the session
REPORT: dict[str, dict[str, float]] = {}


def load_fixture(path: Path = FIXTURE) -> tuple[dict, dict, dict, dict, dict]:
    """(hf_config, optim, params, batch, reference), arrays as NumPy, keys flattened with '/'."""
    with h5py.File(path, "r") as f:
        hf_config = json.loads(f.attrs["config"])
        optim = json.loads(f.attrs["optim"])
        groups = {}
        for group in ("params", "batch", "reference"):
            flat = {}
            f[group].visititems(
                lambda name, obj, flat=flat: flat.__setitem__(name, obj[()])
                if isinstance(obj, h5py.Dataset) else None)
            groups[group] = flat
    return hf_config, optim, groups["params"], groups["batch"], groups["reference"]


def run_ours(hf_config: dict, optim: dict, params: dict, batch: dict, dtype,
             layers: str = "fast") -> dict:
    """Everything the reference records, computed by our model in ``dtype``."""
    config = BertConfig.from_hf(hf_config)
    model = BertForPreTraining(config, dtype=dtype, params=params, layers=layers)
    out = {}
    inference = model.forward(batch)
    out["mlm_logits"], out["nsp_logits"] = inference["mlm_logits"], inference["nsp_logits"]
    out["pooled"] = inference["pooled"]
    for i, hidden in enumerate(inference["hidden_states"]):
        out[f"hidden_states/{i}"] = hidden
    losses, grads = model.loss_and_grads(batch)
    for key in ("mlm", "nsp", "total"):
        out[f"loss_{key}"] = np.array(losses[key])
    for name, grad in grads.items():
        out[f"grads/{name}"] = grad
    adamw = AdamWConfig(beta1=optim["betas"][0], beta2=optim["betas"][1], eps=optim["eps"],
                        weight_decay=optim["weight_decay"])
    state = init_state(model.params)
    history = {key: [] for key in ("loss_total", "loss_mlm", "loss_nsp", "lr", "grad_norm")}
    for step in range(optim["steps"]):
        lr = optim["lr"] * linear_warmup_decay(step, optim["warmup_steps"], optim["total_steps"])
        result = training_step(model.params, config, batch, state, lr=lr, adamw=adamw,
                               max_grad_norm=optim["max_grad_norm"], rng=None, layers=layers)
        losses, norm = result.losses, result.grad_norm
        for key, value in (("loss_total", losses["total"]), ("loss_mlm", losses["mlm"]),
                           ("loss_nsp", losses["nsp"]), ("lr", lr), ("grad_norm", norm)):
            history[key].append(value)
    for key, values in history.items():
        out[f"steps/{key}"] = np.array(values)
    for name in model.params:
        out[f"final/{name}"] = model.params[name]
        out[f"adam/exp_avg/{name}"] = state["exp_avg"][name]
        out[f"adam/exp_avg_sq/{name}"] = state["exp_avg_sq"][name]
    out["adam/step"] = np.array(state["step"])
    return out


def is_structural_zero(key: str) -> bool:
    """Tensors that are exactly zero in exact arithmetic and rounding noise in both codes.

    The key bias shifts every score of a query by the same amount, which softmax ignores, so
    its gradient (and so its Adam moments) is 0: transformers gives round-off noise, we give
    exactly 0, and no relative error is defined.
    """
    return key.endswith("attention.self.key.bias") and not key.startswith("final/")


def compare(label: str, ours: dict, reference: dict) -> dict[str, float]:
    """Largest relative difference per key; also recorded for the end-of-session report."""
    assert set(ours) == set(reference), set(ours) ^ set(reference)
    differences = {}
    for key in sorted(reference):
        if is_structural_zero(key):
            scale = max(np.max(np.abs(reference[k])) for k in reference
                        if k.startswith(key.rsplit("/", 1)[0] + "/"))
            assert np.max(np.abs(ours[key])) <= 1e-6 * scale, key
            continue
        assert np.shape(ours[key]) == np.shape(reference[key]), key
        differences[key] = relative_error(ours[key], reference[key])
    REPORT[label] = differences
    return differences
