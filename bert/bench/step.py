"""Our training step against transformers': ``python -m bert.bench step`` (the default).

For each named size it times, on one synthetic batch (``bert.bench.batches``):

- our training step, the one the training loop runs (``bert.bench.sides.ours``): forward,
  backward, global-norm clipping to 1.0 and one AdamW step; and our forward pass (the losses,
  training mode);
- the same for transformers' ``BertForPreTraining`` when torch and transformers are installed
  (``bert.bench.sides.theirs``), and its forward pass with labels under ``torch.no_grad``;
- NumPy's float32 matrix-multiply peak (the best of a few 2048^3 products) and the share of it our
  step reaches: matmul FLOPs the step needs (``bert.core.costs``) / median step time / peak.

Timing: one worker process per size (``bert.bench.workers``), with the thread count fixed
through the environment before NumPy is imported, ``torch.set_num_threads`` and threadpoolctl;
our side then runs on ``bert.engine.pool`` with that many compute threads (and BLAS on one
thread each), as training does with ``training.threads``. Both models run in that process on the
same batch, their repetitions in a few alternating blocks (``bert.bench.clock.alternate``) so
that both see the same machine load; warm-up steps first, then the median and the spread of the
repetitions. Each block starts after a pause and one untimed step: the worker threads of the
library that ran before keep spinning for a while (OpenBLAS's for ~0.1 s) and would otherwise
share the cores with the timed step (doubling a small step's time).

Peak memory: each model in a fresh process of its own. The kernel's peak resident set
(``VmHWM``) is reset after the model, the optimizer state and the batch exist, a few steps run,
and the peak minus the resident set before the steps is what the step needed: every allocation
counts (NumPy, torch, BLAS buffers), and the libraries' own footprint, which differs a lot, does
not. Needs Linux; elsewhere the ``ru_maxrss`` growth is reported instead.
"""

from __future__ import annotations

import argparse
import json

from bert.bench.batches import make_batch, num_scored
from bert.bench.clock import alternate, timed
from bert.bench.sides import ours, theirs
from bert.bench.sizes import SIZES, Size, make_config
from bert.bench.system import (
    REFERENCE_HINT,
    blas_kernel,
    machine,
    reference_available,
    reset_peak_resident,
    status_kib,
)
from bert.bench.tables import step_table
from bert.bench.workers import run_worker, start_worker

# Nothing that imports NumPy at module level: a worker fixes its thread count first.

SIDES = ("ours", "transformers")
WORKS = ("step", "forward")


def matmul_peak(threads: int, repeats: int = 5, n: int = 2048) -> float:
    """NumPy's float32 matrix-multiply rate with ``threads`` BLAS threads, GFLOP/s: the best of
    ``repeats`` n^3 products."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
    with threadpool_limits(threads, user_api="blas"):
        a @ b  # warm-up
        return 2 * n**3 / min(timed(lambda: a @ b) for _ in range(repeats)) / 1e9


def time_worker(size: Size, threads: int, repeats: int, warmup: int, reference: bool) -> dict:
    """Both models' step and forward in alternating blocks, the matmul peak and FLOPs."""
    from bert.core.costs import matmul_flops

    sides = {"ours": ours(size).works(*WORKS)}
    if reference:
        sides["transformers"] = theirs(size, threads).works(*WORKS)
    result = alternate(sides, repeats, warmup)
    result["matmul_peak_gflops"] = matmul_peak(threads)
    result["flops"] = matmul_flops(make_config(size), size.batch_size, size.seq_len,
                                   num_scored(make_batch(size)))
    result["blas"] = blas_kernel()
    return result


def memory_worker(size: Size, threads: int, side: str, steps: int = 3) -> dict:
    """Peak memory a training step needs beyond the model, optimizer state and batch, MiB."""
    import resource

    step = (ours(size) if side == "ours" else theirs(size, threads)).step
    step()  # the first step creates what persists across steps (moments, .grad, workspaces)
    rss_before = status_kib("VmRSS")
    method = "VmHWM" if reset_peak_resident() else "ru_maxrss"
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(steps):
        step()
    if method == "VmHWM" and rss_before is not None:
        peak_kib = status_kib("VmHWM") - rss_before
    else:
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - maxrss_before
    return {"step_peak_mib": peak_kib / 1024, "resident_before_mib": (rss_before or 0) / 1024,
            "method": method}


def measure(name: str, threads: int, repeats: int | None, warmup: int, reference: bool,
            memory: bool) -> dict:
    """One size: its timing worker, then a memory worker per side; the rates and ratios."""
    size = SIZES[name]
    timing = run_worker("step", threads, "--size", name, "--repeats",
                        str(repeats or size.repeats), "--warmup", str(warmup),
                        *(["--reference"] if reference else []))
    result = {"size": name, "description": size.description, "config": vars(size),
              "tokens_per_step": size.tokens, **timing}
    for side in SIDES:
        if side in result:
            result[side]["step"]["tokens_per_s"] = \
                size.tokens / (result[side]["step"]["median_ms"] / 1000)
    ours_step_s = result["ours"]["step"]["median_ms"] / 1000
    result["ours"]["step"]["gflops"] = result["flops"]["step"] / ours_step_s / 1e9
    result["peak_share"] = result["ours"]["step"]["gflops"] / result["matmul_peak_gflops"]
    if reference:
        for work in WORKS:
            result[f"{work}_speedup"] = (result["transformers"][work]["median_ms"]
                                         / result["ours"][work]["median_ms"])
    if memory:
        sides = SIDES if reference else SIDES[:1]
        result["memory"] = {side: run_worker("step", threads, "--size", name, "--side", side)
                            for side in sides}
        if reference:
            result["memory_ratio"] = (result["memory"]["ours"]["step_peak_mib"]
                                      / result["memory"]["transformers"]["step_peak_mib"])
    return result


def run(args: argparse.Namespace) -> None:
    """``python -m bert.bench step``: every size, then the table (or the JSON)."""
    if args.worker:
        start_worker(args.threads, keep_freed=args.side is None)
        size = SIZES[args.size]
        print(json.dumps(memory_worker(size, args.threads, args.side) if args.side else
                         time_worker(size, args.threads, args.repeats, args.warmup,
                                     args.reference)))
        return
    reference = not args.no_reference and reference_available()
    report = {"threads": args.threads, "reference": reference,
              "reference_note": None if reference else (
                  "disabled by --no-reference" if args.no_reference else
                  f"torch or transformers is not installed; {REFERENCE_HINT}"),
              "machine": machine(), "results": []}
    for name in args.sizes:
        report["results"].append(measure(name, args.threads, args.repeats, args.warmup,
                                         reference, not args.no_memory))
    print(json.dumps(report, indent=2) if args.json else step_table(report))
