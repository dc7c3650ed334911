"""BERT pretraining examples cut from the synthetic language, and their Bayes-optimal scores.

An example of length ``T`` is ``[CLS] A [SEP] B [SEP] [PAD]...``: token types 0 for
``[CLS] A [SEP]``, 1 for ``B [SEP]``, 0 for padding; attention mask 1 up to the second
``[SEP]``. With probability ``short_sequence_probability`` the content length ``a + b`` is uniform
in ``2 .. T - 3``, else ``T - 3``; the length of A is uniform in ``1 .. a + b - 1``. The sentence
task says what A and B are, and what the label (``nsp_labels``, as transformers'
``next_sentence_label`` serves both) means:

- ``nsp`` (BERT): label 0, B follows A in the same document; 1, B is a segment of another
  document (probability 1/2).
- ``sop`` (ALBERT): A+B is one segment of one document, cut in two; label 0, the two parts are
  shown in order; 1, swapped (the second part shown first, probability 1/2).
- ``none`` (RoBERTa): ``[CLS] x [SEP] [PAD]...``, one segment of one document of content length
  ``T - 2`` (short: uniform in ``2 .. T - 2``), token types 0, and no label.

MLM masking as BERT: each content token (never a special token or padding) is selected with
``mask_probability``; a selected token becomes ``[MASK]`` (80%), a uniform random content token
(10%, possibly itself) or stays unchanged (10%). ``mlm_labels`` is the original id where
selected, ``-100`` elsewhere.

Shapes: ``N`` examples, ``T`` sequence length, ``L = T - 3`` content slots (``T - 2`` without a
sentence task), ``C`` content tokens.
"""

from __future__ import annotations

import math

import numpy as np

from bert.core.labels import IGNORE_INDEX
from bert.data.inference import (
    chain_posterior,
    context_free_posterior,
    posterior,
    sop_posterior,
    swapped_slots,
    topic_only_nsp,
)
from bert.data.language import Language, sample_pairs
from bert.data.tokens import CLS, MASK, NUM_SPECIAL, PAD, SEP

