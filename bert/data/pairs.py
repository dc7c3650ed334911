"""Sentence pairs and masked examples from tokenised documents, as google-research/bert's
``create_pretraining_data.py`` makes them.

A document is a list of sentences, each a list of WordPiece ids (no special tokens). Walking
through a document, sentences are gathered into a chunk until it reaches the target length
(``T - 3`` tokens, or with ``short_sequence_probability`` a length uniform in ``2 .. T - 3``).
A is the chunk's first ``1 .. n - 1`` sentences. B is the rest of the chunk (NSP label 0), or,
with probability 1/2 and always for a one-sentence chunk, sentences from a random point of a
random other document, up to the remaining length (label 1; the chunk's unused sentences are
walked again). A pair too long for ``T - 3`` loses tokens from the longer segment, from its
front or its back at random.

Masking is BERT's 80/10/10 (``bert.data.examples.replace_selected``) over the WordPiece tokens,
never over special tokens. Each token is selected with ``mask_probability``; with whole-word
masking, each word is, and all its pieces with it (a word is a piece and the ``##`` pieces after
it). As in BERT, every example has at least one selected token (or word).

Shapes: ``N`` examples, ``T`` sequence length, ``V`` vocabulary.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from bert.data.examples import replace_selected, token_dtype
from bert.data.tokens import CLS, PAD, SEP

Sentence = list[int]
TokenDocument = list[Sentence]


class Pair(NamedTuple):
    a: list[int]
    b: list[int]
    is_random: bool  # the NSP label: B comes from another document


def document_pairs(
    rng: np.random.Generator,
    documents: Sequence[TokenDocument],
    index: int,
    sequence_length: int,
    short_sequence_probability: float,
    others: Sequence[TokenDocument],
) -> list[Pair]:
    """The pairs cut from ``documents[index]``; a random B comes from ``others`` (the other
    documents; ``others`` must not hold the document itself)."""
    document, max_tokens = documents[index], sequence_length - 3
    target = max_tokens
    if rng.random() < short_sequence_probability:
        target = int(rng.integers(2, max_tokens + 1))
    pairs: list[Pair] = []
    chunk: list[Sentence] = []
    length, i = 0, 0
    while i < len(document):
        chunk.append(document[i])
        length += len(document[i])
        if i == len(document) - 1 or length >= target:
            a_end = 1 if len(chunk) == 1 else int(rng.integers(1, len(chunk)))
            a = [t for s in chunk[:a_end] for t in s]
            if len(chunk) == 1 or rng.random() < 0.5:
                b = random_segment(rng, others, max(1, target - len(a)))
                i -= len(chunk) - a_end  # the unused sentences are walked again
                is_random = True
            else:
                b = [t for s in chunk[a_end:] for t in s]
                is_random = False
            pairs.append(Pair(*truncate_pair(rng, a, b, max_tokens), is_random))
            chunk, length = [], 0
        i += 1
    return pairs


def random_segment(rng: np.random.Generator, others: Sequence[TokenDocument],
                   length: int) -> list[int]:
    """Sentences of a random document of ``others``, from a random one on, until at least
    ``length`` tokens (or the document's end)."""
    document = others[int(rng.integers(len(others)))]
    segment: list[int] = []
    for i in range(int(rng.integers(len(document))), len(document)):
        segment += document[i]
        if len(segment) >= length:
            break
    return segment


def truncate_pair(rng: np.random.Generator, a: list[int], b: list[int],
                  max_tokens: int) -> tuple[list[int], list[int]]:
    """A and B cut to at most ``max_tokens`` together: one token at a time from the longer
    segment, from its front or its back at random."""
    (a0, a1), (b0, b1) = (0, len(a)), (0, len(b))  # the kept [first, end) of each
    while (a1 - a0) + (b1 - b0) > max_tokens:
        front = rng.random() < 0.5
        if a1 - a0 > b1 - b0:
            a0, a1 = (a0 + 1, a1) if front else (a0, a1 - 1)
        else:
            b0, b1 = (b0 + 1, b1) if front else (b0, b1 - 1)
    return a[a0:a1], b[b0:b1]


def pack(pairs: Sequence[Pair], sequence_length: int, vocab_size: int) -> dict[str, np.ndarray]:
    """The pairs as unmasked example arrays: input_ids (N, T) ``[CLS] A [SEP] B [SEP] [PAD]...``,
    token_type_ids (N, T) 1 over ``B [SEP]``, attention_mask (N, T), nsp_labels (N,)."""
    n = len(pairs)
    ids = np.full((n, sequence_length), PAD, dtype=np.int64)
    types = np.zeros((n, sequence_length), dtype=np.uint8)
    mask = np.zeros((n, sequence_length), dtype=np.uint8)
    for row, (a, b, _) in enumerate(pairs):
        tokens = [CLS, *a, SEP, *b, SEP]
        ids[row, :len(tokens)] = tokens
        types[row, len(a) + 2:len(tokens)] = 1
        mask[row, :len(tokens)] = 1
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask,
            "nsp_labels": np.array([p.is_random for p in pairs], dtype=np.uint8)}


def mask_text(
    rng: np.random.Generator,
    ids: np.ndarray,
    first_content: int,
    vocab_size: int,
    continuation: np.ndarray | None,
    mask_probability: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Select WordPiece tokens of ``ids`` (N, T) (ids from ``first_content`` on) and replace them
    80/10/10 with [MASK], a random WordPiece token or themselves.

    continuation: (V,) bool, True for a ``##`` piece: a word's pieces are selected together
    (whole-word masking); None selects every token on its own.
    Returns (input_ids, mlm_labels), both (N, T) int64.
    """
    content = ids >= first_content  # (N, T)
    draw = rng.random(ids.shape)  # (N, T)
    if continuation is not None:
        follows = np.zeros_like(content)
        follows[:, 1:] = continuation[ids[:, 1:]] & content[:, :-1] & content[:, 1:]
        position = np.broadcast_to(np.arange(ids.shape[1]), ids.shape)
        head = np.maximum.accumulate(np.where(follows, 0, position), axis=1)  # (N, T)
        draw = np.take_along_axis(draw, head, axis=1)  # a word's pieces share its draw
    selected = (draw < mask_probability) & content
    # as BERT, at least one masked token per example: where none was drawn, the token (with
    # whole-word masking, the word) of the smallest draw, a uniform choice among them
    none = ~selected.any(axis=1, keepdims=True)  # (N, 1)
    lowest = np.where(content, draw, np.inf).min(axis=1, keepdims=True)  # (N, 1)
    selected |= none & content & (draw == lowest)
    return replace_selected(rng, ids, selected, first_content, vocab_size)


def examples_from_pairs(
    rng: np.random.Generator,
    pairs: Sequence[Pair],
    sequence_length: int,
    first_content: int,
    vocab_size: int,
    continuation: np.ndarray | None,
    mask_probability: float,
) -> dict[str, np.ndarray]:
    """The five example arrays (as the synthetic sets store them) of masked pairs."""
    arrays = pack(pairs, sequence_length, vocab_size)
    input_ids, labels = mask_text(rng, arrays["input_ids"], first_content, vocab_size,
                                  continuation, mask_probability)
    arrays["input_ids"] = input_ids.astype(token_dtype(vocab_size))
    arrays["mlm_labels"] = labels.astype(np.int16 if vocab_size <= 32767 else np.int32)
    return arrays
