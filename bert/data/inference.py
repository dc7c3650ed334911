"""Exact inference under the synthetic language (``bert.data.language``): the Bayes-optimal
posteriors of the masked tokens and of the sentence label, given everything a model sees.

The observation model (what masking does to a token, see
``bert.data.examples.observation_model``) is per position and independent, so exact inference is
forward-backward over ``(topic, token)`` states. NSP: run on the continuation hypothesis (one
chain over A+B) and on the random-next hypothesis (two independent chains), and mixed with
their likelihoods: :func:`posterior`. When a random B keeps A's topic, that inference runs once
per topic (given the topic, the two processes are the same) and the results are mixed by the
posterior of the topic.

The other sentence tasks reuse the same pieces. Sentence order (SOP): A+B is one chain of one
topic, cut in two, and shown in order (label 0) or with its second segment first (label 1), so
the two hypotheses are one chain over the shown slots and one over the shown slots read in chain
order: :func:`sop_posterior`. Without a sentence task, an example is one segment, one chain:
:func:`chain_posterior`.

Shapes: ``K`` topics, ``C`` content tokens, ``N`` examples, ``L`` content slots per example.
"""

from __future__ import annotations

import numpy as np

from bert.data.language import Language, one_topic


def _step(messages: np.ndarray, matrices: np.ndarray, log_scale: np.ndarray):
    """One scaled message update: (K, N, C) @ (K, C, C), renormalised to sum 1 per example."""
    out = messages @ matrices  # (K, N, C)
    total = out.sum(axis=(0, 2))  # (N,)
    total = np.where(total > 0, total, 1.0)  # all-zero messages (not started yet) stay zero
    out /= total[None, :, None]
    return out, log_scale + np.log(total)


def _emissions(emission: np.ndarray, observed: np.ndarray, length: np.ndarray) -> np.ndarray:
    """(L, N, C) P(observed symbol at slot j | original token): ``emission[observed]``, with 1
    at the slots past each example's end (they observe nothing)."""
    emit = emission[observed]  # (N, L, C)
    emit[np.arange(observed.shape[1])[None, :] >= length[:, None]] = 1.0
    return emit.transpose(1, 0, 2)


def _forward(language: Language, emit: np.ndarray,
             start: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Forward messages of a chain started at slot ``start`` (N,) from ``topic_prior * start``.

    emit: (L, N, C) from ``_emissions``. Returns messages (L, K, N, C) and their log scales
    (L, N): ``messages[j] * exp(log[j]) = P(obs of slots start..j-1, x_j, z)``, zero before
    ``start``; and log P(obs of slots start..L-1) (N,) (transitions keep mass, so the mass
    entering a slot is the likelihood of all before it).
    """
    num_slots, n, num_content = emit.shape
    init = language.topic_prior[:, None] * language.start  # (K, C)
    messages = np.empty((num_slots, language.num_topics, n, num_content))
    log = np.empty((num_slots, n))
    current = np.zeros((language.num_topics, n, num_content))
    log_current = np.zeros(n)
    for j in range(num_slots):
        restart = start == j
        current[:, restart] = init[:, None, :]
        log_current[restart] = 0.0
        messages[j], log[j] = current, log_current
        current, log_current = _step(current * emit[j], language.transition, log_current)
    return messages, log, log_current


def _backward(language: Language, emit: np.ndarray, end: np.ndarray):
    """Backward messages of a chain that ends at slot ``end`` (N,; -1: at the last slot),
    from the last slot to the first: yields ``(j, b, log)`` with ``b * exp(log) =
    P(obs of slots j+1..end | x_j, z)`` (B alone is such a chain: ``end`` then leaves it alone).
    """
    num_slots, n, num_content = emit.shape
    matrices_t = language.transition.transpose(0, 2, 1)  # backward: b = A @ next
    b = np.ones((language.num_topics, n, num_content))
    log = np.zeros(n)
    for j in reversed(range(num_slots)):
        if j < num_slots - 1:
            b, log = _step(b * emit[j + 1], matrices_t, log)
        cut = end == j
        b[:, cut] = 1.0
        log[cut] = 0.0
        yield j, b, log


def _selected(joint: np.ndarray, emission_selected: np.ndarray,
              observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """joint: (N, C) P(original token, all other observations) at one slot, up to a factor per
    example; observed: (N,) the slot's symbol. Returns P(original token | all observations, the
    slot was selected) (N, C), and the log of the normaliser (N,)."""
    p = joint * emission_selected[observed]  # this slot was selected
    mass = p.sum(axis=1)  # (N,)
    return p / mass[:, None], np.log(mass)


def _mix(log_prior: np.ndarray, mlm: np.ndarray, log_evidence: np.ndarray,
         log_selected: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posteriors under a mixture of hypotheses ``h`` with prior ``exp(log_prior)`` (H,), from
    each hypothesis's mlm (H, N, L, C), log_evidence (H, N) and log_selected (H, N, L) (as
    ``chain_posterior`` returns them). Returns mlm (N, L, C), log P(h | all observations) (H, N)
    and log_evidence (N,)."""
    log_joint = log_prior[:, None] + log_evidence  # (H, N)
    log_total = np.logaddexp.reduce(log_joint, axis=0)  # (N,)
    log_joint_selected = log_prior[:, None, None] + log_selected  # (H, N, L)
    slot_weight = np.exp(log_joint_selected - np.logaddexp.reduce(log_joint_selected, axis=0))
    mixed = (slot_weight[..., None] * mlm).sum(axis=0)  # (N, L, C)
    return mixed, log_joint - log_total, log_total


