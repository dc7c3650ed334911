"""Sentence pairs and masked examples from tokenised documents, as google-research/bert's
``create_pretraining_data.py`` makes them (and ALBERT's and RoBERTa's variants).

A document is a list of sentences, each a list of WordPiece ids (no special tokens). Walking
through a document, sentences are gathered into a chunk until it reaches the target length
(``T - 3`` tokens, or with ``short_sequence_probability`` a length uniform in ``2 .. T - 3``).
A is the chunk's first ``1 .. n - 1`` sentences. B is the rest of the chunk (NSP label 0), or,
with probability 1/2 and always for a one-sentence chunk, sentences from a random point of a
random other document, up to the remaining length (label 1; the chunk's unused sentences are
walked again). A pair too long for ``T - 3`` loses tokens from the longer segment, from its
front or its back at random.

Sentence order (SOP, ALBERT's ``create_pretraining_data.py``): A and B are cut from the chunk as
above, B always the rest of the chunk, and swapped with probability 1/2 (label 1). ALBERT pairs a
one-sentence chunk with a random B (an NSP example labelled 1); here it is cut in two at a random
token instead, so that every pair is two consecutive segments of one document.

Without a sentence task (RoBERTa's FULL-SENTENCES): whole sentences are packed, in order, into
sequences of up to ``T - 2`` tokens (``[CLS] x [SEP]``); a sequence runs on from one document into
the next with a ``[SEP]`` between them, and a sentence longer than a sequence is cut in pieces.

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

from bert.data.examples import label_dtype, replace_selected, token_dtype
from bert.data.masking import at_least_one, word_draws
from bert.data.tokens import CLS, PAD, SEP

Sentence = list[int]
TokenDocument = list[Sentence]


class Pair(NamedTuple):
    a: list[int]
    b: list[int]
    label: bool  # the sentence label: B comes from another document (nsp), A and B swapped (sop)


def document_pairs(
    rng: np.random.Generator,
    documents: Sequence[TokenDocument],
    index: int,
    sequence_length: int,
    short_sequence_probability: float,
    others: Sequence[TokenDocument],
    sentence_task: str = "nsp",
) -> list[Pair]:
    """The pairs of ``sentence_task`` (nsp or sop) cut from ``documents[index]``; a random B
    comes from ``others`` (the other documents; ``others`` must not hold the document itself)."""
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
            if sentence_task == "sop":
                pairs += order_pair(rng, chunk, max_tokens)
            else:
                pair, unused = next_sentence_pair(rng, chunk, others, target, max_tokens)
                pairs.append(pair)
                i -= unused  # the unused sentences are walked again
            chunk, length = [], 0
        i += 1
    return pairs


def next_sentence_pair(rng: np.random.Generator, chunk: list[Sentence],
                       others: Sequence[TokenDocument], target: int,
                       max_tokens: int) -> tuple[Pair, int]:
    """BERT's pair of a chunk: A and the rest (label 0), or A and a random B (label 1). Returns
    the pair and how many of the chunk's sentences it left unused."""
    a_end = 1 if len(chunk) == 1 else int(rng.integers(1, len(chunk)))
    a = [t for s in chunk[:a_end] for t in s]
    if len(chunk) == 1 or rng.random() < 0.5:
        b = random_segment(rng, others, max(1, target - len(a)))
        return Pair(*truncate_pair(rng, a, b, max_tokens), True), len(chunk) - a_end
    b = [t for s in chunk[a_end:] for t in s]
    return Pair(*truncate_pair(rng, a, b, max_tokens), False), 0


def order_pair(rng: np.random.Generator, chunk: list[Sentence], max_tokens: int) -> list[Pair]:
    """ALBERT's sentence-order pair of a chunk (none for a chunk of one token): A and the rest,
    swapped with probability 1/2 (label 1); a one-sentence chunk is cut at a random token."""
    if len(chunk) == 1:
        sentence = chunk[0]
        if len(sentence) < 2:
            return []
        cut = int(rng.integers(1, len(sentence)))
        chunk = [sentence[:cut], sentence[cut:]]
    a_end = int(rng.integers(1, len(chunk)))
    a, b = [t for s in chunk[:a_end] for t in s], [t for s in chunk[a_end:] for t in s]
    swapped = bool(rng.random() < 0.5)
    if swapped:
        a, b = b, a
    return [Pair(*truncate_pair(rng, a, b, max_tokens), swapped)]


