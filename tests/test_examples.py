"""Examples: layout, masking statistics, NSP balance, determinism, and the optimum's properties."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bert.core.labels import IGNORE_INDEX as IGNORE
from bert.data.datasets import build_language, build_split
from bert.data.examples import (
    ARRAY_NAMES,
    content_view,
    make_examples,
    mask_tokens,
    observation_model,
    optimum,
)
from bert.data.language import Language, draw_language
from bert.data.params import DataParams
from bert.data.tokens import CLS, MASK, NUM_SPECIAL, PAD, SEP


def within(observed: float, expected: float, n: int, sigmas: float = 5.0) -> bool:
    """A frequency over n Bernoulli trials is within `sigmas` standard deviations."""
    return abs(observed - expected) <= sigmas * math.sqrt(expected * (1 - expected) / n)


@pytest.fixture(scope="module")
def sample():
    """A large sample: 8000 examples of length 32, many of them padded."""
    params = DataParams(short_sequence_probability=0.3)
    language = build_language(params)
    rng = np.random.default_rng(7)
    return make_examples(rng, language, 8000, 32, 0.15, 0.3), language


def originals(examples):
    labels = examples["mlm_labels"].astype(int)
    return np.where(labels >= 0, labels, examples["input_ids"])


def test_dtypes_and_shapes(sample):
    examples, _ = sample
    assert examples["input_ids"].dtype == np.uint8
    assert examples["mlm_labels"].dtype == np.int16
    for name in ("token_type_ids", "attention_mask", "nsp_labels"):
        assert examples[name].dtype == np.uint8
    assert examples["nsp_labels"].shape == (8000,)
    assert all(examples[name].shape == (8000, 32) for name in ("input_ids", "mlm_labels"))


def test_layout_is_consistent_with_the_separators(sample):
    examples, _ = sample
    ids = originals(examples)
    position = np.arange(32)[None, :]
    sep = ids == SEP
    assert (sep.sum(axis=1) == 2).all()
    first, second = sep.argmax(axis=1)[:, None], 31 - sep[:, ::-1].argmax(axis=1)[:, None]
    assert (ids[:, 0] == CLS).all() and (first >= 2).all() and (second >= first + 2).all()
    segment_b = (position > first) & (position <= second)
    np.testing.assert_array_equal(examples["token_type_ids"], segment_b)
    np.testing.assert_array_equal(examples["attention_mask"], position <= second)
    np.testing.assert_array_equal(ids == PAD, position > second)
    content = (position > 0) & (position < second) & (position != first)
    assert (ids[content] >= NUM_SPECIAL).all()
    padded = (ids == PAD).any(axis=1)
    assert 0.2 < padded.mean() < 0.3  # 0.3 of examples are short, most of those padded


def test_specials_and_padding_are_never_selected(sample):
    examples, _ = sample
    ids, labels = examples["input_ids"], examples["mlm_labels"]
    special = originals(examples) < NUM_SPECIAL
    assert (labels[special] == IGNORE).all()
    np.testing.assert_array_equal(ids[special], originals(examples)[special])
    assert ((labels == IGNORE) | (labels >= NUM_SPECIAL)).all()
    assert (ids[(ids < NUM_SPECIAL) & (labels != IGNORE)] == MASK).all()


def test_masking_rates(sample):
    examples, language = sample
    ids, labels = examples["input_ids"], examples["mlm_labels"]
    content = originals(examples) >= NUM_SPECIAL
    selected = labels >= 0
    assert within(selected[content].mean(), 0.15, content.sum())
    n = selected.sum()
    seen, original = ids[selected], labels[selected]
    c = language.num_content
    assert within((seen == MASK).mean(), 0.8, n)
    assert within(((seen != MASK) & (seen != original)).mean(), 0.1 * (1 - 1 / c), n)
    assert within((seen == original).mean(), 0.1 + 0.1 / c, n)
    replaced = seen[(seen != MASK) & (seen != original)]
    assert replaced.min() >= NUM_SPECIAL and replaced.max() < NUM_SPECIAL + c


def test_mask_tokens_leaves_special_tokens_alone():
    ids = np.array([[CLS, 5, 6, SEP, 7, SEP, PAD, PAD]] * 500)
    masked, labels = mask_tokens(np.random.default_rng(0), ids, 4, mask_probability=1.0)
    special = ids < NUM_SPECIAL
    np.testing.assert_array_equal(masked[special], ids[special])
    assert (labels[special] == IGNORE).all()
    np.testing.assert_array_equal(labels[~special], ids[~special])  # probability 1: all selected


def test_nsp_labels_are_balanced(sample):
    examples, _ = sample
    assert within(examples["nsp_labels"].mean(), 0.5, 8000)
    assert set(np.unique(examples["nsp_labels"])) == {0, 1}


def test_same_seed_same_bytes_other_seed_different():
    params = DataParams(num_test_batches=4)
    first = build_split(params, build_language(params), "test")
    again = build_split(params, build_language(params), "test")
    for name, array in first.items():
        assert array.tobytes() == again[name].tobytes()
    other_params = DataParams(num_test_batches=4, random_seed=1)
    other = build_split(other_params, build_language(other_params), "test")
    assert not np.array_equal(first["input_ids"], other["input_ids"])
    train = build_split(params, build_language(params), "train")
    assert not np.array_equal(first["input_ids"], train["input_ids"][:128])


def test_observation_model_rows_are_distributions():
    emission, emission_selected = observation_model(0.15, 5)
    np.testing.assert_allclose(emission.sum(axis=0), 1.0, rtol=1e-12)
    np.testing.assert_allclose(emission_selected.sum(axis=0), 1.0, rtol=1e-12)
    assert emission[5, 0] == pytest.approx(0.15 * 0.8)
    assert emission[0, 0] == pytest.approx(0.85 + 0.15 * (0.1 + 0.1 / 5))


def test_content_view_finds_the_slots():
    ids = np.array([[CLS, 4, MASK, SEP, 6, 7, SEP, PAD]])
    labels = np.full_like(ids, IGNORE)
    labels[0, 2] = 9
    view = content_view(ids, labels, num_content=6)
    assert view["len_a"].tolist() == [2] and view["length"].tolist() == [4]
    assert view["position"].tolist() == [[1, 2, 4, 5, 6]]
    assert view["symbols"].tolist() == [[0, 6, 2, 3, 6]]  # [MASK] and past-the-end -> C = 6
    assert view["labels"].tolist() == [[-1, 5, -1, -1, -1]]


def test_uniform_language_optimum_is_the_uniform_baseline():
    params = DataParams(transition_noise=1.0, num_test_batches=4)
    language = build_language(params)
    result = optimum(language, build_split(params, language, "test"), params.mask_probability)
    assert result["bayes_mlm_loss"] == pytest.approx(result["uniform_mlm_loss"], rel=1e-9)
    assert result["unigram_mlm_loss"] == pytest.approx(result["uniform_mlm_loss"], rel=1e-9)
    assert result["bayes_nsp_loss"] == pytest.approx(math.log(2), rel=1e-9)


@pytest.mark.parametrize(("seed", "noise", "topics"), [(0, 0.02, 4), (1, 0.3, 2), (2, 0.6, 8)])
def test_optimum_is_never_worse_than_the_baselines(seed, noise, topics):
    params = DataParams(random_seed=seed, transition_noise=noise, num_topics=topics,
                        num_test_batches=4)
    language = build_language(params)
    result = optimum(language, build_split(params, language, "test"), params.mask_probability)
    assert result["bayes_mlm_loss"] < min(result["uniform_mlm_loss"], result["unigram_mlm_loss"])
    assert result["bayes_nsp_loss"] < result["chance_nsp_loss"]
    assert result["bayes_nsp_accuracy"] > result["chance_nsp_accuracy"]


def test_default_parameters_leave_much_to_learn():
    """The demo's promise: the optimum is far below the unigram baseline and NSP is learnable."""
    params = DataParams(num_test_batches=8)
    language = build_language(params)
    result = optimum(language, build_split(params, language, "test"), params.mask_probability)
    assert result["bayes_mlm_loss"] < 0.5 * result["unigram_mlm_loss"]
    assert result["bayes_nsp_accuracy"] > 0.9
    # the topics alone give much of NSP, and the transition across [SEP] the rest
    assert 0.7 < result["topic_only_nsp_accuracy"] < result["bayes_nsp_accuracy"] - 0.05


