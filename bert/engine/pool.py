"""The compute threads: a small pool that runs row blocks of a chain of NumPy calls in parallel.

NumPy releases the GIL inside a ufunc loop and a BLAS call, so Python threads that each take
blocks of rows through a whole chain of elementwise passes (or small matrix products) keep every
core busy, and a block of a few hundred KiB stays in the core's L2 cache for the whole chain
instead of every pass streaming the full array through memory.

Determinism: the blocks are fixed by the work alone (a row count and a block size), never by the
number of threads, and each block writes only its own rows. Which thread runs a block changes
nothing, so the results are bit-identical for every thread count. Reductions across blocks are
not done here: a caller that sums over rows does so after the chain, in one NumPy call.

``set_threads(n)`` sizes the pool (the calling thread is one of the ``n``); ``for_blocks`` runs a
chain. With one thread, or with work of one block, the chain runs inline with no hand-off at all.
``for_each_whole`` runs larger tasks instead (the micro-batches of a step), each on one thread
from start to end: the chains inside a task run inline on its thread.
"""

from __future__ import annotations

import itertools
import math
import os
import queue
import threading
from collections.abc import Callable

import numpy as np

from bert.engine.blas import set_blas_threads
from bert.errors import ResourceError

# Elements (float32) per block of an elementwise chain: a few live temporaries of 256 KiB fit in
# the L2 cache, and each NumPy call is long enough (tens of microseconds) that its dispatch and
# the hand-off between threads stay small beside it.
BLOCK_ELEMENTS = 65536
# Rows (or columns) per block of a matrix product: BLAS runs near its peak from a few hundred
# rows on (measured: blocks of 256 rows as fast as the whole product, blocks of 64 rows a third
# slower), and a BERT-Mini product still makes 4 to 16 blocks to share.
PRODUCT_ROWS = 256
# Multiply-adds from which a product is shared between threads (about 0.2 ms of BLAS work).
PARALLEL_PRODUCT = 1 << 25
# Element-passes (elements times the passes of the chain) below which a chain runs on the
# calling thread alone: waking another thread costs tens of microseconds on an idle machine (a
# time slice on a busy one), more than a light pass over a few hundred thousand elements saves.
PARALLEL_WORK = 1 << 21


class _ThreadState(threading.local):
    """Per thread: whether it is running a task of ``for_each_whole`` (its chains run inline)."""

    inline = False


_STATE = _ThreadState()


class _Pool:
    """Worker threads that wait on their own queue for a job: (function, next-block counter)."""

    def __init__(self) -> None:
        self.threads = 1
        self._workers: list[queue.SimpleQueue] = []
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()  # one job at a time

    def resize(self, threads: int) -> None:
        """``threads`` threads in all; ResourceError (and the size unchanged) when the system
        cannot start that many."""
        with self._lock:
            before = len(self._workers)
            while len(self._workers) < threads - 1:
                inbox: queue.SimpleQueue = queue.SimpleQueue()
                try:
                    threading.Thread(target=self._work, args=(inbox,), daemon=True,
                                     name=f"bert-compute-{len(self._workers) + 1}").start()
                except RuntimeError as error:  # "can't start new thread": a process limit
                    while len(self._workers) > before:
                        self._workers.pop().put(None)
                    raise ResourceError(f"cannot start {threads} compute threads ({error}); "
                                        "ask for fewer (training.threads)") from None
                self._workers.append(inbox)
            while len(self._workers) > threads - 1:
                self._workers.pop().put(None)
            self.threads = threads

    def _work(self, inbox: queue.SimpleQueue) -> None:
        while (job := inbox.get()) is not None:
            run, counter, count = job
            try:
                _drain(run, counter, count)
                self._done.put(None)
            except BaseException as error:  # handed to the caller, which raises it
                self._done.put(error)

    def run(self, run: Callable[[int], None], count: int) -> None:
        """Call ``run(i)`` for every ``i`` in ``range(count)``, spread over the threads."""
        helpers = min(self.threads, count) - 1
        if helpers <= 0 or not self._lock.acquire(blocking=False):  # nested: run inline
            for i in range(count):
                run(i)
            return
        try:
            counter = itertools.count()  # next() is atomic: each index is taken exactly once
            for inbox in self._workers[:helpers]:
                inbox.put((run, counter, count))
            error = None
            try:
                _drain(run, counter, count)
            except BaseException as caught:
                error = caught
            for _ in range(helpers):  # wait for every helper before any buffer is reused
                helper_error = self._done.get()
                error = error or helper_error
            if error is not None:
                raise error
        finally:
            self._lock.release()


def _drain(run: Callable[[int], None], counter: itertools.count, count: int) -> None:
    while (i := next(counter)) < count:
        run(i)


_POOL = _Pool()


