"""Dynamic masking: fresh masks each epoch, keyed by (seed, epoch, example) alone, BERT's
80/10/10 at the selection probability, never a special token, and every example masked."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bert.core.labels import IGNORE_INDEX as IGNORE
from bert.data.datasets import build_language, build_split
from bert.data.examples import replace_with
from bert.data.masking import (
    MaskingSpec,
    at_least_one,
    continuations,
    mask_draws,
    masked_epoch,
    masked_rows,
    unmasked,
)
from bert.data.params import DataParams
from bert.data.tokens import CLS, MASK, NUM_SPECIAL, NUM_TEXT_SPECIAL, PAD, SEP, UNK

SPEC = MaskingSpec(0.15, NUM_SPECIAL, 64)


@pytest.fixture(scope="module")
def train():
    """The unmasked examples of a small synthetic training set (6400 examples of 32)."""
    params = DataParams(num_train_batches=200, short_sequence_probability=0.3)
    return unmasked(build_split(params, build_language(params), "train"))


def originals(batch):
    labels = batch["mlm_labels"].astype(np.int64)
    return np.where(labels >= 0, labels, batch["input_ids"])


def within(observed: float, expected: float, n: int, sigmas: float = 5.0) -> bool:
    return abs(observed - expected) <= sigmas * math.sqrt(expected * (1 - expected) / n)


def test_unmasked_restores_the_original_tokens():
    params = DataParams(num_test_batches=4)
    static = build_split(params, build_language(params), "test")
    plain = unmasked(static)
    assert "mlm_labels" not in plain and plain["input_ids"].dtype == static["input_ids"].dtype
    np.testing.assert_array_equal(plain["input_ids"], originals(static))
    assert (originals(static) != static["input_ids"]).any()  # there was something to undo
    for name in ("token_type_ids", "attention_mask", "nsp_labels"):
        assert plain[name] is static[name]


def test_an_epoch_is_a_masked_copy_of_the_examples(train):
    epoch = masked_epoch(train, 0, 0, SPEC)
    assert sorted(epoch) == sorted([*train, "mlm_labels"])
    assert epoch["input_ids"].dtype == np.uint8 and epoch["mlm_labels"].dtype == np.int16
    np.testing.assert_array_equal(originals(epoch), train["input_ids"])
    for name in ("token_type_ids", "attention_mask", "nsp_labels"):
        np.testing.assert_array_equal(epoch[name], train[name])


def test_masks_differ_between_epochs_and_seeds_and_repeat_for_the_same(train):
    first = masked_epoch(train, 0, 0, SPEC)
    np.testing.assert_array_equal(masked_epoch(train, 0, 0, SPEC)["input_ids"],
                                  first["input_ids"])
    for other in (masked_epoch(train, 0, 1, SPEC), masked_epoch(train, 1, 0, SPEC)):
        changed = (other["mlm_labels"] != first["mlm_labels"]).any(axis=1)
        assert changed.mean() > 0.9  # nearly every example is masked otherwise


def test_the_mask_of_an_example_does_not_depend_on_its_batch(train):
    """Batches in any order and of any size, repeated rows, a shorter set, or one example
    alone: example i of epoch e gets the same mask."""
    whole = masked_epoch(train, 7, 3, SPEC)
    n = len(train["input_ids"])
    order = np.random.default_rng(0).permutation(n)
    cuts = np.sort(np.random.default_rng(1).choice(np.arange(1, n), size=40, replace=False))
    for rows in np.split(order, cuts):
        batch = masked_rows(train, rows, 7, 3, SPEC)
        for name, array in batch.items():
            np.testing.assert_array_equal(array, whole[name][rows])
    rows = np.array([5, 5, 4, 900, 6, 5])
    batch = masked_rows(train, rows, 7, 3, SPEC)
    np.testing.assert_array_equal(batch["input_ids"], whole["input_ids"][rows])
    head = {name: array[:1000] for name, array in train.items()}
    np.testing.assert_array_equal(masked_epoch(head, 7, 3, SPEC)["mlm_labels"],
                                  whole["mlm_labels"][:1000])
    np.testing.assert_array_equal(masked_rows(train, [123], 7, 3, SPEC)["mlm_labels"][0],
                                  whole["mlm_labels"][123])


def test_the_draws_are_those_of_a_counter_stream():
    """Example i's draws are a stretch of one Philox stream keyed by the seed, at a counter
    given by the epoch and i: so they can be drawn for any rows without the others."""
    draws = mask_draws(3, 2, np.arange(10), 5)  # (3, 10, 5); 3 T = 15 -> W = 16
    assert draws.shape == (3, 10, 5) and (0 <= draws).all() and (draws < 1).all()
    key = np.random.SeedSequence([3, 3]).generate_state(2, np.uint64)
    stream = np.random.Generator(np.random.Philox(counter=[0, 2, 0, 0], key=key))
    flat = stream.random((10, 16))[:, :15].reshape(10, 3, 5).transpose(1, 0, 2)
    np.testing.assert_array_equal(draws, flat)
    assert np.unique(draws).size == draws.size  # no stretch of the stream is used twice


def test_selection_rate_and_the_80_10_10(train):
    batch = masked_epoch(train, 0, 2, SPEC)
    eligible = train["input_ids"] >= NUM_SPECIAL
    selected = batch["mlm_labels"] >= 0
    assert not (selected & ~eligible).any()
    # each example: n p expected, plus one when none is drawn, (1 - p)^n
    n = eligible.sum(axis=1)
    expected = (n * 0.15 + 0.85 ** n).sum()
    assert abs(selected.sum() - expected) < 5 * math.sqrt(expected)
    seen = batch["input_ids"][selected].astype(int)
    original = batch["mlm_labels"][selected].astype(int)
    c, m = 60, selected.sum()
    assert within((seen == MASK).mean(), 0.8, m)
    assert within(((seen != MASK) & (seen != original)).mean(), 0.1 * (1 - 1 / c), m)
    assert within((seen == original).mean(), 0.1 + 0.1 / c, m)
    replaced = seen[(seen != MASK) & (seen != original)]  # random tokens (those not the same)
    assert np.unique(replaced).tolist() == list(range(NUM_SPECIAL, 64))  # every content token


def test_special_tokens_and_padding_are_never_touched(train):
    ids = train["input_ids"]
    for epoch in range(3):
        batch = masked_epoch(train, 0, epoch, MaskingSpec(0.9, NUM_SPECIAL, 64))
        special = ids < NUM_SPECIAL
        assert (batch["mlm_labels"][special] == IGNORE).all()
        np.testing.assert_array_equal(batch["input_ids"][special], ids[special])
    text = {"input_ids": np.array([[CLS, UNK, 7, 8, SEP, 9, UNK, SEP, PAD, PAD]] * 300)}
    batch = masked_epoch(text, 0, 0, MaskingSpec(1.0, NUM_TEXT_SPECIAL, 12))
    content = text["input_ids"] >= NUM_TEXT_SPECIAL  # [UNK] is not a WordPiece to predict
    np.testing.assert_array_equal(batch["mlm_labels"] >= 0, content)
    np.testing.assert_array_equal(batch["input_ids"][~content], text["input_ids"][~content])
    assert batch["input_ids"][content & (batch["input_ids"] != MASK)].min() >= NUM_TEXT_SPECIAL


def test_every_example_has_a_masked_token(train):
    """At a tiny probability the rule alone selects: exactly one token per example, uniform
    over the example's content tokens."""
    batch = masked_epoch(train, 0, 0, MaskingSpec(1e-9, NUM_SPECIAL, 64))
    selected = batch["mlm_labels"] >= 0
    assert (selected.sum(axis=1) == 1).all()
    full = train["attention_mask"].sum(axis=1) == 32  # 29 content tokens at 30 positions
    content_rank = np.cumsum(train["input_ids"] >= NUM_SPECIAL, axis=1) - 1
    rank = content_rank[selected][full]  # (M,) which content token of its example
    counts = np.bincount(rank, minlength=29)
    expected = full.sum() / 29
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 28 + 6 * math.sqrt(2 * 28), chi2
    everything = masked_epoch(train, 0, 0, MaskingSpec(1.0, NUM_SPECIAL, 64))
    np.testing.assert_array_equal(everything["mlm_labels"] >= 0,
                                  train["input_ids"] >= NUM_SPECIAL)