def posterior(
    language: Language,
    observed: np.ndarray,
    len_a: np.ndarray,
    length: np.ndarray,
    emission: np.ndarray,
    emission_selected: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact posteriors of the original tokens and of the NSP label, given what is observed.

    observed: (N, L) observed symbol per content slot, 0..C-1 a content token, C a [MASK];
        slots >= length may hold any symbol (they observe nothing).
    len_a, length: (N,) lengths of A and of A+B, 1 <= len_a < length <= L.
    emission: (C+1, C) P(observed symbol | original token) at a position whose selection is
        unknown; emission_selected: (C+1, C) the same given that the position was selected.
    Returns:
        mlm: (N, L, C) P(original token at slot j | all observations, slot j was selected).
        nsp: (N, 2) log P(label | all observations), label 0 = B follows A, 1 = B is random.
        log_evidence: (N,) log P(all observations | lengths).
    """
    if not language.same_topic_random_next or language.num_topics == 1:
        return _posterior_given_topics(language, observed, len_a, length, emission,
                                       emission_selected)[:3]
    # Given the topic, both hypotheses are those of the one-topic language: mix its posteriors,
    # each weighted by P(topic | what it is conditioned on).
    parts = [_posterior_given_topics(one_topic(language, k), observed, len_a, length, emission,
                                     emission_selected) for k in range(language.num_topics)]
    mlm_k, nsp_k, log_evidence_k, log_selected_k = (
        np.stack(arrays) for arrays in zip(*parts, strict=True))  # each with a leading K axis
    mlm, log_topic, log_evidence = _mix(np.log(language.topic_prior), mlm_k, log_evidence_k,
                                        log_selected_k)
    nsp = np.logaddexp.reduce(log_topic[..., None] + nsp_k, axis=0)  # (N, 2)
    return mlm, nsp, log_evidence


def _posterior_given_topics(language: Language, observed: np.ndarray, len_a: np.ndarray,
                            length: np.ndarray, emission: np.ndarray,
                            emission_selected: np.ndarray) -> tuple[np.ndarray, ...]:
    """``posterior`` (mlm, nsp, log_evidence) when the topic of a random B is drawn
    independently of A's, and log_selected: (N, L) log P(all observations), slot j's
    observation taken as that of a selected slot (``emission_selected``)."""
    n, num_slots = observed.shape
    emit = _emissions(emission, observed, length)  # (L, N, C)
    slots = np.arange(n)
    # Forward: f on one chain over A+B (label 0), g on B alone, restarted at slot len_a (label 1).
    f, log_f, log_ab = _forward(language, emit, np.zeros_like(len_a))  # log P(obs A+B | label 0)
    g, log_g, log_b = _forward(language, emit, len_a)  # log P(obs B | label 1)
    log_a = log_f[len_a, slots]  # log P(obs A)

    # Backward: b on the whole chain (also B alone, for j >= len_a); b_cut on the chain cut
    # after A (label 1, for j < len_a).
    mlm = np.empty((n, num_slots, language.num_content))
    log_selected = np.empty((n, num_slots))
    whole = _backward(language, emit, np.full_like(len_a, -1))
    cut_after_a = _backward(language, emit, len_a - 1)
    for (j, b, c_b), (_, b_cut, c_cut) in zip(whole, cut_after_a, strict=True):
        in_a = (j < len_a)[:, None]  # (N, 1)
        joint = (f[j] * b).sum(axis=0)  # (N, C) label 0, up to exp(w_joint)
        split = np.where(in_a, (f[j] * b_cut).sum(axis=0), (g[j] * b).sum(axis=0))  # label 1
        w_joint = log_f[j] + c_b  # (N,)
        w_split = np.where(in_a[:, 0], log_f[j] + c_cut + log_b, log_g[j] + c_b + log_a)
        top = np.maximum(w_joint, w_split)
        p = np.exp(w_joint - top)[:, None] * joint + np.exp(w_split - top)[:, None] * split
        mlm[:, j], log_mass = _selected(p, emission_selected, observed[:, j])
        log_selected[:, j] = np.log(0.5) + top + log_mass

    log_random = log_a + log_b
    log_total = np.logaddexp(log_ab, log_random)
    nsp = np.stack([log_ab - log_total, log_random - log_total], axis=1)  # (N, 2)
    return mlm, nsp, np.log(0.5) + log_total, log_selected


def chain_posterior(
    language: Language,
    observed: np.ndarray,
    length: np.ndarray,
    emission: np.ndarray,
    emission_selected: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact posteriors of the original tokens of one chain of one topic over slots
    ``0 .. length - 1`` (a segment of one document: the examples without a sentence task, and
    each order of a sentence-order pair). Arguments as for ``posterior``.

    Returns mlm (N, L, C) and log_evidence (N,) as ``posterior`` does, and log_selected (N, L):
    log P(all observations), slot j's observation taken as that of a selected slot.
    """
    n, num_slots = observed.shape
    emit = _emissions(emission, observed, length)  # (L, N, C)
    f, log_f, log_evidence = _forward(language, emit, np.zeros_like(length))
    mlm = np.empty((n, num_slots, language.num_content))
    log_selected = np.empty((n, num_slots))
    for j, b, log_b in _backward(language, emit, np.full_like(length, -1)):
        mlm[:, j], log_mass = _selected((f[j] * b).sum(axis=0), emission_selected, observed[:, j])
        log_selected[:, j] = log_f[j] + log_b + log_mass
    return mlm, log_evidence, log_selected


def swapped_slots(len_a: np.ndarray, length: np.ndarray, num_slots: int) -> np.ndarray:
    """(N, L) the shown slot of each position of the chain when the two segments are shown
    swapped: the chain runs through the second shown segment (slots ``len_a .. length - 1``),
    then the first (slots ``0 .. len_a - 1``); slots past ``length`` stay in place."""
    j = np.arange(num_slots)[None, :]  # (1, L)
    len_a, length = len_a[:, None], length[:, None]
    len_b = length - len_a
    return np.where(j < len_b, len_a + j, np.where(j < length, j - len_b, j))


def sop_posterior(
    language: Language,
    observed: np.ndarray,
    len_a: np.ndarray,
    length: np.ndarray,
    emission: np.ndarray,
    emission_selected: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact posteriors of the original tokens and of the sentence-order label (SOP).

    The process: one chain of one topic over two consecutive segments, shown in order (label 0)
    or swapped (label 1, the second segment first), each with probability 1/2. So the two
    hypotheses are ``chain_posterior`` over the shown slots, and over the shown slots read in
    chain order (``swapped_slots``); the topic is marginalised within each. Arguments and
    returns as for ``posterior``, with sop (N, 2) log P(label | all observations) in place of
    nsp.
    """
    num_slots = observed.shape[1]
    shown = chain_posterior(language, observed, length, emission, emission_selected)
    order = swapped_slots(len_a, length, num_slots)  # (N, L) chain position -> shown slot
    mlm_chain, log_evidence_chain, log_selected_chain = chain_posterior(
        language, np.take_along_axis(observed, order, axis=1), length, emission,
        emission_selected)
    back = np.argsort(order, axis=1)  # (N, L) shown slot -> chain position
    swapped = (np.take_along_axis(mlm_chain, back[..., None], axis=1), log_evidence_chain,
               np.take_along_axis(log_selected_chain, back, axis=1))
    mlm_h, log_evidence_h, log_selected_h = (np.stack(arrays)
                                             for arrays in zip(shown, swapped, strict=True))
    mlm, log_label, log_evidence = _mix(np.log([0.5, 0.5]), mlm_h, log_evidence_h,
                                        log_selected_h)
    return mlm, log_label.T, log_evidence


def segment_log_likelihoods(
    language: Language, emit: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """log P(observations in slots [lo, hi) | topic k), each segment a chain of its own started
    from ``start[k]``: (N, K).

    emit: (N, L, C) P(observed symbol at slot j | original token); lo, hi: (N,) slot bounds.
    """
    n, num_slots, _ = emit.shape
    message = np.repeat(language.start[:, None, :], n, axis=1)  # (K, N, C), one chain per topic
    log_likelihood = np.zeros((language.num_topics, n))
    for j in range(num_slots):
        inside = (lo <= j) & (j < hi)  # (N,)
        seen = message * emit[None, :, j]  # (K, N, C)
        total = seen.sum(axis=2)  # (K, N)
        total = np.where(total > 0, total, 1.0)
        log_likelihood += np.where(inside, np.log(total), 0.0)
        stepped = (seen / total[..., None]) @ language.transition
        message = np.where(inside[None, :, None], stepped, message)  # waits at start until lo
    return log_likelihood.T


def topic_only_nsp(
    language: Language,
    observed: np.ndarray,
    len_a: np.ndarray,
    length: np.ndarray,
    emission: np.ndarray,
) -> np.ndarray:
    """log P(NSP label | all observations) for a rule blind to the transition from A to B: (N, 2).

    The hypotheses of ``posterior``, except that under label 0 (B follows A) B is scored as a
    chain of its own from its topic's start distribution: A and B must share the topic, but the
    first token of B need not follow the last of A. What this rule gets right is what the topics
    alone tell; what ``posterior`` gets right beyond it comes from the transition across [SEP].
    Arguments as for ``posterior``.
    """
    if language.same_topic_random_next:  # both labels then mean the same for the topics
        return np.full((len(observed), 2), np.log(0.5))
    emit = emission[observed]  # (N, L, C)
    log_a = segment_log_likelihoods(language, emit, np.zeros_like(len_a), len_a)  # (N, K)
    log_b = segment_log_likelihoods(language, emit, len_a, length)
    log_prior = np.log(language.topic_prior)
    log_follows = np.logaddexp.reduce(log_prior + log_a + log_b, axis=1)
    log_random = (np.logaddexp.reduce(log_prior + log_a, axis=1)
                  + np.logaddexp.reduce(log_prior + log_b, axis=1))
    log_total = np.logaddexp(log_follows, log_random)
    return np.stack([log_follows - log_total, log_random - log_total], axis=1)


def context_free_posterior(
    frequencies: np.ndarray, observed: np.ndarray, emission_selected: np.ndarray
) -> np.ndarray:
    """The best prediction from the observed symbol at the slot alone, tokens assumed i.i.d.

    frequencies: (C,) assumed token distribution (uniform or unigram); observed: (...) symbols.
    Returns (..., C) P(original token | observed symbol, selected).
    """
    p = frequencies * emission_selected[observed]  # (..., C)
    return p / p.sum(axis=-1, keepdims=True)
