"""The synthetic batch every benchmark times, and the tests that need one of a bench size."""

from __future__ import annotations

from bert.bench.sizes import Size
from bert.core.labels import IGNORE_INDEX

# Nothing that imports NumPy at module level: a worker fixes its thread count first.

MASK_PROBABILITY = 0.15


def make_batch(size: Size, seed: int = 0) -> dict:
    """[CLS] A [SEP] B [SEP] rows without padding; 15% of the other positions masked."""
    import numpy as np

    rng = np.random.default_rng(seed)
    B, T = size.batch_size, size.seq_len
    input_ids = rng.integers(4, size.vocab_size, size=(B, T))
    middle = T // 2
    input_ids[:, [0, middle, T - 1]] = [1, 2, 2]  # [CLS], [SEP], [SEP]
    token_type_ids = np.zeros((B, T), dtype=np.int64)
    token_type_ids[:, middle + 1:] = 1
    content = input_ids > 3
    masked = content & (rng.random((B, T)) < MASK_PROBABILITY)
    masked[0, 1] = True  # at least one label
    mlm_labels = np.where(masked, input_ids, IGNORE_INDEX)
    input_ids[masked] = 3  # [MASK]
    return {"input_ids": input_ids, "token_type_ids": token_type_ids,
            "attention_mask": np.ones((B, T), dtype=np.int64), "mlm_labels": mlm_labels,
            "nsp_labels": rng.integers(0, 2, size=B)}


def num_scored(batch: dict) -> int:
    """The positions of ``batch`` the MLM head scores: those with a label."""
    return int((batch["mlm_labels"] != IGNORE_INDEX).sum())