def test_at_least_one_takes_the_lowest_eligible_draw():
    selected = np.array([[False, False, False, False], [False, True, False, False],
                         [False, False, False, False]])
    draw = np.array([[0.5, 0.2, 0.1, 0.3], [0.9, 0.8, 0.1, 0.1], [0.5, 0.5, 0.5, 0.5]])
    eligible = np.array([[True, True, False, True], [True, True, True, True],
                         [False, False, False, False]])
    out = at_least_one(selected, draw, eligible)
    assert out.tolist() == [[False, True, False, False], [False, True, False, False],
                            [False, False, False, False]]


def test_whole_word_masking_selects_a_word_with_all_its_pieces():
    vocab = ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]", "un", "##believ", "##able", "cat",
             "dog"]
    continuation = continuations(vocab)
    assert continuation.tolist() == [False] * 6 + [True, True] + [False, False]
    rng = np.random.default_rng(0)
    words = [[5, 6, 7], [8], [9], [5, 7]]
    rows = []
    for _ in range(2000):
        tokens = [t for i in rng.integers(4, size=6) for t in words[i]]
        rows.append([CLS, *tokens, SEP] + [PAD] * (22 - len(tokens)))
    examples = {"input_ids": np.array(rows, dtype=np.uint8)}
    spec = MaskingSpec(0.2, NUM_TEXT_SPECIAL, len(vocab), continuation)
    for epoch in range(2):
        labels = masked_epoch(examples, 4, epoch, spec)["mlm_labels"]
        selected = labels >= 0
        ids = examples["input_ids"]
        inner = continuation[ids]  # a ## piece: selected exactly when the piece before it is
        np.testing.assert_array_equal(selected[:, 1:][inner[:, 1:]],
                                      selected[:, :-1][inner[:, 1:]])
        heads = (ids >= NUM_TEXT_SPECIAL) & ~inner
        words_per_example = heads.sum(axis=1)
        expected = (words_per_example * 0.2 + 0.8 ** words_per_example).sum() / heads.sum()
        assert within(selected[heads].mean(), expected, heads.sum())


def test_replace_with_follows_the_action_draw():
    ids = np.array([[10, 11, 12, 13]])
    selected = np.array([[True, True, True, False]])
    action = np.array([[0.79, 0.85, 0.95, 0.1]])
    random_tokens = np.array([[20, 21, 22, 23]])
    input_ids, labels = replace_with(ids, selected, action, random_tokens)
    assert input_ids.tolist() == [[MASK, 21, 12, 13]]
    assert labels.tolist() == [[10, 11, 12, IGNORE]]
