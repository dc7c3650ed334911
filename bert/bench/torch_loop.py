"""Our whole training step against a plain PyTorch training loop: python -m bert.bench.torch_loop.

For each size, one worker process runs both sides with the same compute threads, taking turns in
a few rounds on one batch (``bert.bench.step.make_batch``), so that a change of the machine's load
hits both alike:

- ours: ``bert.core.step.training_step`` as the train stage runs it (forward, backward, clipping
  to 1.0, AdamW), the batch cut into M micro-batches (``--micro-batches``, several values timed
  side by side), which run on the threads when M >= 2, each with its own dropout stream; and its
  forward and backward passes alone (``bert.core.step.batch_gradients``);
- torch: transformers' ``BertForPreTraining`` with the same config and batch,
  ``torch.optim.AdamW`` over the same two parameter groups and ``clip_grad_norm_``
  (``bert.bench.step.torch_step``); and its forward and ``backward`` alone.

Sizes are those of ``bert.bench.step.SIZES``: ``default`` (params.yaml as shipped), ``f256`` (the
same with intermediate 256), ``text`` (text.yaml's model and batch) and ``mini`` (BERT-Mini) by
default. Times are medians over the repetitions, with half the interquartile range.
"""

from __future__ import annotations

import argparse
import json
import os

from bert.bench.clock import timed
from bert.bench.step import (
    DROPOUT,
    ROUNDS,
    SIZES,
    Size,
    make_batch,
    make_config,
    reference_available,
    run_worker,
    settle,
    spread,
    summary,
    torch_adamw,
    torch_inputs,
    torch_model,
    torch_step,
)

DEFAULT_SIZES = "default,f256,text,mini"
KINDS = ("step", "fwd_bwd")  # the whole step; its forward and backward passes alone


def our_sides(size: Size, micro_batches: list[int], dropout: float) -> dict:
    """Per micro-batch count M: (step, forward and backward) closures of our model."""
    import numpy as np

    from bert.core.optim import AdamWConfig, init_state
    from bert.core.parameters import init_params
    from bert.core.step import batch_gradients, training_step

    config = make_config(size, dropout)
    params = init_params(config, np.random.default_rng(0))
    batch, state, adamw = make_batch(size), init_state(params), AdamWConfig()

    def streams(index: int) -> np.random.Generator:  # one per micro-batch, as in training
        return np.random.default_rng([0, index])

    def closures(m: int):
        def step() -> None:
            training_step(params, config, batch, state, lr=1e-4, adamw=adamw, max_grad_norm=1.0,
                          rng=streams, micro_batches=m)

        def fwd_bwd() -> None:
            batch_gradients(params, config, batch, rng=streams, micro_batches=m)

        return step, fwd_bwd

    return {f"ours M={m}": closures(m) for m in micro_batches}


def torch_side(size: Size, threads: int, dropout: float):
    """(step, forward and backward) closures of the plain PyTorch loop on the same batch."""
    model = torch_model(make_config(size, dropout), threads)
    optimizer = torch_adamw(model, lr=1e-4)
    inputs = torch_inputs(make_batch(size))

    def step() -> None:
        torch_step(model, optimizer, inputs)

    def fwd_bwd() -> None:
        model(**inputs).loss.backward()
        model.zero_grad(set_to_none=True)

    return step, fwd_bwd