MASK_FRACTION = 0.8  # of selected tokens, replaced by [MASK]
RANDOM_FRACTION = 0.1  # of selected tokens, replaced by a random content token; the rest stay
ARRAY_NAMES = ("input_ids", "token_type_ids", "attention_mask", "mlm_labels", "nsp_labels")
TIE = 1e-10  # log-odds between two labels that count as equally likely (rounding, ~1e-14)
LABEL_MEANINGS = {  # what nsp_labels 0 and 1 say under each sentence task
    "nsp": ("B follows A", "B is a segment of another document"),
    "sop": ("A and B in the document's order", "swapped: B comes first in the document"),
}


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned dtype holding every token id."""
    return np.dtype(np.uint8 if vocab_size <= 256 else np.uint16)


def num_examples(arrays: dict[str, np.ndarray]) -> int:
    """The number of examples N of example arrays (whichever of them a file holds)."""
    return len(arrays["input_ids"])


def label_dtype(vocab_size: int) -> np.dtype:
    """The signed dtype of ``mlm_labels``: every token id, and -100."""
    return np.dtype(np.int16 if vocab_size <= 32767 else np.int32)


def make_examples(
    rng: np.random.Generator,
    language: Language,
    num_examples: int,
    sequence_length: int,
    mask_probability: float,
    short_sequence_probability: float,
    sentence_task: str = "nsp",
) -> dict[str, np.ndarray]:
    """Sample ``num_examples`` masked examples of ``sentence_task`` (nsp, sop or none).

    Returns the arrays of ARRAY_NAMES: input_ids (N, T) token dtype, token_type_ids (N, T) uint8,
    attention_mask (N, T) uint8, mlm_labels (N, T) int16, nsp_labels (N,) uint8 (none: absent).
    """
    n, separators = num_examples, 1 if sentence_task == "none" else 2
    max_content = sequence_length - 1 - separators
    short = rng.random(n) < short_sequence_probability
    length = np.where(short, rng.integers(2, max_content + 1, size=n), max_content)  # (N,)
    labels = {}
    if sentence_task == "none":
        len_a = length  # one segment, no B
        content = sample_pairs(rng, language, len_a, np.zeros(n, dtype=bool), max_content)
    else:
        len_a = rng.integers(1, length)  # (N,) uniform in 1 .. length - 1
        label = rng.random(n) < 0.5  # (N,) random next (nsp), swapped (sop)
        labels["nsp_labels"] = label.astype(np.uint8)
        if sentence_task == "nsp":
            content = sample_pairs(rng, language, len_a, label, max_content)
        else:  # one chain (no random next), its two segments shown swapped where label is 1
            chain = sample_pairs(rng, language, len_a, np.zeros(n, dtype=bool), max_content)
            order = np.where(label[:, None], swapped_slots(len_a, length, max_content),
                             np.arange(max_content))  # (N, L) chain position -> shown slot
            content = np.empty_like(chain)
            np.put_along_axis(content, order, chain, axis=1)
    content += NUM_SPECIAL  # (N, L) vocabulary ids

    position = np.arange(sequence_length)[None, :]  # (1, T)
    # (N, 1): the first [SEP] at a + 1, the last at end (the same one without a sentence task)
    a, end = len_a[:, None], length[:, None] + separators
    slot = np.clip(np.where(position <= a, position - 1, position - 2), 0, max_content - 1)
    ids = np.take_along_axis(content, slot, axis=1)  # (N, T) content token of each position
    ids[:, 0] = CLS
    ids[(position == a + 1) | (position == end)] = SEP
    ids[position > end] = PAD
    input_ids, mlm_labels = mask_tokens(rng, ids, language.num_content, mask_probability)
    vocab_size = NUM_SPECIAL + language.num_content
    return {
        "input_ids": input_ids.astype(token_dtype(vocab_size)),
        "token_type_ids": ((position > a + 1) & (position <= end)).astype(np.uint8),
        "attention_mask": (position <= end).astype(np.uint8),
        "mlm_labels": mlm_labels.astype(label_dtype(vocab_size)),
        **labels,
    }


def mask_tokens(
    rng: np.random.Generator, ids: np.ndarray, num_content: int, mask_probability: float
) -> tuple[np.ndarray, np.ndarray]:
    """BERT's 80/10/10 masking of the content tokens of ``ids`` (N, T).

    Returns (input_ids, mlm_labels), both (N, T) int64.
    """
    selected = (rng.random(ids.shape) < mask_probability) & (ids >= NUM_SPECIAL)  # (N, T)
    return replace_selected(rng, ids, selected, NUM_SPECIAL, NUM_SPECIAL + num_content)


def replace_selected(
    rng: np.random.Generator, ids: np.ndarray, selected: np.ndarray, low: int, high: int
) -> tuple[np.ndarray, np.ndarray]:
    """The 80/10/10 replacement of the ``selected`` positions (N, T) of ``ids`` (N, T): [MASK],
    a uniform random token of ids ``low .. high - 1``, or unchanged.

    Returns (input_ids, mlm_labels), both (N, T) int64.
    """
    action = rng.random(ids.shape)  # (N, T) which of the three replacements
    random_tokens = rng.integers(low, high, size=ids.shape)
    return replace_with(ids, selected, action, random_tokens)


def replace_with(ids: np.ndarray, selected: np.ndarray, action: np.ndarray,
                 random_tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 80/10/10 replacement of the ``selected`` positions (N, T) of ``ids`` (N, T), given
    the draws: ``action`` (N, T) uniform in [0, 1) picks [MASK] (below 0.8), the token of
    ``random_tokens`` (N, T) (below 0.9) or the token itself.

    Returns (input_ids, mlm_labels), both (N, T) int64.
    """
    input_ids = np.where(selected & (action < MASK_FRACTION), MASK, ids)
    replace = selected & (action >= MASK_FRACTION) & (action < MASK_FRACTION + RANDOM_FRACTION)
    input_ids = np.where(replace, random_tokens, input_ids)
    return input_ids, np.where(selected, ids, IGNORE_INDEX)


