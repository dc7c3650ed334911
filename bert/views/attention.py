"""Where the model attends on one example: the attention probabilities of every head of every
layer, and ``python -m bert attention``, which prints where each token attends most. The
picture (``bert.views.attention_plot``) draws the same probabilities.

Shape letters: ``B`` examples, ``T`` sequence, ``L`` layers, ``NH`` heads, ``T'`` the tokens of
one example without its padding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from bert.core.config import BertConfig
from bert.core.model import predict
from bert.errors import ConfigError
from bert.views.inputs import Examples, load_examples, load_model

TOP_KEYS = 3  # keys shown per query token


def attention_probabilities(
    params: Mapping[str, np.ndarray],
    config: BertConfig,
    input_ids: np.ndarray,
    token_type_ids: np.ndarray,
    attention_mask: np.ndarray,
) -> np.ndarray:
    """Attention probabilities (L, B, NH, T, T) of every layer, in inference (no dropout).

    ``[l, b, h, i, j]``: how much query position i attends to key position j in head h of
    layer l; each row sums to 1 and padded keys get 0.
    """
    nowhere = np.zeros(input_ids.shape, dtype=bool)  # the MLM head is not needed here
    out = predict(params, config, input_ids, token_type_ids, attention_mask, nowhere)
    return np.stack(out["attentions"])


def attention_maps(
    params: Mapping[str, np.ndarray], config: BertConfig, examples: Examples, row: int = 0
) -> np.ndarray:
    """The attention probabilities (L, NH, T', T') of example ``row``, padding cut off."""
    arrays = {name: a[row:row + 1] for name, a in examples.arrays.items()}
    probs = attention_probabilities(params, config, arrays["input_ids"],
                                    arrays["token_type_ids"], arrays["attention_mask"])
    n = examples.length(row)
    return probs[:, 0, :, :n, :n]


def attention_window(length: int, size: int, first: int = 0) -> range:
    """The positions of an example of ``length`` tokens that are shown when at most ``size``
    fit: all of them, or ``size`` of them from ``first`` (moved back to end at the last)."""
    if length <= size:
        return range(length)
    first = min(max(first, 0), length - size)
    return range(first, first + size)


def format_attention(tokens: Sequence[str], probs: np.ndarray, k: int = TOP_KEYS) -> list[str]:
    """One line per query token: the ``k`` keys it attends to most, with the probabilities.

    probs: (T', T') of one head.
    """
    width = max(len(t) for t in tokens)
    lines = [f"{'pos':>4}  {'token':<{width}}  attends most to (token@position probability)"]
    for i, token in enumerate(tokens):
        top = np.argsort(-probs[i], kind="stable")[:k]
        cells = "".join(f"{tokens[j] + '@' + str(j):<{width + 4}} {probs[i, j]:.2f}   "
                        for j in top)
        lines.append(f"{i:>4}  {token:<{width}}  {cells}".rstrip())
    return lines


def attention_text(
    test_path: str | Path, index: int, model_path: str | Path,
    layer: int | None = None, head: int | None = None,
) -> str:
    """``python -m bert attention``: where each token attends most, for one head or all."""
    examples = load_examples(test_path, [index])
    config, weights = load_model(model_path, examples)
    for what, value, count in (("layer", layer, config.num_hidden_layers),
                               ("head", head, config.num_attention_heads)):
        if value is not None and not 0 <= value < count:
            raise ConfigError(f"{model_path}: has {count} {what}s, no {what} {value}; "
                              f"pick a {what} in 0..{count - 1}")
    probs = attention_maps(weights, config, examples)  # (L, NH, T', T')
    tokens = examples.tokens(0)
    lines = [f"{test_path}, example {examples.indices[0]} of {examples.count}; model "
             f"{model_path}", "input: " + " ".join(tokens)]
    layers = range(config.num_hidden_layers) if layer is None else [layer]
    heads = range(config.num_attention_heads) if head is None else [head]
    for i in layers:
        for h in heads:
            lines += ["", f"layer {i}, head {h}", *format_attention(tokens, probs[i, h])]
    return "\n".join(lines)