def time_worker(size: Size, threads: int, micro_batches: list[int], dropout: float,
                repeats: int, warmup: int) -> dict:
    """Both sides' step and forward-backward, in alternating blocks (``bert.bench.step``)."""
    sides = our_sides(size, micro_batches, dropout)
    sides["torch"] = torch_side(size, threads, dropout)
    for closures in sides.values():
        for _ in range(warmup):
            for work in closures:
                work()
    samples = {name: {kind: [] for kind in KINDS} for name in sides}
    rounds = min(repeats, ROUNDS)
    for r in range(rounds):
        for name, closures in sides.items():
            settle()
            closures[0]()  # untimed: brings this side's threads and buffers back
            for _ in range(repeats // rounds + (r < repeats % rounds)):
                for kind, work in zip(KINDS, closures, strict=True):
                    samples[name][kind].append(timed(work))
    return {name: {kind: summary(values) for kind, values in kinds.items()}
            for name, kinds in samples.items()}


# --- the driver ----------------------------------------------------------------------------------


def measure(name: str, threads: int, micro_batches: list[int], dropout: float,
            repeats: int | None, warmup: int) -> dict:
    size = SIZES[name]
    args = ["--worker", "--size", name, "--micro-batches", ",".join(map(str, micro_batches)),
            "--dropout", str(dropout), "--repeats", str(repeats or size.repeats),
            "--warmup", str(warmup)]
    load = os.getloadavg()[0]
    sides = run_worker(args, threads, module="bert.bench.torch_loop")
    torch = sides.pop("torch")
    return {"size": name, "description": size.description, "config": vars(size),
            "tokens_per_step": size.batch_size * size.seq_len, "threads": threads,
            "dropout": dropout, "load_average_at_start": load,
            "load_average_at_end": os.getloadavg()[0], "torch": torch, "ours": sides,
            "speedup": {side: {kind: torch[kind]["median_ms"] / ours[kind]["median_ms"]
                               for kind in KINDS} for side, ours in sides.items()}}


def table(results: list[dict]) -> str:
    """One row per size and micro-batch count: both sides' step and forward-backward, the
    speed-up (torch's time over ours)."""
    columns = ["size", "micro-batches", "ours step ms", "torch step ms", "step speed-up",
               "ours fwd+bwd ms", "torch fwd+bwd ms", "fwd+bwd speed-up", "load"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in results:
        for side, ours in r["ours"].items():
            speedup = r["speedup"][side]
            row = [r["size"], side.split("=")[1], spread(ours["step"]), spread(r["torch"]["step"]),
                   f"{speedup['step']:.2f}x", spread(ours["fwd_bwd"]),
                   spread(r["torch"]["fwd_bwd"]), f"{speedup['fwd_bwd']:.2f}x",
                   f"{r['load_average_at_start']:.1f}-{r['load_average_at_end']:.1f}"]
            lines.append("| " + " | ".join(row) + " |")
    first = results[0]
    lines += ["", f"{first['threads']} compute threads on both sides; dropout {first['dropout']}; "
              "float32. Times: median ±half the interquartile range; speed-up: torch's median "
              "over ours. load: the 1-minute load average before and after each size."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bert.bench.torch_loop",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default=DEFAULT_SIZES,
                        help=f"comma-separated names among {', '.join(SIZES)} "
                             f"(default: {DEFAULT_SIZES})")
    parser.add_argument("--micro-batches", default="1,2",
                        help="our micro-batch counts to time, comma-separated (default: 1,2)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="compute threads of both sides (default: the number of CPUs)")
    parser.add_argument("--dropout", type=float, default=DROPOUT,
                        help=f"hidden and attention dropout (default: {DROPOUT})")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed repetitions per size (default: the size's own, as for "
                             "python -m bert.bench)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (default: 2)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--size", choices=tuple(SIZES), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        micro_batches = [int(m) for m in args.micro_batches.split(",")]
    except ValueError:
        parser.error(f"--micro-batches {args.micro_batches!r}: give whole numbers, e.g. 1,2")
    if args.worker:  # the environment already fixes the threads
        from threadpoolctl import threadpool_limits

        from bert.engine.allocation import keep_freed_memory
        from bert.engine.pool import set_threads

        threadpool_limits(args.threads)  # torch's OpenMP too
        keep_freed_memory()  # as training does, before the threads start
        set_threads(args.threads)  # our pool; BLAS on one thread
        print(json.dumps(time_worker(SIZES[args.size], args.threads, micro_batches,
                                     args.dropout, args.repeats, args.warmup)))
        return
    if not reference_available():
        parser.error("torch and transformers are not installed: pip install -e '.[reference]'")
    names = [name.strip() for name in args.sizes.split(",") if name.strip()]
    unknown = [name for name in names if name not in SIZES]
    if unknown:
        parser.error(f"unknown size(s) {unknown}: choose among {', '.join(SIZES)}")
    for name in names:
        bad = [m for m in micro_batches if m < 1 or SIZES[name].batch_size % m]
        if bad:
            parser.error(f"--micro-batches {bad} do not divide the batch of {name} "
                         f"({SIZES[name].batch_size})")
    results = [measure(name, args.threads, micro_batches, args.dropout, args.repeats,
                       args.warmup) for name in names]
    print(json.dumps(results, indent=2) if args.json else table(results))


if __name__ == "__main__":
    main()