def observation_model(mask_probability: float, num_content: int) -> tuple[np.ndarray, np.ndarray]:
    """Likelihood of each observed symbol given the original content token, under masking.

    Symbols 0..C-1 are content tokens, C is [MASK]. Returns (emission, emission_selected), both
    (C+1, C): ``emission[o, x] = P(o | x)`` with the selection unknown, ``emission_selected[o, x]
    = P(o | x, selected)``.
    """
    p, c = mask_probability, num_content
    keep = 1.0 - MASK_FRACTION - RANDOM_FRACTION
    selected = np.zeros((c + 1, c))
    selected[:c] = RANDOM_FRACTION / c + keep * np.eye(c)  # random (may hit x) or kept
    selected[c] = MASK_FRACTION
    emission = p * selected
    emission[:c] += (1.0 - p) * np.eye(c)  # not selected: seen as is
    return emission, selected


def content_view(
    input_ids: np.ndarray, mlm_labels: np.ndarray, num_content: int, separators: int = 2
) -> dict[str, np.ndarray]:
    """The content slots of examples (N, T), indexed as ``bert.data.language``'s inference wants.

    separators: [SEP]s per example, 2 for sentence pairs, 1 without a sentence task.
    Returns position (N, L): the sequence position of slot j; symbols (N, L): observed content
    index, C for [MASK] and for slots past the end; labels (N, L): original content index where
    selected, -1 elsewhere; len_a, length (N,): the lengths of A and of A+B (both the length of
    the one segment without a sentence task).
    """
    n, seq = input_ids.shape
    sep = input_ids == SEP  # (N, T)
    first, last = sep.argmax(axis=1), seq - 1 - sep[:, ::-1].argmax(axis=1)  # (N,)
    len_a, length = first - 1, last - separators  # (N,)
    slot = np.arange(seq - 1 - separators)[None, :]  # (1, L)
    position = slot + 1 + (slot >= len_a[:, None])  # (N, L)
    valid = slot < length[:, None]  # (N, L)
    observed = np.take_along_axis(input_ids, position, axis=1).astype(np.int64)  # (N, L)
    symbols = np.where(valid & (observed >= NUM_SPECIAL), observed - NUM_SPECIAL, num_content)
    labels = np.take_along_axis(mlm_labels, position, axis=1).astype(np.int64)  # (N, L)
    labels = np.where(valid & (labels >= NUM_SPECIAL), labels - NUM_SPECIAL, -1)
    return {"position": position, "symbols": symbols, "labels": labels,
            "len_a": len_a, "length": length}


