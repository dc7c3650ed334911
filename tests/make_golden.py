"""Writes tests/fixtures/golden.h5: transformers' BertForPreTraining on a tiny config, in float64.

    python tests/make_golden.py     # needs torch and transformers; deterministic

The file holds, as root attributes, ``config`` (JSON, transformers' BertConfig keys that change the
computation), ``optim`` (JSON: lr, weight_decay, betas, eps, max_grad_norm, warmup_steps,
total_steps, steps) and ``generator`` (what made it, with versions); as groups, ``params/<name>``
(transformers' names, no tied aliases), ``batch/<key>`` and ``reference/<key>``: everything
``tests.reference.run_reference`` returns (keys with '/' become nested groups).

The config is chosen to catch bugs: an intermediate size that is not 4 H (transposes), several
heads, a large initializer range (logits far from uniform), every bias and LayerNorm parameter
perturbed away from its 0 / 1 init; the batch has padding, both segments, all three kinds of MLM
input (masked, random token, unchanged) and both NSP labels; the gradient clipping is active on the
first steps and inactive on the last.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import h5py
import numpy as np

FIXTURE = Path(__file__).parent / "fixtures" / "golden.h5"
SEED = 0

CONFIG = {
    "vocab_size": 50,
    "hidden_size": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 24,
    "max_position_embeddings": 16,
    "type_vocab_size": 2,
    "layer_norm_eps": 1e-12,
    "hidden_dropout_prob": 0.0,
    "attention_probs_dropout_prob": 0.0,
    "initializer_range": 0.2,
    "pad_token_id": 0,
}
OPTIM = {
    "lr": 1e-2,
    "weight_decay": 0.01,
    "betas": [0.9, 0.999],
    "eps": 1e-6,
    "max_grad_norm": 3.0,
    "warmup_steps": 2,
    "total_steps": 5,
    "steps": 3,
}

PAD, CLS, SEP, MASK = 0, 1, 2, 3
IGNORE = -100


def make_params(seed: int = SEED) -> dict[str, np.ndarray]:
    """transformers' float64 init, then normal(0, 0.1) noise on every bias and LayerNorm param."""
    import torch

    from tests.reference import params_from_transformers

    params = params_from_transformers(CONFIG, seed, torch.float64)
    rng = np.random.default_rng(seed)
    for name, value in params.items():
        if name.endswith("bias") or "LayerNorm" in name:
            params[name] = value + rng.normal(0.0, 0.1, size=value.shape)
    return params


def make_batch() -> dict[str, np.ndarray]:
    """B = 3 rows of T = 11: [CLS] A [SEP] B [SEP], rows 1 and 2 padded at the end.

    MLM labels sit on words only; the input shows [MASK] at most of them, a random word at
    row 0 position 4 (label 41, shown 35) and the word itself at row 1 position 6 (label 14).
    """
    original = np.array(
        [
            [CLS, 17, 23, 8, 41, SEP, 12, 30, 9, 27, SEP],
            [CLS, 5, 44, 19, SEP, 33, 14, SEP, PAD, PAD, PAD],
            [CLS, 26, 11, SEP, 48, 6, 38, 21, SEP, PAD, PAD],
        ],
        dtype=np.int64,
    )  # (B, T)
    lengths = np.array([11, 8, 9])  # (B,) tokens before the padding
    first_b = np.array([6, 5, 4])  # (B,) position of the first token of segment B
    shown = {
        (0, 2): MASK,
        (0, 4): 35,
        (0, 7): MASK,
        (1, 1): MASK,
        (1, 6): 14,
        (2, 2): MASK,
        (2, 5): MASK,
        (2, 7): MASK,
    }  # (row, position) -> input token

    positions = np.arange(original.shape[1])  # (T,)
    attention_mask = (positions < lengths[:, None]).astype(np.int64)  # (B, T)
    token_type_ids = ((positions >= first_b[:, None]) & (attention_mask == 1)).astype(np.int64)
    input_ids = original.copy()
    mlm_labels = np.full_like(original, IGNORE)
    for (row, pos), token in shown.items():
        input_ids[row, pos] = token
        mlm_labels[row, pos] = original[row, pos]
    nsp_labels = np.array([0, 1, 0], dtype=np.int64)  # 0: B follows A, 1: B is random
    return {
        "input_ids": input_ids,
        "token_type_ids": token_type_ids,
        "attention_mask": attention_mask,
        "mlm_labels": mlm_labels,
        "nsp_labels": nsp_labels,
    }


