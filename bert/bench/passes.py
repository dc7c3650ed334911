"""Where a training step's time goes, pass by pass: ``python -m bert.bench profile``.

Every layer function of the fast kernels the model runs on (``bert.core.kernels``),
the matrix products of the linear layers (``bert.engine.pool.matmul``), clipping and AdamW are
wrapped with a wall clock for the timed steps. Each function's time is *exclusive*: a wrapped
function called inside another (the query/key/value product inside attention) counts for
itself, not for its caller. What no wrapper covers (the heads' glue, the loss sums, the
micro-batch tree) is the row *other*.

The elementwise work is measured as the pool sees it: every chain a layer hands to
``for_rows`` declares how many passes it makes over its elements, so each row can say how many
elements it touches and at what cost per element-pass. A product's work is its multiply-adds.

A wrapper costs under a microsecond per call (0.64 measured), about a hundred calls a step at the
default size: less than the machine's noise. The shares are what this module is for.

With micro-batches on the threads, each thread keeps its own stack of calls and the rows add up
every thread's time: a row is then thread-milliseconds per step, and *other* is what the
threads spent outside every wrapper, waiting for each other included (the threads that run
micro-batches times the step, minus the rows). Each row also has the CPU time of the threads
that made its calls (``time.thread_time``): the rest of its time they waited, for the GIL or,
on a busy machine, for a CPU. (With the pool sharing a chain, the calling thread's CPU time
leaves out the other threads'.)
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

from bert.bench.clock import timed, times
from bert.bench.sides import ours
from bert.bench.sizes import SIZES
from bert.bench.system import machine
from bert.bench.tables import header, profile_table
from bert.bench.workers import run_worker, start_worker

# Nothing that imports NumPy at module level: a worker fixes its thread count first.

# name in bert.core.kernels -> the row it counts for
LAYER_WORK = {
    "embedding_forward": "embedding lookup",
    "embedding_backward": "embedding backward (sorted row sums)",
    "linear_forward": "linear forward (besides the product)",
    "linear_backward": "linear backward (bias sums)",
    "layernorm_forward": "LayerNorm forward",
    "layernorm_backward": "LayerNorm backward",
    "gelu_forward": "GELU forward with its derivative (erf)",
    "gelu_backward": "GELU backward",
    "dropout_forward": "dropout forward",
    "dropout_backward": "dropout backward",
    "self_attention_forward": "attention forward (scores, softmax, dropout, context)",
    "self_attention_backward": "attention backward",
    "cross_entropy_forward": "cross-entropy forward",
    "cross_entropy_backward": "cross-entropy backward",
    "tanh_forward": "pooler tanh",
    "tanh_backward": "pooler tanh backward",
}
# name in bert.core.step -> the row it counts for (global_norm alone when nothing is clipped)
STEP_WORK = {
    "clip_grad_norm": "gradient norm and clipping",
    "global_norm": "gradient norm and clipping",
    "adamw_step": "AdamW (flat buffer)",
}
PRODUCTS = "matrix products of the linear layers"
OTHER = "other (glue, loss sums, heads' small products)"
OTHER_THREADS = "other (glue, loss sums, heads' small products, threads waiting for each other)"


@dataclass
class Row:
    """What one row of the table adds up over the timed steps."""

    seconds: float = 0.0
    cpu_seconds: float = 0.0  # of the thread that made the calls (``time.thread_time``)
    calls: int = 0
    element_passes: float = 0.0  # elements of its chains times their declared passes
    elements: float = 0.0
    multiply_adds: float = 0.0


class _Stacks(threading.local):
    stack: list[list]  # per thread: [row name, child seconds, child CPU seconds] of the wrapped
    # calls in progress

    def __init__(self) -> None:
        self.stack = []


@dataclass
class Recorder:
    """The rows, and per thread the stack of wrapped calls in progress (each with the time its
    wrapped callees took, to subtract from its own)."""

    rows: dict[str, Row] = field(default_factory=lambda: defaultdict(Row))
    threads: _Stacks = field(default_factory=_Stacks)
    lock: threading.Lock = field(default_factory=threading.Lock)  # the rows, between threads

    @property
    def stack(self) -> list[list]:
        return self.threads.stack

    def wrap(self, name: str, function):
        def timed(*args, **kwargs):
            frame, stack = [name, 0.0, 0.0], self.stack
            stack.append(frame)
            start, cpu_start = time.perf_counter(), time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                cpu = time.thread_time() - cpu_start
                stack.pop()
                with self.lock:
                    row = self.rows[name]
                    row.seconds += elapsed - frame[1]
                    row.cpu_seconds += cpu - frame[2]
                    row.calls += 1
                if stack:
                    stack[-1][1] += elapsed
                    stack[-1][2] += cpu
        return timed

    def chain(self, rows: int, row_size: int, passes: int) -> None:
        """A chain handed to the pool by the innermost wrapped function."""
        if self.stack:
            with self.lock:
                row = self.rows[self.stack[-1][0]]
                row.elements += rows * row_size
                row.element_passes += rows * row_size * passes


@contextmanager
def recording(recorder: Recorder):
    """Install the wrappers for the duration; every module is restored afterwards."""
    import bert.core.kernels as layers
    import bert.core.step as step
    import bert.engine.pool as pool

    saved = []

    def patch(module, attribute, replacement):
        saved.append((module, attribute, getattr(module, attribute)))
        setattr(module, attribute, replacement)

    for attribute, name in LAYER_WORK.items():
        patch(layers, attribute, recorder.wrap(name, getattr(layers, attribute)))
    for attribute, name in STEP_WORK.items():
        patch(step, attribute, recorder.wrap(name, getattr(step, attribute)))

    original_matmul = layers.matmul

    def matmul(a, b, bias=None):
        recorder.rows[PRODUCTS].multiply_adds += a.shape[0] * a.shape[1] * b.shape[1]
        return original_matmul(a, b, bias)

    patch(layers, "matmul", recorder.wrap(PRODUCTS, matmul))

    def counted(original):
        def for_rows(rows, row_size, chain, passes=1):
            recorder.chain(rows, row_size, passes)
            return original(rows, row_size, chain, passes)
        return for_rows

    # the pool's own for_elements and elementwise call pool.for_rows; the layers hold their
    # own reference to it
    for_rows = counted(pool.for_rows)
    if layers.for_rows is pool.for_rows:
        patch(layers, "for_rows", for_rows)
    patch(pool, "for_rows", for_rows)
    try:
        yield recorder
    finally:
        for module, attribute, original in reversed(saved):
            setattr(module, attribute, original)


def profile(step: Callable[[], None], threads: int, steps: int, warmup: int = 3,
            task_threads: int = 1) -> dict:
    """Time ``steps`` calls of ``step`` (one training step) plainly, then again with the
    wrappers; returns the plain median step time and, per row, its totals per step.

    The compute threads are whatever the process has set (``threads`` is only reported);
    ``task_threads``: how many of them run micro-batches at once (1: the batch runs on the
    calling thread, its chains on the pool).
    """
    for _ in range(warmup):
        step()
    plain = statistics.median(times(step, steps))
    recorder = Recorder()
    with recording(recorder):
        wrapped = timed(lambda: [step() for _ in range(steps)]) / steps
    rows = {name: Row(row.seconds / steps, row.cpu_seconds / steps, row.calls / steps,
                      row.element_passes / steps, row.elements / steps, row.multiply_adds / steps)
            for name, row in recorder.rows.items()}
    rows[OTHER if task_threads == 1 else OTHER_THREADS] = Row(
        task_threads * wrapped - sum(row.seconds for row in rows.values()))
    return {"threads": threads, "task_threads": task_threads, "steps": steps,
            "plain_step_s": plain, "wrapped_step_s": wrapped, "rows": rows}


def run(args: argparse.Namespace) -> None:
    """``python -m bert.bench profile``: a worker per size, each size's table."""
    if args.worker:
        start_worker(args.threads)
        size = SIZES[args.size]
        result = profile(ours(size, args.micro_batches).step, args.threads,
                         args.repeats or size.repeats, args.warmup,
                         task_threads=min(args.threads, args.micro_batches))
        print(json.dumps({**result, "rows": {name: vars(row)
                                             for name, row in result["rows"].items()}}))
        return
    print(header({"threads": args.threads, "machine": machine()}))
    for name in args.sizes:
        result = run_worker("profile", args.threads, "--size", name, "--micro-batches",
                            str(args.micro_batches), "--warmup", str(args.warmup),
                            *(["--repeats", str(args.repeats)] if args.repeats else []))
        result["rows"] = {work: Row(**row) for work, row in result["rows"].items()}
        print(f"\n{profile_table(name, result)}")