def optimum(
    language: Language,
    examples: dict[str, np.ndarray],
    mask_probability: float,
    max_bytes: float = 256e6,
    sentence_task: str = "nsp",
) -> dict[str, float]:
    """The Bayes-optimal MLM and sentence-task scores of ``examples`` and the simple baselines.

    The MLM loss is the mean over labelled positions of -log P(original | all observed tokens,
    the position was selected), marginalising topics, the sentence label and the masking of
    every other position; the sentence task's loss and accuracy use P(label | all observed
    tokens). Baselines predict from the token observed at the position alone, with tokens
    assumed i.i.d. uniform or with the language's unigram frequencies (at a [MASK]: log C, and
    the unigram cross-entropy), and the sentence label by chance.

    Keys, with ``<task>`` the sentence task: bayes_mlm_loss, bayes_<task>_loss,
    bayes_<task>_accuracy, topic_only_<task>_accuracy, uniform_mlm_loss, unigram_mlm_loss,
    chance_<task>_loss, chance_<task>_accuracy, num_mlm_labels, num_examples; ``none`` has no
    ``<task>`` keys.

    ``topic_only_nsp_accuracy`` is the NSP accuracy of the exact rule that ignores the
    transition from A to B (``bert.data.language.topic_only_nsp``): what the topics alone give.
    ``topic_only_sop_accuracy`` is 0.5 by construction, not measured: both orders of a pair are
    one document of one topic, so a rule that sees only the topics (each segment scored as a
    chain of its own) gives both orders the same likelihood, and its guess is a coin flip.
    Examples are processed in chunks whose messages fit in about ``max_bytes``.
    """
    c = language.num_content
    view = content_view(examples["input_ids"], examples["mlm_labels"], c,
                        1 if sentence_task == "none" else 2)
    symbols, labels = view["symbols"], view["labels"]  # (N, L), (N, L)
    emission, emission_selected = observation_model(mask_probability, c)

    n, num_slots = symbols.shape
    chunk = max(1, int(max_bytes // (2 * num_slots * language.num_topics * c * 8)))
    mlm_nll, label_log, topic_log = [], [], []
    for lo in range(0, n, chunk):
        part = slice(lo, lo + chunk)
        observed, len_a, length = symbols[part], view["len_a"][part], view["length"][part]
        if sentence_task == "nsp":
            mlm, nsp, _ = posterior(language, observed, len_a, length, emission,
                                    emission_selected)
            label_log.append(nsp)
            topic_log.append(topic_only_nsp(language, observed, len_a, length, emission))
        elif sentence_task == "sop":
            mlm, sop, _ = sop_posterior(language, observed, len_a, length, emission,
                                        emission_selected)
            label_log.append(sop)
        else:
            mlm, _, _ = chain_posterior(language, observed, length, emission, emission_selected)
        sel = labels[part] >= 0  # (n, L)
        mlm_nll.append(-np.log(mlm[sel, labels[part][sel]]))  # (M_chunk,)
    mlm_nll = np.concatenate(mlm_nll)  # (M,)

    sel = labels >= 0
    target, seen = labels[sel], symbols[sel]  # (M,)
    uniform = context_free_posterior(np.full(c, 1.0 / c), seen, emission_selected)  # (M, C)
    unigram = context_free_posterior(language.unigram(), seen, emission_selected)  # (M, C)
    picked = np.arange(target.shape[0])
    bayes, chance = {}, {}
    if sentence_task != "none":
        label_log = np.concatenate(label_log)  # (N, 2)
        truth = examples["nsp_labels"].astype(np.int64)  # (N,)
        topic_only = (accuracy(np.concatenate(topic_log), truth) if sentence_task == "nsp"
                      else 0.5)
        bayes = {f"bayes_{sentence_task}_loss": float(-label_log[np.arange(n), truth].mean()),
                 f"bayes_{sentence_task}_accuracy": accuracy(label_log, truth),
                 f"topic_only_{sentence_task}_accuracy": topic_only}
        chance = {f"chance_{sentence_task}_loss": math.log(2.0),
                  f"chance_{sentence_task}_accuracy": 0.5}
    return {
        "bayes_mlm_loss": float(mlm_nll.mean()),
        **bayes,
        "uniform_mlm_loss": float(-np.log(uniform[picked, target]).mean()),
        "unigram_mlm_loss": float(-np.log(unigram[picked, target]).mean()),
        **chance,
        "num_mlm_labels": int(target.shape[0]),
        "num_examples": int(n),
    }


def accuracy(label_log: np.ndarray, truth: np.ndarray) -> float:
    """The accuracy of guessing label 1 where ``label_log`` (N, 2) says it is more likely than
    label 0, against ``truth`` (N,).

    A tie guesses 0. Labels that are exactly equally likely (as when a segment is all [MASK]:
    its two orders, or B following A and B cut from elsewhere, then explain the observations
    equally) may come out of the inference a few rounding errors apart, so log-odds within
    ``TIE`` count as a tie.
    """
    return float(((label_log[:, 1] - label_log[:, 0] > TIE) == truth).mean())
