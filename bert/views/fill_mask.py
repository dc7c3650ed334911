"""``python -m bert fill-mask``: our own model's top guesses at the ``[MASK]`` tokens of a text,
as transformers' ``pipeline("fill-mask")`` gives them.

The model and the tokenizer must belong together: the model records the SHA-256 of the
vocabulary it was trained with (``bert.data.tokenizer.vocab_digest``), and a tokenizer of
another vocabulary, of other ids, of another size, or a model of the synthetic language, is
refused in one line instead of guesses in the wrong words."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from bert.api import from_pretrained
from bert.core.config import BertConfig
from bert.core.layers import softmax
from bert.core.model import predict
from bert.data.loading import load_tokenizer
from bert.data.tokenizer import TextTokenizer
from bert.data.tokens import MASK
from bert.errors import DataFileError
from bert.storage.interop import trained_vocabulary
from bert.workflow.layout import Layout

TOP_K = 5


def check_belong_together(model_path: str | Path, config: BertConfig, tokenizer: TextTokenizer,
                          tokenizer_source: str | Path) -> None:
    """DataFileError unless the model at ``model_path`` (of architecture ``config``) was trained
    with ``tokenizer``'s vocabulary, as far as the model records it."""
    recorded, source = trained_vocabulary(model_path)
    fix = ("give the tokenizer of the model's run: its export directory, or the test.h5 "
           "it was trained with (--tokenizer)")
    if source == "synthetic":
        raise DataFileError(f"{model_path}: was trained on the synthetic language, which has no "
                            "words to fill in; give a model trained on text (data.source: text)")
    pair = (f"{model_path}: its model and its tokenizer" if str(model_path) == str(
        tokenizer_source) else f"{model_path} and {tokenizer_source}")
    if recorded is not None and recorded != tokenizer.digest:
        raise DataFileError(f"{pair} do not belong together: the model was trained with another "
                            f"vocabulary (or the same pieces under other ids); {fix}")
    if len(tokenizer.vocab) != config.vocab_size:
        raise DataFileError(f"{pair} do not belong together: a vocabulary of "
                            f"{len(tokenizer.vocab)} pieces for a model of {config.vocab_size} "
                            f"tokens; {fix}")
    if recorded is None:
        print(f"warning: {model_path} records no vocabulary, so nothing checks that "
              f"{tokenizer_source} is the tokenizer it was trained with", file=sys.stderr)


def fill_mask(model_path: str | Path, tokenizer: TextTokenizer, text: str, k: int = TOP_K,
              tokenizer_source: str | Path = "the tokenizer") -> list[list[tuple[str, float]]]:
    """For each ``[MASK]`` of ``text``, in order, the model's ``k`` most probable tokens with
    their probabilities. The ``[MASK]`` typed in ``text`` is the mask token, as transformers'
    pipeline reads it."""
    if k < 1:
        raise ValueError(f"k is {k}; ask for 1 guess or more")
    model = from_pretrained(model_path)
    check_belong_together(model_path, model.config, tokenizer, tokenizer_source)
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
    when it is one, else the test set of the run whose folder holds the model, else that of the
    run ``params``).
    """
    if tokenizer_path is None:
        tokenizer_path = model_path if Path(model_path).is_dir() else \
            (Layout.holding(model_path) or Layout.recorded()).test_data
    tokenizer = load_tokenizer(tokenizer_path)
    lines = [f"{text}  (model {model_path}, tokenizer {tokenizer_path})"]
    for i, top in enumerate(fill_mask(model_path, tokenizer, text, k, tokenizer_path)):
        lines.append(f"[MASK] {i + 1}:")
        lines += [f"  {rank + 1}. {token:<16} {p:.3f}" for rank, (token, p) in enumerate(top)]
    return "\n".join(lines)