def full_sentences(rng: np.random.Generator, documents: Sequence[TokenDocument],
                   sequence_length: int, short_sequence_probability: float) -> list[list[int]]:
    """RoBERTa's FULL-SENTENCES inputs: the sentences of ``documents``, in order, packed into
    sequences of whole sentences up to a target length (``T - 2`` tokens, or with
    ``short_sequence_probability`` uniform in ``2 .. T - 2``; at least one sentence each). A
    sequence runs on into the next document with a ``[SEP]`` between the two; a sentence longer
    than ``T - 2`` tokens is cut in pieces of ``T - 2``."""
    max_tokens = sequence_length - 2

    def draw_target() -> int:
        if rng.random() < short_sequence_probability:
            return int(rng.integers(2, max_tokens + 1))
        return max_tokens

    sequences: list[list[int]] = []
    current: list[int] = []
    target = draw_target()
    for document in documents:
        joins = bool(current)  # the document's first sentence would follow another document's
        pieces = (s[k:k + max_tokens] for s in document for k in range(0, len(s), max_tokens))
        for piece in pieces:
            separator = [SEP] if joins else []
            if current and len(current) + len(separator) + len(piece) > target:
                sequences.append(current)
                current, separator, target = [], [], draw_target()
            current += separator + piece
            joins = False
    if current:
        sequences.append(current)
    return sequences


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
    rows = [([CLS, *a, SEP, *b, SEP], len(a) + 2) for a, b, _ in pairs]
    return {**pack_rows(rows, sequence_length),
            "nsp_labels": np.array([p.label for p in pairs], dtype=np.uint8)}


def pack_sequences(sequences: Sequence[list[int]], sequence_length: int) -> dict[str, np.ndarray]:
    """Sequences without a sentence task as unmasked example arrays: input_ids (N, T)
    ``[CLS] x [SEP] [PAD]...``, token_type_ids (N, T) all 0, attention_mask (N, T)."""
    return pack_rows([([CLS, *x, SEP], len(x) + 2) for x in sequences], sequence_length)


def pack_rows(rows: Sequence[tuple[list[int], int]], sequence_length: int) -> dict[str, np.ndarray]:
    """Token rows, each with the position where token type 1 starts (its length: none), padded
    to ``T``: input_ids (N, T), token_type_ids (N, T), attention_mask (N, T)."""
    n = len(rows)
    ids = np.full((n, sequence_length), PAD, dtype=np.int64)
    types = np.zeros((n, sequence_length), dtype=np.uint8)
    mask = np.zeros((n, sequence_length), dtype=np.uint8)
    for row, (tokens, second) in enumerate(rows):
        ids[row, :len(tokens)] = tokens
        types[row, second:len(tokens)] = 1
        mask[row, :len(tokens)] = 1
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}


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
        draw = word_draws(draw, ids, first_content, continuation)
    # as BERT, at least one masked token per example
    selected = at_least_one((draw < mask_probability) & content, draw, content)
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
    return masked_examples(rng, pack(pairs, sequence_length, vocab_size), first_content,
                           vocab_size, continuation, mask_probability)


def masked_examples(
    rng: np.random.Generator,
    arrays: dict[str, np.ndarray],
    first_content: int,
    vocab_size: int,
    continuation: np.ndarray | None,
    mask_probability: float,
) -> dict[str, np.ndarray]:
    """Packed example arrays with their input_ids masked (``mask_text``) and mlm_labels."""
    input_ids, labels = mask_text(rng, arrays["input_ids"], first_content, vocab_size,
                                  continuation, mask_probability)
    return {**arrays, "input_ids": input_ids.astype(token_dtype(vocab_size)),
            "mlm_labels": labels.astype(label_dtype(vocab_size))}
