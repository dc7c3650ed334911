"""``python -m bert fill-mask``: our own model's top guesses at the ``[MASK]`` tokens of a text,
as transformers' ``pipeline("fill-mask")`` gives them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bert.api import from_pretrained
from bert.core.layers import softmax
from bert.core.model import predict
from bert.data.datasets import load_tokenizer
from bert.data.tokenizer import TextTokenizer
from bert.data.tokens import MASK
from bert.errors import DataFileError

TOP_K = 5


def fill_mask(model_path: str | Path, tokenizer: TextTokenizer, text: str,
              k: int = TOP_K) -> list[list[tuple[str, float]]]:
    """For each ``[MASK]`` of ``text``, in order, the model's ``k`` most probable tokens with
    their probabilities."""
    model = from_pretrained(model_path)
    ids = np.array([tokenizer.backend.encode(text).ids])  # (1, T) with [CLS] and [SEP]
    if ids.shape[1] > model.config.max_position_embeddings:
        raise DataFileError(f"the text is {ids.shape[1]} tokens long; {model_path} reads at "
                            f"most {model.config.max_position_embeddings}; shorten it")
    masked = ids == MASK
    if not masked.any():
        raise DataFileError("the text has no [MASK]; put [MASK] where a word should be guessed")
    out = predict(model.params, model.config, ids, np.zeros_like(ids), np.ones_like(ids),
                  mlm_positions=masked)
    probs = softmax(out["mlm_logits"].astype(np.float64))  # (M, V)
    tops = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return [[(tokenizer.token(int(t)), float(p[t])) for t in top] for p, top in zip(probs, tops,
                                                                                     strict=True)]


def fill_mask_text(text: str, model_path: str | Path, tokenizer_path: str | Path | None,
                   k: int = TOP_K) -> str:
    """The guesses as lines of text: one block per ``[MASK]``.

    tokenizer_path: an export directory or a text dataset file (default: the model's directory
    when it is one, else ``data/test.h5``).
    """
    if tokenizer_path is None:
        tokenizer_path = model_path if Path(model_path).is_dir() else Path("data/test.h5")
    tokenizer = load_tokenizer(tokenizer_path)
    lines = [f"{text}  (model {model_path}, tokenizer {tokenizer_path})"]
    for i, top in enumerate(fill_mask(model_path, tokenizer, text, k)):
        lines.append(f"[MASK] {i + 1}:")
        lines += [f"  {rank + 1}. {token:<16} {p:.3f}" for rank, (token, p) in enumerate(top)]
    return "\n".join(lines)