def test_a_random_b_of_the_same_topic_leaves_only_the_transition():
    """random_next_topic: same reaches the sampler and the optimum: the topics alone are then
    at chance, and the transition across [SEP] still tells the labels apart."""
    params = DataParams(num_test_batches=8, random_next_topic="same")
    language = build_language(params)
    assert language.same_topic_random_next
    result = optimum(language, build_split(params, language, "test"), params.mask_probability)
    assert abs(result["topic_only_nsp_accuracy"] - 0.5) < 0.05
    assert result["bayes_nsp_accuracy"] > 0.85


def test_optimum_averages_the_exact_posteriors():
    """optimum() on a tiny dataset equals the mean of brute-force posteriors at the labels."""
    from tests.test_language import brute_force

    language = draw_language(np.random.default_rng(5), 3, 2, 2, 0.5, 0.1)
    examples = make_examples(np.random.default_rng(6), language, 12, 8, 0.4, 0.5)
    result = optimum(language, examples, 0.4, max_bytes=2000)  # several chunks
    view = content_view(examples["input_ids"], examples["mlm_labels"], 3)
    mlm_nll, nsp_nll = [], []
    for i in range(12):
        n = view["length"][i]
        mlm, p_random, _ = brute_force(language, view["symbols"][i, :n], view["len_a"][i], 0.4)
        labels = view["labels"][i, :n]
        mlm_nll += [-math.log(mlm[j, v]) for j, v in enumerate(labels) if v >= 0]
        nsp_nll.append(-math.log(p_random if examples["nsp_labels"][i] else 1 - p_random))
    assert result["num_mlm_labels"] == len(mlm_nll) > 0
    assert result["bayes_mlm_loss"] == pytest.approx(np.mean(mlm_nll), rel=1e-10)
    assert result["bayes_nsp_loss"] == pytest.approx(np.mean(nsp_nll), rel=1e-10)


