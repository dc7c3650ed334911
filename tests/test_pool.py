"""The compute pool: every block once, errors raised, and the same bits for every thread count."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from bert.bench.step import SIZES, make_batch, make_config
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


def train_steps(threads: int, steps: int = 3) -> dict[str, np.ndarray]:
    """A few training steps at the default bench size (dropout 0.1) with ``threads`` threads."""
    before = pool.threads()
    pool.set_threads(threads)
    try:
        size = SIZES["default"]
        config = make_config(size)
        params = init_params(config, np.random.default_rng(0))
        state, rng = init_state(params), np.random.default_rng(1)
        for step in range(steps):
            training_step(params, config, make_batch(size, seed=step), state, lr=1e-3,
                          adamw=AdamWConfig(), max_grad_norm=1.0, rng=rng)
        return dict(params)
    finally:
        pool.set_threads(before)


def test_training_steps_are_bit_identical_for_any_thread_count_and_run_to_run():
    one, two, three, again = train_steps(1), train_steps(2), train_steps(3), train_steps(2)
    for name in one:
        np.testing.assert_array_equal(one[name], two[name], err_msg=name)
        np.testing.assert_array_equal(one[name], three[name], err_msg=name)
        np.testing.assert_array_equal(two[name], again[name], err_msg=name)


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
