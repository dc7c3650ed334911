"""The synthetic language: its vocabulary and the process that generates its text.

A *language* is drawn once from the data seed: ``K`` topics with prior ``rho`` (uniform), and per
topic ``k`` a first-order Markov chain over the ``C`` content tokens with transition matrix
``A[k]`` (each row: ``successors`` tokens with Dirichlet(``concentration``) weights, mixed with
``transition_noise`` of uniform) and start distribution ``start[k]``, the stationary
distribution of ``A[k]``. A document is one long chain of one topic started from ``start[k]``;
since the chain is stationary, a segment cut from a document at any offset is again a chain
started from ``start[k]``. A sentence pair (A, B) is then:

    z ~ rho;  A = x_1..x_a  ~ chain of topic z from start[z]
    label 0 (B follows A):    B = x_{a+1}..x_{a+b} continues the same chain (first step A[z][x_a])
    label 1 (B is random):    z' ~ rho independently (another document, same topic or not),
                              or z' = z if the language's random B keeps the topic;
                              B ~ a fresh chain of topic z' from start[z']

with the lengths ``a, b`` and the label drawn independently of the tokens. Sentence order (SOP)
cuts one chain in two and shows its segments in order or swapped; without a sentence task an
example is one segment. Exact inference under this process is ``bert.data.inference``.

Shapes: ``K`` topics, ``C`` content tokens, ``N`` examples, ``L`` content slots per example.
Content tokens are indexed ``0..C-1`` here; their vocabulary ids are ``NUM_SPECIAL + index``
(``bert.data.tokens``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Language:
    """A drawn language. All arrays float64, every row a probability distribution.

    topic_prior: (K,) probability of each topic.
    start: (K, C) distribution of the first token of a segment (stationary for ``transition``).
    transition: (K, C, C) ``transition[k, x, y] = P(next = y | token x, topic k)``.
    same_topic_random_next: a random B is cut from another document of A's topic (else of a
        topic drawn independently), so that only the transition across [SEP] tells the labels
        apart.
    """

    topic_prior: np.ndarray
    start: np.ndarray
    transition: np.ndarray
    same_topic_random_next: bool = False

    @property
    def num_topics(self) -> int:
        return self.start.shape[0]

    @property
    def num_content(self) -> int:
        return self.start.shape[1]

    def unigram(self) -> np.ndarray:
        """(C,) frequency of each content token in the language (the marginal of any position)."""
        return self.topic_prior @ self.start


def stationary(transition: np.ndarray) -> np.ndarray:
    """(K, C, C) row-stochastic matrices with positive entries -> (K, C) stationary distributions.

    Solves ``pi (A - I) = 0, sum(pi) = 1`` (unique for an irreducible chain).
    """
    num_topics, num_content, _ = transition.shape
    system = transition.transpose(0, 2, 1) - np.eye(num_content)  # (K, C, C): (A^T - I) pi = 0
    system[:, -1, :] = 1.0  # replace one redundant equation by sum(pi) = 1
    rhs = np.zeros((num_topics, num_content, 1))
    rhs[:, -1] = 1.0
    pi = np.linalg.solve(system, rhs)[..., 0]
    pi = np.clip(pi, 0.0, None)
    return pi / pi.sum(axis=1, keepdims=True)


def draw_language(
    rng: np.random.Generator,
    num_content: int,
    num_topics: int,
    successors: int,
    concentration: float,
    transition_noise: float,
    same_topic_random_next: bool = False,
) -> Language:
    """Draw the topic chains: per row, ``successors`` distinct tokens with Dirichlet weights."""
    shape = (num_topics, num_content)
    # distinct successors per row: the first `successors` of a random permutation
    chosen = np.argsort(rng.random((*shape, num_content)), axis=-1)[..., :successors]  # (K, C, s)
    weights = rng.dirichlet(np.full(successors, concentration), size=shape)  # (K, C, s)
    sparse = np.zeros((*shape, num_content))
    np.put_along_axis(sparse, chosen, weights, axis=-1)
    transition = (1.0 - transition_noise) * sparse + transition_noise / num_content  # (K, C, C)
    topic_prior = np.full(num_topics, 1.0 / num_topics)
    return Language(topic_prior, stationary(transition), transition, same_topic_random_next)


def one_topic(language: Language, topic: int) -> Language:
    """The language restricted to ``topic`` (prior 1): the process given that topic."""
    return Language(np.ones(1), language.start[topic:topic + 1],
                    language.transition[topic:topic + 1])


def _sample_rows(rng: np.random.Generator, cdf: np.ndarray) -> np.ndarray:
    """One draw per row of (N, C) cumulative distributions -> (N,) indices."""
    u = rng.random(cdf.shape[0])  # (N,)
    return np.minimum((u[:, None] >= cdf).sum(axis=1), cdf.shape[1] - 1)


def sample_pairs(
    rng: np.random.Generator,
    language: Language,
    len_a: np.ndarray,
    random_next: np.ndarray,
    num_slots: int,
) -> np.ndarray:
    """Sample sentence pairs A+B of the process above, vectorized over examples.

    len_a: (N,) length of A (>= 1); B fills slots len_a .. num_slots - 1 (the caller keeps the
    first ``length`` slots). random_next: (N,) bool, True if B is a segment of another document.
    Returns (N, L = num_slots) content indices.
    """
    n = len_a.shape[0]
    start_cdf = np.cumsum(language.start, axis=-1)  # (K, C)
    transition_cdf = np.cumsum(language.transition, axis=-1)  # (K, C, C)
    topic_a = rng.choice(language.num_topics, size=n, p=language.topic_prior)  # (N,)
    topic_b = rng.choice(language.num_topics, size=n, p=language.topic_prior)  # (N,)
    if language.same_topic_random_next:
        topic_b = topic_a
    tokens = np.empty((n, num_slots), dtype=np.int64)
    for j in range(num_slots):
        in_random_b = random_next & (j >= len_a)
        topic = np.where(in_random_b, topic_b, topic_a)  # (N,)
        fresh = (j == 0) | (random_next & (j == len_a))  # (N,) a segment starts here
        if j == 0:
            cdf = start_cdf[topic]  # (N, C)
        else:
            cdf = transition_cdf[topic, tokens[:, j - 1]]  # (N, C)
            cdf[fresh] = start_cdf[topic[fresh]]
        tokens[:, j] = _sample_rows(rng, cdf)
    return tokens
