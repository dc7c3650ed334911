"""The language and its exact inference, against brute-force enumeration and against sampling."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from bert.data.examples import content_view, make_examples, observation_model
from bert.data.inference import (
    chain_posterior,
    posterior,
    sop_posterior,
    swapped_slots,
    topic_only_nsp,
)
from bert.data.language import Language, draw_language, one_topic, sample_pairs, stationary


def tiny_language(seed: int = 0, num_content: int = 3, num_topics: int = 2,
                  same_topic: bool = False) -> Language:
    """A sharp language (few successors, low concentration) so that mistakes show."""
    rng = np.random.default_rng(seed)
    return draw_language(rng, num_content, num_topics, successors=2, concentration=0.5,
                         transition_noise=0.1, same_topic_random_next=same_topic)


def mechanisms(x: int, num_content: int, p: float):
    """Every way masking can treat original token x: (probability, observed symbol, selected)."""
    yield 1.0 - p, x, False  # not selected
    yield p * 0.8, num_content, True  # [MASK]
    for y in range(num_content):
        yield p * 0.1 / num_content, y, True  # random content token
    yield p * 0.1, x, True  # unchanged


def brute_force(language: Language, symbols, len_a: int, p: float, across_sep: bool = True,
                sentence_task: str = "nsp"):
    """Posteriors of one example by enumerating every original sequence, label and topic.

    symbols: observed content symbols of A+B (C = [MASK]). Returns (mlm (n, C), P(label 1),
    log P(observations)). Under nsp, a random B has A's topic if the language says so
    (``same_topic_random_next``); under sop, label 1 shows the chain's second segment first;
    without a sentence task (none) the symbols are one chain and P(label 1) is 0. With
    ``across_sep`` False, the segments are chains of their own, of one topic, wherever the
    process links A's last token to B's first (the topic-only rule).
    """
    num_topics, c = language.start.shape
    n = len(symbols)
    rho, start, trans = language.topic_prior, language.start, language.transition

    def chain(x, topic):  # P(segment x | topic), started from the start distribution
        prob = start[topic, x[0]]
        for prev, nxt in itertools.pairwise(x):
            prob *= trans[topic, prev, nxt]
        return prob

    def one_topic(*segments):  # P(segments | one topic), each a chain, or one chain over all
        if across_sep:
            segments = (sum(segments, ()),)
        return sum(rho[z] * math.prod(chain(s, z) for s in segments) for z in range(num_topics))

    def hypotheses(x):  # [(P(label), P(x | label))] for labels 0, 1
        a, b = x[:len_a], x[len_a:]
        if sentence_task == "none":
            return [(1.0, one_topic(x)), (0.0, 0.0)]
        if sentence_task == "sop":
            return [(0.5, one_topic(a, b)), (0.5, one_topic(b, a))]
        if language.same_topic_random_next:
            random = sum(rho[z] * chain(a, z) * chain(b, z) for z in range(num_topics))
        else:
            random = (sum(rho[z] * chain(a, z) for z in range(num_topics))
                      * sum(rho[z] * chain(b, z) for z in range(num_topics)))
        return [(0.5, one_topic(a, b)), (0.5, random)]

    def likelihood(o, x, selected_only):
        return sum(q for q, seen, sel in mechanisms(x, c, p) if seen == o and (sel or
                                                                          not selected_only))

    joint = np.zeros((n, c))  # P(x_j = v, observations, j selected) summed over all else
    evidence = label_1_mass = 0.0
    for x in itertools.product(range(c), repeat=n):
        (w0, p0), (w1, p1) = hypotheses(x)
        prior = w0 * p0 + w1 * p1
        liks = [likelihood(symbols[u], x[u], False) for u in range(n)]
        evidence += prior * math.prod(liks)
        label_1_mass += w1 * p1 * math.prod(liks)
        for j in range(n):
            others = math.prod(liks[:j] + liks[j + 1:])
            joint[j, x[j]] += prior * others * likelihood(symbols[j], x[j], True)
    return joint / joint.sum(axis=1, keepdims=True), label_1_mass / evidence, math.log(evidence)


@pytest.mark.parametrize("same_topic", [False, True], ids=["any-topic", "same-topic"])
@pytest.mark.parametrize(("symbols", "len_a"), [
    ((0, 2, 1, 3, 1), 2),  # a [MASK] (3) in B
    ((3, 3, 0, 1), 1),  # A entirely masked
    ((2, 0, 3, 3, 1), 4),  # B of length 1, masks in A
    ((1, 1), 1),  # shortest pair
])
def test_posterior_equals_brute_force(symbols, len_a, same_topic):
    language, p, num_slots = tiny_language(num_topics=3, same_topic=same_topic), 0.4, 6
    c = language.num_content
    padded = np.full((1, num_slots), c)  # slots past the end observe nothing
    padded[0, :len(symbols)] = symbols
    emission, emission_selected = observation_model(p, c)
    mlm, nsp, log_evidence = posterior(language, padded, np.array([len_a]),
                                       np.array([len(symbols)]), emission, emission_selected)
    want_mlm, want_random, want_log_evidence = brute_force(language, symbols, len_a, p)
    np.testing.assert_allclose(mlm[0, :len(symbols)], want_mlm, rtol=1e-10)
    np.testing.assert_allclose(np.exp(nsp[0]), [1 - want_random, want_random], rtol=1e-10)
    np.testing.assert_allclose(log_evidence[0], want_log_evidence, rtol=1e-12)


@pytest.mark.parametrize("sentence_task", ["sop", "none"])
@pytest.mark.parametrize(("symbols", "len_a"), [
    ((0, 2, 1, 3, 1), 2),  # a [MASK] (3) in B
    ((3, 3, 0, 1), 1),  # A entirely masked
    ((2, 0, 3, 3, 1), 4),  # B of length 1, masks in A
    ((1, 1), 1),  # shortest pair
    ((0, 1, 2, 3, 2, 1), 3),  # every slot
])
def test_sop_and_chain_posteriors_equal_brute_force(symbols, len_a, sentence_task):
    language, p, num_slots = tiny_language(num_topics=3), 0.4, 6
    c = language.num_content
    padded = np.full((2, num_slots), c)  # slots past the end observe nothing ...
    padded[:, :len(symbols)] = symbols
    padded[1, len(symbols):] = 0  # ... whatever they hold
    mlm, log_labels, log_evidence = exact_posterior(
        language, sentence_task, padded, np.array([len_a] * 2), np.array([len(symbols)] * 2), p)
    want_mlm, want_label_1, want_log_evidence = brute_force(language, symbols, len_a, p,
                                                            sentence_task=sentence_task)
    for row in range(2):
        np.testing.assert_allclose(mlm[row, :len(symbols)], want_mlm, rtol=1e-10)
        np.testing.assert_allclose(np.exp(log_labels[row]), [1 - want_label_1, want_label_1],
                                   rtol=1e-10, atol=1e-300)
        np.testing.assert_allclose(log_evidence[row], want_log_evidence, rtol=1e-12)


def test_the_order_of_the_segments_carries_evidence():
    """Where the two orders differ, the SOP posterior is far from 1/2 and its MLM posterior
    from the in-order chain's; the topic-only rule (segments scored as chains of their own) is
    exactly 1/2: the topics tell nothing about the order."""
    language, p, symbols, len_a = tiny_language(num_topics=3), 0.4, (0, 2, 1, 3, 1), 2
    _, label_1, _ = brute_force(language, symbols, len_a, p, sentence_task="sop")
    assert abs(label_1 - 0.5) > 0.05
    _, topic_only, _ = brute_force(language, symbols, len_a, p, across_sep=False,
                                   sentence_task="sop")
    assert topic_only == pytest.approx(0.5, abs=1e-14)
    observed = np.array([symbols])
    sop_mlm, _, _ = exact_posterior(language, "sop", observed, np.array([len_a]),
                                    np.array([5]), p)
    chain_mlm, _, _ = exact_posterior(language, "none", observed, np.array([5]), np.array([5]), p)
    assert np.abs(sop_mlm - chain_mlm).max() > 1e-2


def test_swapped_slots_reads_the_second_segment_first():
    order = swapped_slots(np.array([2, 1, 4]), np.array([5, 2, 5]), 6)
    assert order.tolist() == [[2, 3, 4, 0, 1, 5], [1, 0, 2, 3, 4, 5], [4, 0, 1, 2, 3, 5]]


def test_random_b_of_the_same_topic_changes_the_posterior():
    """The two processes differ, so the brute-force check above tells them apart."""
    symbols, len_a = np.array([[0, 2, 1, 3, 1, 3]]), np.array([2])
    emission, emission_selected = observation_model(0.4, 3)
    results = [posterior(tiny_language(num_topics=3, same_topic=same), symbols, len_a,
                         np.array([5]), emission, emission_selected) for same in (False, True)]
    assert abs(results[0][1][0, 1] - results[1][1][0, 1]) > 1e-3
    assert np.abs(results[0][0] - results[1][0]).max() > 1e-3


def test_topics_tell_nothing_when_a_random_b_keeps_the_topic():
    language = tiny_language(num_topics=3, same_topic=True)
    emission, _ = observation_model(0.4, 3)
    nsp = topic_only_nsp(language, np.array([[0, 2, 1, 3, 1, 3]]), np.array([2]), np.array([5]),
                         emission)
    np.testing.assert_allclose(np.exp(nsp), [[0.5, 0.5]], rtol=1e-12)


def test_one_topic_is_the_language_given_that_topic():
    language = tiny_language(num_topics=3)
    given = one_topic(language, 1)
    np.testing.assert_array_equal(given.topic_prior, [1.0])
    np.testing.assert_array_equal(given.start[0], language.start[1])
    np.testing.assert_array_equal(given.transition[0], language.transition[1])


@pytest.mark.parametrize(("symbols", "len_a"), [((0, 2, 1, 3, 1), 2), ((2, 0, 3, 3, 1), 4),
                                               ((1, 1), 1)])
def test_topic_only_nsp_equals_brute_force_without_the_transition_across_sep(symbols, len_a):
    language, p, num_slots = tiny_language(num_topics=3), 0.4, 6
    c = language.num_content
    padded = np.full((2, num_slots), c)
    padded[:, :len(symbols)] = symbols
    padded[1, len(symbols):] = 0  # slots past the end are ignored, whatever they hold
    emission, _ = observation_model(p, c)
    nsp = topic_only_nsp(language, padded, np.array([len_a] * 2),
                         np.array([len(symbols)] * 2), emission)
    _, want_random, _ = brute_force(language, symbols, len_a, p, across_sep=False)
    np.testing.assert_allclose(np.exp(nsp), [[1 - want_random, want_random]] * 2, rtol=1e-10)
    _, with_transition, _ = brute_force(language, symbols, len_a, p)
    assert abs(with_transition - want_random) > 1e-3  # the transition carries evidence here


@pytest.mark.parametrize(("sentence_task", "same_topic"), [
    ("nsp", False), ("nsp", True), ("sop", False), ("none", False)],
    ids=["nsp-any-topic", "nsp-same-topic", "sop", "none"])
def test_posterior_is_vectorized_over_examples(sentence_task, same_topic):
    """A batch gives, row by row, what each example gives alone."""
    language = tiny_language(seed=3, num_content=4, num_topics=3, same_topic=same_topic)
    rng = np.random.default_rng(0)
    symbols = rng.integers(0, 5, size=(6, 7))
    len_a, length = np.array([1, 2, 3, 5, 1, 6]), np.array([2, 7, 5, 7, 3, 7])
    batch = exact_posterior(language, sentence_task, symbols, len_a, length, 0.3)
    for i in range(6):
        alone = exact_posterior(language, sentence_task, symbols[i:i + 1], len_a[i:i + 1],
                                length[i:i + 1], 0.3)
        for got, want in zip(batch, alone, strict=True):
            np.testing.assert_allclose(got[i], want[0], rtol=1e-12)


def exact_posterior(language: Language, sentence_task: str, observed, len_a, length, p: float):
    """(mlm, log P(label) (N, 2), log P(observations)) by the inference of ``sentence_task``;
    without a sentence task, label 0 has probability 1."""
    emission, emission_selected = observation_model(p, language.num_content)
    if sentence_task == "none":
        mlm, log_evidence, _ = chain_posterior(language, observed, length, emission,
                                               emission_selected)
        return mlm, np.tile([0.0, -np.inf], (len(observed), 1)), log_evidence
    infer = posterior if sentence_task == "nsp" else sop_posterior
    return infer(language, observed, len_a, length, emission, emission_selected)


@pytest.mark.parametrize(("sentence_task", "same_topic"), [
    ("nsp", False), ("nsp", True), ("sop", False), ("none", False)],
    ids=["nsp-any-topic", "nsp-same-topic", "sop", "none"])
def test_sampler_draws_the_process_the_inference_assumes(sentence_task, same_topic):
    """Counts of (len_a, observed symbols, sentence label) over many sampled examples match the
    exact probabilities the inference assigns (a chi-square bound)."""
    language, p, seq = tiny_language(seed=1, num_content=2, same_topic=same_topic), 0.5, 6
    examples = make_examples(np.random.default_rng(2), language, 40_000, seq, p, 0.0,
                             sentence_task)
    separators = 1 if sentence_task == "none" else 2
    view = content_view(examples["input_ids"], examples["mlm_labels"], 2, separators)
    label = examples.get("nsp_labels", np.zeros(40_000, dtype=np.uint8))
    observed = np.concatenate([view["len_a"][:, None], view["symbols"], label[:, None]], axis=1)
    cells, counts = np.unique(observed, axis=0, return_counts=True)
    num_slots = seq - 1 - separators
    lengths_a = [num_slots] if sentence_task == "none" else range(1, num_slots)
    patterns = np.array([(a, *s) for a in lengths_a
                         for s in itertools.product(range(3), repeat=num_slots)])
    _, log_labels, log_evidence = exact_posterior(language, sentence_task, patterns[:, 1:],
                                                  patterns[:, 0],
                                                  np.full(len(patterns), num_slots), p)
    expected = {}
    for pattern, log_prob_labels, log_prob in zip(patterns, log_labels, log_evidence,
                                                  strict=True):
        for label in (0, 1):  # P(len_a) = 1 / len(lengths_a)
            probability = math.exp(log_prob + log_prob_labels[label]) / len(lengths_a)
            if probability > 0:
                expected[(*pattern, label)] = 40_000 * probability
    assert sum(expected.values()) == pytest.approx(40_000)
    seen = dict(zip(map(tuple, cells.tolist()), counts.tolist(), strict=True))
    assert set(seen) <= set(expected)
    chi2 = sum((seen.get(cell, 0) - e) ** 2 / e for cell, e in expected.items())
    dof = len(expected) - 1
    assert chi2 < dof + 6 * math.sqrt(2 * dof), chi2


@pytest.mark.parametrize("same_topic", [False, True], ids=["any-topic", "same-topic"])
def test_sample_pairs_random_next_switches_topics(same_topic):
    """With disjoint topic chains, a continuation stays in A's topic and a random B does not
    depend on A: B's first token is in A's topic only as often as the topic prior says, or
    always if a random B keeps the topic."""
    c = 4
    transition = np.zeros((2, c, c))
    transition[0, :2, :2] = 0.5  # topic 0 lives on tokens 0, 1
    transition[1, 2:, 2:] = 0.5  # topic 1 on tokens 2, 3
    transition[0, 2:, :2] = transition[1, :2, 2:] = 0.5  # unreachable rows, kept stochastic
    start = np.array([[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]])
    language = Language(np.array([0.5, 0.5]), start, transition, same_topic)
    rng = np.random.default_rng(0)
    n = 4000
    len_a = rng.integers(1, 6, size=n)
    random_next = rng.random(n) < 0.5
    tokens = sample_pairs(rng, language, len_a, random_next, 6)
    topic = tokens >= 2  # (N, L)
    same = topic == topic[:, :1]
    assert same[~random_next].all()
    first_b_same = np.take_along_axis(same, len_a[:, None], axis=1)[random_next, 0]
    if same_topic:
        assert same[random_next].all()
    else:
        assert abs(first_b_same.mean() - 0.5) < 5 * math.sqrt(0.25 / first_b_same.size)


def test_draw_language_is_a_valid_sparse_chain():
    language = draw_language(np.random.default_rng(0), 20, 3, successors=3, concentration=1.0,
                             transition_noise=0.05)
    np.testing.assert_allclose(language.transition.sum(axis=-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(language.start.sum(axis=-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(language.topic_prior, np.full(3, 1 / 3))
    # stationary: start @ A = start
    np.testing.assert_allclose(np.einsum("kc,kcd->kd", language.start, language.transition),
                               language.start, atol=1e-12)
    # sparsity: exactly `successors` entries above the noise floor per row
    above_noise = language.transition > 0.05 / 20 + 1e-12
    assert (above_noise.sum(axis=-1) <= 3).all() and (above_noise.sum(axis=-1) >= 1).all()
    assert language.unigram().shape == (20,)


def test_stationary_of_a_known_chain():
    transition = np.array([[[0.9, 0.1], [0.5, 0.5]]])
    np.testing.assert_allclose(stationary(transition), [[5 / 6, 1 / 6]], rtol=1e-12)