def set_threads(threads: int | None) -> int:
    """Use ``threads`` compute threads (None or 0: one per CPU); returns the number.

    The pool gets that many threads and BLAS one: every large product is split over the pool by
    ``matmul``, so BLAS's own threads would only compete with the pool's (they keep spinning for
    a while after each call) and make the bits depend on the thread count.
    """
    threads = threads or os.cpu_count() or 1
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    set_blas_threads(1)
    _POOL.resize(threads)
    return threads


def threads() -> int:
    """The number of compute threads (the calling thread included)."""
    return _POOL.threads


def for_each_whole(count: int, task: Callable[[int], None]) -> None:
    """Call ``task(i)`` for every ``i`` in ``range(count)``, each call whole on one of the compute
    threads (the calling thread is one of them), as many at once as there are threads; the
    chains a task hands to the pool run inline on its own thread, so that no thread waits for
    another inside a task (a single task runs on the calling thread, its chains on the pool as
    usual). Returns once every call has returned; raises the first error.

    ``task`` must write only what it owns (arrays it makes, its own slot of a list); which
    thread runs which ``i`` changes nothing else.
    """

    if count == 1:  # one task: no thread to share it with, its chains may use them all
        task(0)
        return

    def whole(i: int) -> None:
        outer, _STATE.inline = _STATE.inline, True
        try:
            task(i)
        finally:
            _STATE.inline = outer

    _POOL.run(whole, count)


def block_rows(row_size: int, elements: int = BLOCK_ELEMENTS) -> int:
    """Rows per block for rows of ``row_size`` elements: about ``elements`` a block, at least 1."""
    return max(1, elements // max(row_size, 1))


def for_blocks(
    rows: int, rows_per_block: int, chain: Callable[[slice], None], parallel: bool = True
) -> None:
    """Call ``chain(slice(start, stop))`` for consecutive blocks of ``rows_per_block`` rows
    covering ``range(rows)``, on the pool's threads (on the calling thread alone if not
    ``parallel``).

    ``chain`` must read what it likes but write only the rows of its block (of arrays made
    before the call); the blocks are the same for every thread count.
    """
    if rows <= rows_per_block or _POOL.threads == 1 or not parallel or _STATE.inline:
        for start in range(0, rows, rows_per_block):
            chain(slice(start, start + rows_per_block))
        return
    _POOL.run(lambda i: chain(slice(i * rows_per_block, min((i + 1) * rows_per_block, rows))),
              -(-rows // rows_per_block))


def for_rows(
    rows: int, row_size: int, chain: Callable[[slice], None], passes: int = 1
) -> None:
    """``for_blocks`` with blocks of about ``BLOCK_ELEMENTS`` elements, rows of ``row_size``;
    on several threads when the chain's work (about ``passes`` passes over every element)
    reaches ``PARALLEL_WORK``."""
    parallel = rows * row_size * passes >= PARALLEL_WORK
    for_blocks(rows, block_rows(row_size), chain, parallel)


def for_elements(
    shape: tuple[int, ...], chain: Callable[[slice], None], passes: int = 1
) -> None:
    """``for_rows`` over the first axis of arrays of ``shape`` (the slice indexes that axis)."""
    for_rows(shape[0], math.prod(shape[1:]), chain, passes)


def elementwise(
    ufunc: np.ufunc, a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """``ufunc(a, b)`` for two arrays of one shape, in blocks over the pool, into ``out`` (a new
    array if None; it may be ``a`` or ``b``)."""
    if out is None:
        out = np.empty(a.shape, dtype=np.result_type(a, b))
    for_elements(a.shape, lambda r: ufunc(a[r], b[r], out=out[r]))
    return out


def matmul(a: np.ndarray, b: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """a (N, K) @ b (K, M) (+ bias (M,)) -> (N, M) in blocks over the pool: blocks of
    ``PRODUCT_ROWS`` rows of ``a``, or of as many columns of ``b`` when it has more columns than
    ``a`` has rows (the sum over K is never split).

    Each output element is the same BLAS product whatever the blocking, and the blocks depend on
    the shapes alone, so the result does not depend on the number of threads. Strided operands (a
    transpose, a slice with its leading dimension) go to BLAS as they are.
    """
    N, M = a.shape[0], b.shape[1]
    out = np.empty((N, M), dtype=np.result_type(a, b))
    parallel = N * a.shape[1] * M >= PARALLEL_PRODUCT

    if N >= M:
        def rows(r: slice) -> None:
            np.matmul(a[r], b, out=out[r])
            if bias is not None:
                out[r] += bias

        for_blocks(N, PRODUCT_ROWS, rows, parallel)
    else:
        def columns(c: slice) -> None:
            np.matmul(a, b[:, c], out=out[:, c])
            if bias is not None:
                out[:, c] += bias[c]

        for_blocks(M, PRODUCT_ROWS, columns, parallel)
    return out