def generate() -> dict:
    """Everything the fixture holds: config, optim, generator, params, batch, reference."""
    import torch
    import transformers

    from tests.reference import run_reference

    params, batch = make_params(), make_batch()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one summation order, whatever the machine
    try:
        reference = run_reference(
            CONFIG,
            params,
            batch,
            steps=OPTIM["steps"],
            lr=OPTIM["lr"],
            weight_decay=OPTIM["weight_decay"],
            betas=tuple(OPTIM["betas"]),
            eps=OPTIM["eps"],
            max_grad_norm=OPTIM["max_grad_norm"],
            warmup_steps=OPTIM["warmup_steps"],
            total_steps=OPTIM["total_steps"],
            dtype=torch.float64,
        )
    finally:
        torch.set_num_threads(threads)
    generator = (
        f"tests/make_golden.py: transformers {transformers.__version__} "
        f"BertForPreTraining (eager attention, float64, dropout 0) on torch "
        f"{torch.__version__}, numpy {np.__version__}"
    )
    return {
        "config": CONFIG,
        "optim": OPTIM,
        "generator": generator,
        "params": params,
        "batch": batch,
        "reference": reference,
    }


def write(path: Path, golden: dict) -> None:
    """The fixture file; a key with '/' becomes nested groups."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.attrs["config"] = json.dumps(golden["config"])
        f.attrs["optim"] = json.dumps(golden["optim"])
        f.attrs["generator"] = golden["generator"]
        for group in ("params", "batch", "reference"):
            for key, value in golden[group].items():
                f.create_dataset(f"{group}/{key}", data=value, track_times=False)


def read(path: Path = FIXTURE) -> dict:
    """The fixture as ``generate`` returns it (keys under each group flattened with '/')."""
    golden: dict = {}
    with h5py.File(path, "r") as f:
        golden["config"] = json.loads(f.attrs["config"])
        golden["optim"] = json.loads(f.attrs["optim"])
        golden["generator"] = str(f.attrs["generator"])
        for group in ("params", "batch", "reference"):
            flat: dict[str, np.ndarray] = {}
            f[group].visititems(
                lambda key, obj, flat=flat: (
                    flat.__setitem__(key, obj[()]) if isinstance(obj, h5py.Dataset) else None
                )
            )
            golden[group] = flat
    return golden


def summary(golden: dict, path: Path) -> str:
    """A few lines: what was written and whether the design constraints hold."""
    ref, batch, optim = golden["reference"], golden["batch"], golden["optim"]
    clipped = ref["steps/grad_norm"] > optim["max_grad_norm"]
    return "\n".join(
        [
            f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB): {golden['generator']}",
            f"config {json.dumps(golden['config'])}",
            f"batch B, T = {batch['input_ids'].shape}, padded rows "
            f"{int((batch['attention_mask'] == 0).any(axis=1).sum())}, "
            f"MLM labels {int((batch['mlm_labels'] != IGNORE).sum())}, NSP {batch['nsp_labels']}",
            f"losses mlm {ref['loss_mlm']:.6f}  nsp {ref['loss_nsp']:.6f}  "
            f"total {ref['loss_total']:.6f}",
            f"steps: loss {np.round(ref['steps/loss_total'], 6)}  lr {ref['steps/lr']}  "
            f"grad norm {np.round(ref['steps/grad_norm'], 4)} vs max {optim['max_grad_norm']} "
            f"(clipped {clipped})",
            f"{len(golden['params'])} params, {len(ref)} reference tensors",
        ]
    )


def main() -> None:
    golden = generate()
    write(FIXTURE, golden)
    print(summary(golden, FIXTURE))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # to import tests.reference
    main()
