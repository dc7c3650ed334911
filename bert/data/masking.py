"""MLM masks drawn afresh for each epoch (RoBERTa's dynamic masking), and what every mask shares.

With ``data.masking: dynamic`` the training file holds the unmasked examples (no
``mlm_labels``); the training loop masks them for each epoch with :func:`masked_epoch`, or batch
by batch with :func:`masked_rows`. The test set and the probe sets keep the masks they were
written with, so that their optimum and baselines stand.

The masks are BERT's, as the static ones (``bert.data.examples.mask_tokens``,
``bert.data.pairs.mask_text``): each eligible token (an id from ``first_content`` on: never a
special token or padding) is selected with ``mask_probability`` (with whole-word masking each
word is, all its pieces with it); an example with no token selected gets the eligible token
(word) of lowest selection draw, so that every example has something to predict, as in BERT,
which masks ``max(1, round(n * p))`` tokens of every example (:func:`at_least_one`); a selected
token becomes [MASK] (80%), a random token of ids ``first_content .. vocab_size - 1`` (10%) or
stays (10%).

The draws. The mask of example ``i`` in epoch ``e`` depends on ``(seed, e, i)`` and the example
alone, never on the batch it falls in nor on who computes it. They come from Philox4x64
(numpy's counter-based generator), keyed by the seed, with the epoch in the second word of
the counter; example ``i`` owns the ``W / 4`` counter values from ``i * W / 4`` of the first
word, which give its ``W`` uniform draws (``W``: three per position, ``3 T`` rounded up to a
multiple of 4): selection, replacement and random token, each ``(T,)``. The seed is
``training.random_seed``, from which everything random in training comes.

Shapes: ``N`` examples, ``B`` examples asked for, ``T`` sequence length, ``V`` vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bert.data.examples import label_dtype, replace_with
from bert.data.wordpiece import PREFIX

MASK_STREAM = 3  # the masks' stream of training.random_seed (dropout is 1, the order 2)


@dataclass(frozen=True)
class MaskingSpec:
    """What masking needs to know of a dataset.

    mask_probability: the probability that an eligible token (or word) is selected.
    first_content: the first id that may be selected or drawn as a random token.
    vocab_size: the vocabulary size V (random tokens are ids first_content .. V - 1).
    continuation: (V,) bool, True for a ``##`` piece (whole-word masking), or None.
    """

    mask_probability: float
    first_content: int
    vocab_size: int
    continuation: np.ndarray | None = None


def continuations(vocab: list[str]) -> np.ndarray:
    """(V,) bool: which pieces of a WordPiece vocabulary continue a word (``##``)."""
    return np.array([piece.startswith(PREFIX) for piece in vocab])


def word_draws(draw: np.ndarray, ids: np.ndarray, first_content: int,
               continuation: np.ndarray) -> np.ndarray:
    """The selection draws (N, T) of ``ids`` (N, T) with every ``##`` piece taking the draw of
    its word's first piece, so that a word's pieces are selected together."""
    content = ids >= first_content  # (N, T)
    follows = np.zeros_like(content)
    follows[:, 1:] = continuation[ids[:, 1:]] & content[:, :-1] & content[:, 1:]
    position = np.broadcast_to(np.arange(ids.shape[1]), ids.shape)
    head = np.maximum.accumulate(np.where(follows, 0, position), axis=1)  # (N, T)
    return np.take_along_axis(draw, head, axis=1)  # a word's pieces share its draw


def at_least_one(selected: np.ndarray, draw: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """``selected`` (N, T), plus, in each example with nothing selected but something
    ``eligible``, the eligible position(s) of lowest selection ``draw``: the token that a higher
    probability would have taken first (with word draws, the whole word)."""
    empty = ~selected.any(axis=1) & eligible.any(axis=1)  # (N,)
    lowest = np.where(eligible, draw, np.inf).min(axis=1, keepdims=True)  # (N, 1)
    return selected | (empty[:, None] & eligible & (draw == lowest))


def unmasked(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Example arrays with their masks undone: input_ids the original tokens, no mlm_labels (as
    the training file holds them under dynamic masking)."""
    labels = arrays["mlm_labels"]
    out = {name: array for name, array in arrays.items() if name != "mlm_labels"}
    out["input_ids"] = np.where(labels >= 0, labels, arrays["input_ids"]).astype(
        arrays["input_ids"].dtype)
    return out


def mask_draws(seed: int, epoch: int, rows: np.ndarray, sequence_length: int) -> np.ndarray:
    """(3, B, T) uniform draws in [0, 1) of examples ``rows`` (B,) in ``epoch``: selection,
    replacement and random token (the stream of the module docstring)."""
    width = -(-3 * sequence_length // 4) * 4  # W: 3 T rounded up to whole counter blocks
    key = np.random.SeedSequence([seed, MASK_STREAM]).generate_state(2, np.uint64)
    draws = np.empty((len(rows), width))
    order = np.argsort(rows, kind="stable")
    ordered = rows[order]
    # contiguous runs of example indices are contiguous stretches of the stream
    for run in np.split(np.arange(len(rows)), np.flatnonzero(np.diff(ordered) != 1) + 1):
        if len(run):
            counter = [int(ordered[run[0]]) * width // 4, epoch, 0, 0]
            stream = np.random.Generator(np.random.Philox(counter=counter, key=key))
            draws[order[run]] = stream.random((len(run), width))
    return draws[:, :3 * sequence_length].reshape(len(rows), 3, sequence_length).transpose(1, 0, 2)


def masked_rows(arrays: dict[str, np.ndarray], rows: np.ndarray, seed: int, epoch: int,
                spec: MaskingSpec) -> dict[str, np.ndarray]:
    """Examples ``rows`` (B,) of the unmasked ``arrays`` (N examples), masked for ``epoch``.

    Returns every array of ``arrays`` taken at ``rows``, with input_ids (B, T) masked (same
    dtype) and mlm_labels (B, T) the original id where selected, -100 elsewhere (int16, or
    int32 above 32767 tokens): what a statically masked file holds.
    """
    rows = np.asarray(rows, dtype=np.int64)
    batch = {name: array[rows] for name, array in arrays.items()}
    ids = batch["input_ids"].astype(np.int64)  # (B, T)
    select, action, token = mask_draws(seed, epoch, rows, ids.shape[1])  # each (B, T)
    if spec.continuation is not None:
        select = word_draws(select, ids, spec.first_content, spec.continuation)
    eligible = ids >= spec.first_content
    selected = at_least_one((select < spec.mask_probability) & eligible, select, eligible)
    span = spec.vocab_size - spec.first_content
    random_tokens = spec.first_content + np.minimum((token * span).astype(np.int64), span - 1)
    input_ids, labels = replace_with(ids, selected, action, random_tokens)
    batch["input_ids"] = input_ids.astype(batch["input_ids"].dtype)
    batch["mlm_labels"] = labels.astype(label_dtype(spec.vocab_size))
    return batch


def masked_epoch(arrays: dict[str, np.ndarray], seed: int, epoch: int,
                 spec: MaskingSpec) -> dict[str, np.ndarray]:
    """Every example of the unmasked ``arrays``, masked for ``epoch`` (``masked_rows`` of all
    rows): the arrays of a statically masked file, fresh for each epoch."""
    return masked_rows(arrays, np.arange(len(arrays["input_ids"])), seed, epoch, spec)