def cyclic_language(num_content: int = 7) -> Language:
    """A language that always steps from token x to x + 1 (mod C): a segment is a run."""
    transition = np.roll(np.eye(num_content), 1, axis=1)[None]  # (1, C, C)
    return Language(np.ones(1), np.full((1, num_content), 1 / num_content), transition)


def segments(examples, row):
    """The content ids of A and B of one example (B empty without a sentence task)."""
    ids = originals(examples)[row]
    seps = np.flatnonzero(ids == SEP)
    return ids[1:seps[0]], ids[seps[0] + 1:seps[-1]]


def test_sop_shows_one_run_in_order_or_swapped():
    """Label 0: B continues A; label 1: A continues B (the second segment of the document is
    shown first). Either way one document: the segments are one run of the chain."""
    c = 7
    examples = make_examples(np.random.default_rng(0), cyclic_language(c), 400, 16, 0.15, 0.5,
                             "sop")
    for row in range(400):
        a, b = segments(examples, row)
        first, second = (b, a) if examples["nsp_labels"][row] else (a, b)
        run = np.concatenate([first, second]) - NUM_SPECIAL
        np.testing.assert_array_equal(np.diff(run) % c, 1)
    assert within(examples["nsp_labels"].mean(), 0.5, 400)


def test_the_layouts_of_each_sentence_task():
    language = cyclic_language()
    nsp = make_examples(np.random.default_rng(0), language, 50, 16, 0.15, 0.5)
    sop = make_examples(np.random.default_rng(0), language, 50, 16, 0.15, 0.5, "sop")
    for name in ("token_type_ids", "attention_mask", "mlm_labels"):  # the same cuts and masks
        np.testing.assert_array_equal(sop[name] >= 0, nsp[name] >= 0)
    none = make_examples(np.random.default_rng(0), language, 400, 16, 0.15, 0.5, "none")
    assert "nsp_labels" not in none and sorted(none) == sorted(set(ARRAY_NAMES) - {"nsp_labels"})
    ids = originals(none)
    assert (ids[:, 0] == CLS).all() and ((ids == SEP).sum(axis=1) == 1).all()
    assert not none["token_type_ids"].any()
    end = np.flatnonzero(ids == SEP) % 16  # (N,) the [SEP] of each example
    np.testing.assert_array_equal(none["attention_mask"], np.arange(16) <= end[:, None])
    np.testing.assert_array_equal(ids == PAD, np.arange(16) > end[:, None])
    assert (end - 1).max() == 14 and (end - 1).min() >= 2  # content T - 2, short from 2
    assert within((end < 15).mean(), 0.5 * 12 / 13, 400)  # short: uniform in 2 .. 14
    for row in range(400):  # one run of the chain
        run, b = segments(none, row)
        assert len(b) == 0
        np.testing.assert_array_equal(np.diff(run - NUM_SPECIAL) % 7, 1)


