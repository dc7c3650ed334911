"""Our whole training step against a plain PyTorch training loop: ``python -m bert.bench loop``.

For each size, one worker process runs both sides (``bert.bench.sides``) with the same compute
threads, taking turns in a few rounds on one batch (``bert.bench.clock.alternate``), so that a
change of the machine's load hits both alike:

- ours: ``bert.core.step.training_step`` as the train stage runs it (forward, backward, clipping
  to 1.0, AdamW), the batch cut into M micro-batches (``--micro-batches``, several values timed
  side by side), which run on the threads when M >= 2, each with its own dropout stream; and its
  forward and backward passes alone (``bert.core.step.batch_gradients``);
- torch: transformers' ``BertForPreTraining`` with the same config and batch,
  ``torch.optim.AdamW`` over the same two parameter groups and ``clip_grad_norm_``; and its
  forward and ``backward`` alone.

Sizes are those of ``bert.bench.sizes``: ``default`` (params.yaml as shipped), ``f256`` (the
same with intermediate 256), ``text`` (text.yaml's model and batch) and ``mini`` (BERT-Mini) by
default. Times are medians over the repetitions, with half the interquartile range.
"""

from __future__ import annotations

import argparse
import json
import os

from bert.bench.clock import alternate
from bert.bench.sides import ours, theirs
from bert.bench.sizes import SIZES, Size
from bert.bench.tables import loop_table
from bert.bench.workers import run_worker, start_worker

DEFAULT_SIZES = "default,f256,text,mini"
WORKS = ("step", "fwd_bwd")  # the whole step; its forward and backward passes alone


def time_worker(size: Size, threads: int, micro_batches: list[int], dropout: float,
                repeats: int, warmup: int) -> dict:
    """Our step at each micro-batch count and torch's, in alternating blocks."""
    sides = {f"ours M={m}": ours(size, m, dropout).works(*WORKS) for m in micro_batches}
    sides["torch"] = theirs(size, threads, dropout).works(*WORKS)
    return alternate(sides, repeats, warmup)


def measure(name: str, threads: int, micro_batches: list[int], dropout: float,
            repeats: int | None, warmup: int) -> dict:
    """One size in a worker of its own; the speed-ups."""
    size = SIZES[name]
    load = os.getloadavg()[0]
    sides = run_worker("loop", threads, "--size", name, "--micro-batches",
                       ",".join(map(str, micro_batches)), "--dropout", str(dropout),
                       "--repeats", str(repeats or size.repeats), "--warmup", str(warmup))
    torch = sides.pop("torch")
    return {"size": name, "description": size.description, "config": vars(size),
            "tokens_per_step": size.tokens, "threads": threads,
            "dropout": dropout, "load_average_at_start": load,
            "load_average_at_end": os.getloadavg()[0], "torch": torch, "ours": sides,
            "speedup": {side: {work: torch[work]["median_ms"] / mine[work]["median_ms"]
                               for work in WORKS} for side, mine in sides.items()}}


def run(args: argparse.Namespace) -> None:
    """``python -m bert.bench loop``: every size, then the table (or the JSON)."""
    if args.worker:
        start_worker(args.threads)
        print(json.dumps(time_worker(SIZES[args.size], args.threads, args.micro_batches,
                                     args.dropout, args.repeats, args.warmup)))
        return
    results = [measure(name, args.threads, args.micro_batches, args.dropout, args.repeats,
                       args.warmup) for name in args.sizes]
    print(json.dumps(results, indent=2) if args.json else loop_table(results))
