"""The compute pool: every block once, errors raised, tasks whole on one thread each, and the
same bits for every thread count (micro-batches on threads included)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from bert.bench.batches import make_batch
from bert.bench.sizes import SIZES, make_config
from bert.core.optim import AdamWConfig, init_state
from bert.core.parameters import init_params
from bert.core.step import training_step
from bert.engine import pool


@pytest.fixture(params=[1, 2, 3], ids=lambda n: f"{n}-threads")
def threads(request):
    before = pool.threads()
    yield pool.set_threads(request.param)
    pool.set_threads(before)


def test_every_row_is_covered_once(threads):
    seen = np.zeros(1000, dtype=int)
    lock, names = threading.Lock(), set()

    def chain(rows: slice) -> None:
        with lock:
            seen[rows] += 1
            names.add(threading.current_thread().name)

    pool.for_blocks(1000, 7, chain)
    assert np.all(seen == 1)
    assert len(names) <= threads
    pool.for_blocks(0, 7, chain)  # no rows: nothing to do
    assert np.all(seen == 1)


def test_an_error_in_a_block_is_raised_by_the_caller(threads):
    def chain(rows: slice) -> None:
        if rows.start == 42:
            raise ValueError("block 42")

    with pytest.raises(ValueError, match="block 42"):
        pool.for_blocks(100, 1, chain)
    pool.for_blocks(100, 1, lambda rows: None)  # the pool still works afterwards


def chain_threads(meet: int = 1) -> set[str]:
    """The threads that ran the blocks of a chain worth sharing (``meet`` blocks); each block
    waits until ``meet`` blocks have started, so that only ``meet`` threads at once get past,
    and every thread of the pool takes a block when ``meet`` is their number."""
    names, arrived = set(), threading.Barrier(meet, timeout=10)

    def block(rows: slice) -> None:
        names.add(threading.current_thread().name)
        arrived.wait()

    pool.for_rows(meet, pool.PARALLEL_WORK, block)
    return names


def test_each_task_runs_once_whole_on_one_thread_with_its_chains_inline(threads):
    ran, every_thread = {}, threading.Barrier(threads, timeout=10)

    def task(i: int) -> None:
        ran[i] = (threading.current_thread().name, chain_threads())
        every_thread.wait()  # so each thread runs one task (else this times out)

    pool.for_each_whole(threads, task)
    assert sorted(ran) == list(range(threads))
    assert len({mine for mine, _ in ran.values()}) == threads
    assert all(chains == {mine} for mine, chains in ran.values())


def test_a_single_task_runs_on_the_calling_thread_and_shares_its_chains(threads):
    ran = []

    def task(i: int) -> None:
        ran.append((i, threading.current_thread(), chain_threads(meet=threads)))

    pool.for_each_whole(1, task)
    ((index, thread, chains),) = ran
    assert index == 0 and thread is threading.current_thread()
    assert len(chains) == threads  # a thread running it inline would time out


def test_an_error_in_a_task_is_raised_by_the_caller_and_chains_are_shared_again(threads):
    def task(i: int) -> None:
        if i == 1:
            raise ValueError("task 1")

    with pytest.raises(ValueError, match="task 1"):
        pool.for_each_whole(3, task)
    # every thread takes a block again (a thread left running chains inline would time out)
    assert len(chain_threads(meet=threads)) == threads


def test_blocks_are_fixed_by_the_shapes_alone():
    assert pool.block_rows(1024) == pool.BLOCK_ELEMENTS // 1024
    assert pool.block_rows(10**9) == 1


def test_matmul_is_the_product_and_the_same_for_every_thread_count():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((300, 2000)).astype(np.float32)
    b = rng.standard_normal((2000, 120)).astype(np.float32)
    bias = rng.standard_normal(120).astype(np.float32)
    before = pool.threads()
    results = []
    for n in (1, 2):
        pool.set_threads(n)
        results.append(pool.matmul(a, b, bias))
        results.append(pool.matmul(a.T.copy().T, b))  # a strided (column-major) operand
    pool.set_threads(before)
    np.testing.assert_array_equal(results[0], results[2])
    np.testing.assert_array_equal(results[1], results[3])
    reference = a.astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_allclose(results[1], reference, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(results[0], reference + bias, rtol=1e-4, atol=1e-3)


def train_steps(threads: int, steps: int = 3, micro_batches: int = 1) -> list[np.ndarray]:
    """The parameters and both AdamW moments (flat buffers) after a few training steps at the
    default bench size (dropout 0.1) with ``threads`` threads. With micro-batches, each has its
    dropout stream keyed by (step, micro-batch), as in training."""
    before = pool.threads()
    pool.set_threads(threads)
    try:
        size = SIZES["default"]
        config = make_config(size)
        params = init_params(config, np.random.default_rng(0))
        state, rng = init_state(params), np.random.default_rng(1)
        for step in range(steps):
            if micro_batches > 1:
                rng = lambda i, step=step: np.random.default_rng([1, step, i])  # noqa: E731
            training_step(params, config, make_batch(size, seed=step), state, lr=1e-3,
                          adamw=AdamWConfig(), max_grad_norm=1.0, rng=rng,
                          micro_batches=micro_batches)
        return [params.flat.copy(), state["exp_avg"].flat.copy(), state["exp_avg_sq"].flat.copy()]
    finally:
        pool.set_threads(before)


def assert_same_bits(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    for what, x, y in zip(("parameters", "exp_avg", "exp_avg_sq"), a, b, strict=True):
        np.testing.assert_array_equal(x, y, err_msg=what)


def test_training_steps_are_bit_identical_for_any_thread_count_and_run_to_run():
    one, two, three, again = train_steps(1), train_steps(2), train_steps(3), train_steps(2)
    assert_same_bits(one, two)
    assert_same_bits(one, three)
    assert_same_bits(two, again)


@pytest.mark.parametrize("micro_batches", [2, 4])
def test_micro_batches_on_threads_are_bit_identical_for_any_thread_count(micro_batches):
    one = train_steps(1, micro_batches=micro_batches)  # one after the other, as before threads
    for threads in (2, 3, 2):  # 2 twice: run to run too
        assert_same_bits(one, train_steps(threads, micro_batches=micro_batches))
    # and they are other bits than the whole batch's: the test compares something that moved
    assert not np.array_equal(one[0], train_steps(1)[0])


def test_more_threads_than_the_system_starts_is_one_error_and_the_pool_is_unchanged(monkeypatch):
    from bert.errors import ResourceError

    before, started = pool.threads(), []
    start = threading.Thread.start

    def limited(thread):
        if len(started) == 2:
            raise RuntimeError("can't start new thread")
        started.append(thread)
        start(thread)

    pool.set_threads(1)
    monkeypatch.setattr(threading.Thread, "start", limited)
    with pytest.raises(ResourceError, match="cannot start 8 compute threads \\(can't start new "
                       "thread\\); ask for fewer \\(training.threads\\)"):
        pool.set_threads(8)
    monkeypatch.undo()
    assert pool.threads() == 1 and len(started) == 2
    pool.for_blocks(100, 1, lambda rows: None)  # still works
    pool.set_threads(before)