def test_content_view_of_one_segment():
    ids = np.array([[CLS, 4, MASK, 6, SEP, PAD]])
    labels = np.full_like(ids, IGNORE)
    labels[0, 2] = 9
    view = content_view(ids, labels, num_content=6, separators=1)
    assert view["len_a"].tolist() == [3] and view["length"].tolist() == [3]
    assert view["position"][0, :3].tolist() == [1, 2, 3] and view["position"].shape == (1, 4)
    assert view["symbols"].tolist() == [[0, 6, 2, 6]]
    assert view["labels"].tolist() == [[-1, 5, -1, -1]]


@pytest.mark.parametrize("sentence_task", ["sop", "none"])
def test_optimum_averages_the_exact_posteriors_of_each_task(sentence_task):
    """optimum() on a tiny dataset equals the mean of brute-force posteriors at the labels."""
    from tests.test_language import brute_force

    language = draw_language(np.random.default_rng(5), 3, 2, 2, 0.5, 0.1)
    examples = make_examples(np.random.default_rng(6), language, 12, 8, 0.4, 0.5, sentence_task)
    result = optimum(language, examples, 0.4, max_bytes=2000, sentence_task=sentence_task)
    view = content_view(examples["input_ids"], examples["mlm_labels"], 3,
                        1 if sentence_task == "none" else 2)
    mlm_nll, label_nll, correct = [], [], []
    for i in range(12):
        n = view["length"][i]
        mlm, p_label_1, _ = brute_force(language, view["symbols"][i, :n], view["len_a"][i], 0.4,
                                        sentence_task=sentence_task)
        labels = view["labels"][i, :n]
        mlm_nll += [-math.log(mlm[j, v]) for j, v in enumerate(labels) if v >= 0]
        if sentence_task == "sop":
            truth = examples["nsp_labels"][i]
            label_nll.append(-math.log(p_label_1 if truth else 1 - p_label_1))
            correct.append((p_label_1 > 0.5 + 1e-9) == truth)  # a tie guesses 0
    assert result["num_mlm_labels"] == len(mlm_nll) > 0
    assert result["bayes_mlm_loss"] == pytest.approx(np.mean(mlm_nll), rel=1e-10)
    if sentence_task == "sop":
        assert result["bayes_sop_loss"] == pytest.approx(np.mean(label_nll), rel=1e-10)
        assert result["bayes_sop_accuracy"] == np.mean(correct)
        assert result["topic_only_sop_accuracy"] == 0.5
        assert (result["chance_sop_loss"], result["chance_sop_accuracy"]) == (math.log(2), 0.5)
        assert not any("nsp" in key for key in result)
    else:
        assert sorted(result) == ["bayes_mlm_loss", "num_examples", "num_mlm_labels",
                                  "uniform_mlm_loss", "unigram_mlm_loss"]


def test_the_nsp_optimum_keeps_its_names():
    params = DataParams(num_test_batches=1)
    language = build_language(params)
    result = optimum(language, build_split(params, language, "test"), params.mask_probability)
    assert list(result) == ["bayes_mlm_loss", "bayes_nsp_loss", "bayes_nsp_accuracy",
                            "topic_only_nsp_accuracy", "uniform_mlm_loss", "unigram_mlm_loss",
                            "chance_nsp_loss", "chance_nsp_accuracy", "num_mlm_labels",
                            "num_examples"]


def test_default_language_sop_is_learnable_from_the_order_alone():
    """SOP on the default language: the optimum is far from chance although the topics tell
    nothing; and the MLM optimum under sop and none is below NSP's (no random B)."""
    params = DataParams(num_test_batches=8)
    language = build_language(params)
    scores = {}
    for task in ("nsp", "sop", "none"):
        task_params = DataParams(num_test_batches=8, sentence_task=task)
        scores[task] = optimum(language, build_split(task_params, language, "test"),
                               params.mask_probability, sentence_task=task)
    assert scores["sop"]["bayes_sop_accuracy"] > 0.9
    assert scores["sop"]["bayes_sop_loss"] < 0.2
    assert scores["sop"]["bayes_mlm_loss"] < scores["nsp"]["bayes_mlm_loss"]
    assert scores["none"]["bayes_mlm_loss"] < scores["nsp"]["bayes_mlm_loss"]
