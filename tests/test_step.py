"""The training step over micro-batches: their losses and gradients add up to the batch's."""

from __future__ import annotations

import copy
import itertools
import threading

import numpy as np
import pytest

from bert.core.flat import FlatParams
from bert.core.layers import cross_entropy_backward, cross_entropy_forward
from bert.core.model import backward, forward
from bert.core.optim import AdamWConfig, init_state
from bert.core.step import Partial, PieceSums, training_step
from bert.core.summation import pieces, tree_sum
from tests.test_model import TINY, make_batch, perturbed_model


def batch_of(rows: int, seed: int = 0) -> dict[str, np.ndarray]:
    """``rows`` examples: make_batch's three rows, repeated from fresh draws."""
    rng = np.random.default_rng(seed)
    parts = [make_batch(rng, TINY) for _ in range(-(-rows // 3))]
    return {k: np.concatenate([p[k] for p in parts])[:rows] for k in parts[0]}


def test_a_normaliser_divides_the_summed_loss_and_its_gradient():
    rng = np.random.default_rng(0)
    logits, labels = rng.normal(size=(6, 5)), np.array([1, -100, 3, 0, -100, 4])
    mean, cache = cross_entropy_forward(logits, labels)
    part, part_cache = cross_entropy_forward(logits, labels, normalizer=10)
    assert part == pytest.approx(mean * 4 / 10, rel=1e-14)
    dout = 0.7
    np.testing.assert_allclose(cross_entropy_backward(dout, part_cache),
                               cross_entropy_backward(dout, cache) * 4 / 10, rtol=1e-14)


@pytest.mark.parametrize("micro_batches", [2, 3, 6])
def test_micro_batch_gradients_add_up_to_the_batch_gradient(micro_batches):
    model = perturbed_model(TINY)
    batch = batch_of(6)
    losses, cache = forward(model.params, TINY, batch, None, 1.0, 0.5)
    grads = backward(model.params, TINY, cache)
    counts = (int((batch["mlm_labels"] != -100).sum()), 6)
    size = 6 // micro_batches
    total = {"mlm": 0.0, "nsp": 0.0}
    summed = {name: np.zeros_like(g) for name, g in grads.items()}
    for i in range(micro_batches):
        micro = {k: v[i * size:(i + 1) * size] for k, v in batch.items()}
        part, part_cache = forward(model.params, TINY, micro, None, 1.0, 0.5, counts)
        for name, grad in backward(model.params, TINY, part_cache).items():
            summed[name] += grad
        total["mlm"] += part["mlm"]
        total["nsp"] += part["nsp"]
    assert total["mlm"] == pytest.approx(losses["mlm"], rel=1e-13)
    assert total["nsp"] == pytest.approx(losses["nsp"], rel=1e-13)
    for name in grads:
        np.testing.assert_allclose(summed[name], grads[name], rtol=1e-10, atol=1e-14,
                                   err_msg=name)


def step(micro_batches: int, rng) -> tuple[dict, dict]:
    model = perturbed_model(TINY)
    params, optimizer = copy.deepcopy(model.params), init_state(model.params)
    result = training_step(params, TINY, batch_of(6), optimizer, lr=1e-2, adamw=AdamWConfig(),
                           max_grad_norm=1.0, rng=rng, micro_batches=micro_batches)
    return params, result.losses


def test_a_step_over_micro_batches_is_the_step_over_the_batch():
    whole, whole_losses = step(1, None)
    parts, part_losses = step(3, None)
    assert part_losses == pytest.approx(whole_losses, rel=1e-13)
    for name in whole:
        np.testing.assert_allclose(parts[name], whole[name], rtol=1e-9, atol=1e-12)


def test_each_micro_batch_draws_dropout_from_its_own_stream():
    config = TINY.__class__(**{**TINY.__dict__, "hidden_dropout_prob": 0.2})
    asked = []

    def streams(index):
        asked.append(index)
        return np.random.default_rng([7, index])

    model = perturbed_model(config)
    params, optimizer = copy.deepcopy(model.params), init_state(model.params)
    training_step(params, config, batch_of(6), optimizer, lr=1e-2, adamw=AdamWConfig(),
                  max_grad_norm=0.0, rng=streams, micro_batches=3)
    assert asked == [0, 1, 2]


def partials(count: int) -> list[Partial]:
    """Micro-batch sums of float32 values of mixed magnitudes, so that the order of the
    additions shows in the bits."""
    rng = np.random.default_rng(count)
    return [Partial(FlatParams.of({"w": (rng.normal(size=500)
                                         * 10.0 ** rng.integers(-4, 4, size=500))
                                        .astype(np.float32)}),
                    float(rng.normal()), float(rng.normal()))
            for _ in range(count)]


def fresh(values: list[Partial]) -> list[Partial]:
    return [Partial(FlatParams.of({"w": v.grads["w"]}), v.mlm, v.nsp) for v in values]


@pytest.mark.parametrize(("count", "block"), [(4, (0, 4)), (5, (0, 5)), (6, (3, 6))])
def test_piece_sums_have_the_trees_bits_whatever_order_the_micro_batches_finish_in(count, block):
    values = partials(count)
    nodes = pieces(block, count)
    expected = [tree_sum(node, lambda n: fresh(values)[n[0]] if n[1] - n[0] == 1 else None,
                         lambda a, b: Partial({"w": a.grads["w"] + b.grads["w"]},
                                              a.mlm + b.mlm, a.nsp + b.nsp))
                for node in nodes]
    for order in itertools.permutations(range(*block)):
        sums, leaves = PieceSums(nodes), fresh(values)
        for i in order:
            sums.put((i, i + 1), leaves[i])
        for got, want in zip(sums.sums(nodes), expected, strict=True):
            np.testing.assert_array_equal(got.grads["w"], want.grads["w"])
            assert (got.mlm, got.nsp) == (want.mlm, want.nsp)


def test_piece_sums_add_as_soon_as_siblings_meet_and_keep_nothing_else():
    sums, leaves = PieceSums([(0, 8)]), fresh(partials(8))
    for i in range(8):
        sums.put((i, i + 1), leaves[i])
        # in order, what is kept is one sum per 1 bit of i + 1, as the sequential tree keeps
        assert len(sums._known) == bin(i + 1).count("1")
    (total,) = sums.sums([(0, 8)])
    assert total is leaves[0]  # summed into the first leaf's arrays, as tree_sum does


def test_piece_sums_from_several_threads_have_the_trees_bits():
    values, nodes = partials(8), [(0, 8)]
    in_order = PieceSums(nodes)
    for i, leaf in enumerate(fresh(values)):
        in_order.put((i, i + 1), leaf)
    sums, leaves, start = PieceSums(nodes), fresh(values), threading.Barrier(8)

    def bring(i: int) -> None:
        start.wait()
        sums.put((i, i + 1), leaves[i])

    threads = [threading.Thread(target=bring, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    np.testing.assert_array_equal(sums.sums(nodes)[0].grads["w"],
                                  in_order.sums(nodes)[0].grads["w"])


@pytest.mark.parametrize("micro_batches", [1, 3])
def test_without_sentence_labels_the_sentence_head_stays_bit_identical(micro_batches):
    """Steps on batches without nsp_labels leave the pooler and the sentence classifier exactly
    as they were (no gradient, no moments, no weight decay), as torch's AdamW leaves a parameter
    whose gradient is None; every other decayed parameter moves."""
    from bert.core.model import in_sentence_head
    from bert.core.parameters import is_decayed

    model = perturbed_model(TINY)
    start = copy.deepcopy(dict(model.params))
    params, optimizer = model.params, init_state(model.params)
    for seed in range(3):
        batch = {k: v for k, v in batch_of(6, seed).items() if k != "nsp_labels"}
        result = training_step(params, TINY, batch, optimizer, lr=1e-2,
                               adamw=AdamWConfig(weight_decay=0.5), max_grad_norm=1.0, rng=None,
                               micro_batches=micro_batches)
        assert result.losses["nsp"] == 0 and result.losses["total"] == result.losses["mlm"]
    for name, value in params.items():
        if in_sentence_head(name):
            np.testing.assert_array_equal(value, start[name], err_msg=name)
            assert not optimizer["exp_avg"][name].any(), name
            assert not optimizer["exp_avg_sq"][name].any(), name
        elif is_decayed(name):
            assert not np.array_equal(value, start[name]), name
