"""Benchmark of the training step: ``python -m bert.bench`` (``--help`` for the options).

For each named size it times, on one synthetic batch:

- our training step, the one the training loop runs (``bert.core.step.training_step``):
  forward, backward, global-norm clipping to 1.0 and one AdamW step; and our forward pass
  (the losses, training mode);
- the same for transformers' ``BertForPreTraining`` when torch and transformers are installed:
  forward with labels, ``backward``, ``clip_grad_norm_``, ``torch.optim.AdamW`` (torch's default
  implementation on CPU), and the forward pass with labels under ``torch.no_grad``;
- NumPy's float32 matrix-multiply peak (the best of a few 2048^3 products) and the share of it our
  step reaches: matmul FLOPs the step needs / median step time / peak.

Timing: one worker process per size, with the thread count fixed through the environment
(``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``) before NumPy is imported,
``torch.set_num_threads`` and threadpoolctl; our side then runs on ``bert.engine.pool`` with that
many compute threads (and BLAS on one thread each), as training does with ``training.threads``.
Both models run in that process on the same batch, their repetitions in a few alternating blocks
so that both see the same machine load; warm-up steps first, then the median and the spread of
the repetitions. Each block starts after a pause and one untimed step: the worker threads of
the library that ran before keep spinning for a while (OpenBLAS's for ~0.1 s) and would
otherwise share the cores with the timed step (doubling a small step's time).

Peak memory: each model in a fresh process of its own. The kernel's peak resident set
(``VmHWM``) is reset after the model, the optimizer state and the batch exist, a few steps run,
and the peak minus the resident set before the steps is what the step needed: every allocation
counts (NumPy, torch, BLAS buffers), and the libraries' own footprint, which differs a lot, does
not. Needs Linux; elsewhere the ``ru_maxrss`` growth is reported instead.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

from bert.bench.clock import timed
from bert.core.costs import matmul_flops
from bert.core.labels import IGNORE_INDEX

# Nothing that imports NumPy at module level: a worker fixes its thread count first.


@dataclass(frozen=True)
class Size:
    """A model and batch size to time."""

    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    batch_size: int
    seq_len: int
    repeats: int  # timed steps when --repeats is not given
    description: str


SIZES = {
    "default": Size(64, 64, 2, 4, 128, 32, 32, 30, "params.yaml's default model and batch"),
    "f256": Size(64, 64, 2, 4, 256, 32, 32, 30, "the default with intermediate 256"),
    "text": Size(4000, 128, 2, 4, 512, 32, 64, 10, "text.yaml's model and batch, vocab 4000"),
    "small": Size(64, 32, 2, 2, 128, 8, 32, 50, "hidden 32, 2 layers, batch 8 x 32"),
    "tiny": Size(8192, 128, 2, 2, 512, 32, 128, 10, "BERT-Tiny 2/128/2, vocab 8192"),
    "mini": Size(8192, 256, 4, 4, 1024, 32, 128, 5, "BERT-Mini 4/256/4, vocab 8192"),
    "micro": Size(32, 16, 1, 2, 32, 2, 8, 3, "a toy size for smoke tests"),
}
ROUNDS = 5  # the repetitions of each side are timed in this many blocks, the sides alternating
SETTLE_S = 0.25  # pause before each block: longer than any library's idle threads spin
MASK_PROBABILITY = 0.15
DROPOUT = 0.1
REFERENCE_HINT = ("pip install -e '.[reference]' (torch and transformers) to time transformers' "
                  "BertForPreTraining alongside")


# --- the work being timed (inside a worker) ------------------------------------------------------


def make_config(size: Size, dropout: float = DROPOUT):
    from bert.core.config import BertConfig

    return BertConfig(vocab_size=size.vocab_size, hidden_size=size.hidden_size,
                      num_hidden_layers=size.num_layers, num_attention_heads=size.num_heads,
                      intermediate_size=size.intermediate_size,
                      max_position_embeddings=max(512, size.seq_len),
                      hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)


def make_batch(size: Size, seed: int = 0) -> dict:
    """[CLS] A [SEP] B [SEP] rows without padding; 15% of the other positions masked."""
    import numpy as np

    rng = np.random.default_rng(seed)
    B, T = size.batch_size, size.seq_len
    input_ids = rng.integers(4, size.vocab_size, size=(B, T))
    middle = T // 2
    input_ids[:, [0, middle, T - 1]] = [1, 2, 2]  # [CLS], [SEP], [SEP]
    token_type_ids = np.zeros((B, T), dtype=np.int64)
    token_type_ids[:, middle + 1:] = 1
    content = input_ids > 3
    masked = content & (rng.random((B, T)) < MASK_PROBABILITY)
    masked[0, 1] = True  # at least one label
    mlm_labels = np.where(masked, input_ids, IGNORE_INDEX)
    input_ids[masked] = 3  # [MASK]
    return {"input_ids": input_ids, "token_type_ids": token_type_ids,
            "attention_mask": np.ones((B, T), dtype=np.int64), "mlm_labels": mlm_labels,
            "nsp_labels": rng.integers(0, 2, size=B)}


def ours(size: Size, micro_batches: int = 1):
    """(step, forward) closures of our model on the benchmark batch; with micro-batches, the
    step cuts the batch into that many, each with a dropout stream of its own (as in training),
    which run on the compute threads."""
    import numpy as np

    from bert.api import BertForPreTraining
    from bert.core.model import forward
    from bert.core.optim import AdamWConfig, init_state
    from bert.core.step import training_step

    config = make_config(size)
    model = BertForPreTraining(config, seed=0)
    batch = make_batch(size)
    state, adamw = init_state(model.params), AdamWConfig()

    def streams(index: int) -> np.random.Generator:
        return np.random.default_rng([0, index])

    def step() -> None:
        training_step(model.params, config, batch, state, lr=1e-4, adamw=adamw,
                      max_grad_norm=1.0, rng=streams if micro_batches > 1 else model.rng,
                      micro_batches=micro_batches)

    def forward_pass() -> None:
        forward(model.params, config, batch, model.rng)

    return step, forward_pass, int(np.sum(batch["mlm_labels"] != IGNORE_INDEX))


def torch_adamw(model, lr: float):
    """``torch.optim.AdamW`` (torch's default implementation on CPU) over the two groups our
    AdamW uses: weight decay 0.01 on every parameter but biases and LayerNorm, none on those."""
    import torch

    from bert.core.parameters import is_decayed

    named = list(model.named_parameters())
    decay = [p for n, p in named if is_decayed(n)]
    no_decay = [p for n, p in named if not is_decayed(n)]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr, eps=1e-6)


def torch_inputs(batch: dict) -> dict:
    """transformers' keyword arguments for one of our batches (NumPy arrays, as int64)."""
    import torch

    def tensor(name):
        return torch.from_numpy(batch[name].astype("int64", copy=False))

    sentence = {"next_sentence_label": tensor("nsp_labels")} if "nsp_labels" in batch else {}
    return {"input_ids": tensor("input_ids"), "token_type_ids": tensor("token_type_ids"),
            "attention_mask": tensor("attention_mask"), "labels": tensor("mlm_labels"),
            **sentence}


def torch_loss(model, inputs: dict):
    """transformers' pretraining loss of ``inputs``; without sentence labels (no sentence
    task), for which transformers computes none, the MLM loss alone."""
    import torch

    out = model(**inputs)
    if out.loss is not None:
        return out.loss
    logits = out.prediction_logits
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                             inputs["labels"].reshape(-1),
                                             ignore_index=IGNORE_INDEX)


def torch_step(model, optimizer, inputs: dict) -> None:
    """One step of a plain PyTorch training loop: forward with labels, ``backward``,
    ``clip_grad_norm_`` to 1.0, ``optimizer.step``, gradients set to None."""
    import torch

    torch_loss(model, inputs).backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def torch_model(config, threads: int):
    """transformers' BertForPreTraining of our ``config`` (a ``bert.core.config.BertConfig``),
    in training mode, with ``threads`` torch threads."""
    import torch
    from transformers import BertConfig as HFConfig
    from transformers import BertForPreTraining as HFBert

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    return HFBert(HFConfig(**config.to_hf())).train()


def theirs(size: Size, threads: int):
    """(step, forward) closures of transformers' BertForPreTraining on the same batch."""
    import torch

    model = torch_model(make_config(size), threads)
    optimizer = torch_adamw(model, lr=1e-4)
    inputs = torch_inputs(make_batch(size))

    def step() -> None:
        torch_step(model, optimizer, inputs)

    def forward_pass() -> None:
        with torch.no_grad():
            model(**inputs)

    return step, forward_pass


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


def blas_kernel() -> list[dict]:
    """The BLAS libraries NumPy loaded, as threadpoolctl names them: library, version, kernel
    (the ``architecture`` the library chose for this CPU), threads."""
    import numpy as np  # noqa: F401  (the BLAS to describe is the one NumPy loads)
    from threadpoolctl import threadpool_info

    return [{key: info.get(key) for key in ("internal_api", "version", "architecture",
                                            "threading_layer", "num_threads")}
            for info in threadpool_info() if info["user_api"] == "blas"]


def settle(seconds: float = SETTLE_S) -> None:
    """Sleep until the idle worker threads of the side that ran last stop spinning.

    After a step, OpenBLAS's worker threads busy-wait for about 0.1 s (2**28 cycles: ~120 ms of
    CPU measured here) before they sleep, torch's OpenMP threads for a few milliseconds.
    """
    time.sleep(seconds)


def summary(seconds: list[float]) -> dict:
    """Median, quartiles and extremes of a list of durations, in milliseconds."""
    ms = sorted(1000 * s for s in seconds)
    quartiles = statistics.quantiles(ms, n=4) if len(ms) > 1 else [ms[0]] * 3
    return {"median_ms": statistics.median(ms), "q1_ms": quartiles[0], "q3_ms": quartiles[2],
            "min_ms": ms[0], "max_ms": ms[-1], "samples": len(ms)}


def time_worker(size: Size, threads: int, repeats: int, warmup: int, reference: bool) -> dict:
    """Interleaved repetitions of both models' step and forward, and the matmul peak."""
    step, forward_pass, num_scored = ours(size)
    sides = {"ours": (step, forward_pass)}
    if reference:
        sides["transformers"] = theirs(size, threads)
    for step, forward_pass in sides.values():
        for _ in range(warmup):
            step()
            forward_pass()
    samples = {name: {"step": [], "forward": []} for name in sides}
    rounds = min(repeats, ROUNDS)
    for r in range(rounds):
        for name, (step, forward_pass) in sides.items():
            settle()
            step()  # untimed: brings this side's threads and buffers back
            for _ in range(repeats // rounds + (r < repeats % rounds)):
                samples[name]["step"].append(timed(step))
                samples[name]["forward"].append(timed(forward_pass))
    result = {name: {kind: summary(values) for kind, values in kinds.items()}
              for name, kinds in samples.items()}
    result["matmul_peak_gflops"] = matmul_peak(threads)
    result["flops"] = matmul_flops(make_config(size), size.batch_size, size.seq_len, num_scored)
    result["blas"] = blas_kernel()
    return result


def _rss_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def memory_worker(size: Size, threads: int, side: str, steps: int = 3) -> dict:
    """Peak memory a training step needs beyond the model, optimizer state and batch, MiB."""
    import resource

    step = ours(size)[0] if side == "ours" else theirs(size, threads)[0]
    step()  # the first step creates what persists across steps (moments, .grad, workspaces)
    rss_before = _rss_kib("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM, the peak resident set
        method = "VmHWM"
    except OSError:
        method = "ru_maxrss"
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(steps):
        step()
    if method == "VmHWM" and rss_before is not None:
        peak_kib = _rss_kib("VmHWM") - rss_before
    else:
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - maxrss_before
    return {"step_peak_mib": peak_kib / 1024, "resident_before_mib": (rss_before or 0) / 1024,
            "method": method}


# --- the driver ----------------------------------------------------------------------------------


def threads_env(threads: int) -> dict[str, str]:
    """This process's environment with the thread count of BLAS and OpenMP set, for a worker
    process to read before NumPy or torch is imported."""
    env = dict(os.environ)
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(threads)
    return env


def run_worker(args: list[str], threads: int, module: str = "bert.bench") -> dict:
    """Run ``python -m <module> --worker ...`` with the thread count fixed before imports."""
    done = subprocess.run([sys.executable, "-m", module, "--threads", str(threads), *args],
                          env=threads_env(threads), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark worker {' '.join(args)} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def reference_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))


def machine() -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE")}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in f
                               if line.startswith("model name"))
    except (OSError, StopIteration):
        info["cpu"] = platform.processor()
    if hasattr(os, "getloadavg"):
        info["load_average_1min"] = os.getloadavg()[0]
    import numpy as np

    info["numpy"] = np.__version__
    info["blas"] = blas_kernel()
    if reference_available():
        from importlib.metadata import version

        info["torch"], info["transformers"] = version("torch"), version("transformers")
    return info


def measure(name: str, threads: int, repeats: int | None, warmup: int, reference: bool,
            memory: bool) -> dict:
    size = SIZES[name]
    repeats = repeats or size.repeats
    common = ["--size", name]
    timing = run_worker(["--worker", "time", *common, "--repeats", str(repeats),
                         "--warmup", str(warmup)] + (["--reference"] if reference else []),
                        threads)
    result = {"size": name, "description": size.description, "config": vars(size),
              "tokens_per_step": size.batch_size * size.seq_len, **timing}
    tokens = result["tokens_per_step"]
    for side in ("ours", "transformers"):
        if side in result:
            median_s = result[side]["step"]["median_ms"] / 1000
            result[side]["step"]["tokens_per_s"] = tokens / median_s
    ours_step_s = result["ours"]["step"]["median_ms"] / 1000
    result["ours"]["step"]["gflops"] = result["flops"]["step"] / ours_step_s / 1e9
    result["peak_share"] = result["ours"]["step"]["gflops"] / result["matmul_peak_gflops"]
    if reference:
        theirs_ = result["transformers"]
        result["step_speedup"] = theirs_["step"]["median_ms"] / result["ours"]["step"]["median_ms"]
        result["forward_speedup"] = (theirs_["forward"]["median_ms"]
                                     / result["ours"]["forward"]["median_ms"])
    if memory:
        sides = ["ours"] + (["transformers"] if reference else [])
        result["memory"] = {side: run_worker(["--worker", "memory", *common, "--side", side],
                                             threads) for side in sides}
        if reference:
            result["memory_ratio"] = (result["memory"]["ours"]["step_peak_mib"]
                                      / result["memory"]["transformers"]["step_peak_mib"])
    return result


def spread(stats: dict) -> str:
    """Median with half the interquartile range, e.g. ``12.3 ±0.4``."""
    return f"{stats['median_ms']:.1f} ±{(stats['q3_ms'] - stats['q1_ms']) / 2:.1f}"


def header(report: dict) -> str:
    """The line above the table: the BLAS kernel in use (the machine's settings, such as
    ``OPENBLAS_CORETYPE``, can change it) and the thread count."""
    m = report["machine"]
    kernels = ", ".join(f"{b['internal_api']} {b['version']} kernel {b['architecture']}"
                        for b in m.get("blas", [])) or "no BLAS found by threadpoolctl"
    return (f"BLAS: {kernels}; OPENBLAS_CORETYPE={m.get('OPENBLAS_CORETYPE') or 'unset'}; "
            f"{report['threads']} compute thread{'s' if report['threads'] != 1 else ''}")


def table(report: dict) -> str:
    """The results as a Markdown table, the BLAS kernel above it, the machine and notes under."""
    reference = report["reference"]
    columns = ["size", "ours step ms", "ours tok/s"]
    columns += ["hf step ms", "hf tok/s", "step speedup"] if reference else []
    columns += ["ours fwd ms"] + (["hf fwd ms", "fwd speedup"] if reference else [])
    columns += ["GFLOP/s", "peak share", "ours step MiB"]
    columns += ["hf step MiB", "mem ratio"] if reference else []
    rows = []
    for r in report["results"]:
        ours_, row = r["ours"], [r["size"]]
        row += [spread(ours_["step"]), f"{ours_['step']['tokens_per_s']:,.0f}"]
        if reference:
            hf = r["transformers"]
            row += [spread(hf["step"]), f"{hf['step']['tokens_per_s']:,.0f}",
                    f"{r['step_speedup']:.2f}x"]
        row += [spread(ours_["forward"])]
        if reference:
            row += [spread(r["transformers"]["forward"]), f"{r['forward_speedup']:.2f}x"]
        row += [f"{ours_['step']['gflops']:.3g}",
                f"{r['peak_share']:.0%} of {r['matmul_peak_gflops']:.0f}"]
        memory = r.get("memory", {})
        row += [f"{memory['ours']['step_peak_mib']:.1f}" if memory else "-"]
        if reference:
            row += ([f"{memory['transformers']['step_peak_mib']:.1f}",
                     f"{r['memory_ratio']:.2f}x"] if memory else ["-", "-"])
        rows.append(row)
    lines = [header(report), "",
             "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    m = report["machine"]
    lines += ["", f"{m['cpu']}, {m['cpu_count']} CPUs, {report['threads']} threads, "
              f"Python {m['python']}, NumPy {m['numpy']}"
              + (f", torch {m['torch']}, transformers {m['transformers']}" if reference else "")
              + (f", load average {m['load_average_1min']:.1f}" if "load_average_1min" in m
                 else ""),
              "Times: median ±half the interquartile range over the repetitions; a step is "
              "forward + backward + clipping + AdamW, float32, dropout 0.1. GFLOP/s: matmul "
              "FLOPs the step needs / median time; peak: NumPy float32 matmul, same run. "
              "MiB: peak resident memory of a step beyond the model, optimizer and batch."]
    if not reference:
        lines.append(f"transformers not timed: {report['reference_note']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bert.bench",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="small,default,tiny,mini",
                        help=f"comma-separated names among {', '.join(SIZES)} "
                             "(default: small,default,tiny,mini)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed repetitions per size (default: "
                             f"{', '.join(f'{s.repeats} for {n}' for n, s in SIZES.items())})")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (default: 2)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="BLAS / torch threads (default: the number of CPUs)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--no-reference", action="store_true",
                        help="do not time transformers even when it is installed")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    parser.add_argument("--profile", action="store_true",
                        help="instead of the comparison, where our step's time goes: each "
                             "layer's milliseconds, elements and passes (bert.bench.passes)")
    parser.add_argument("--micro-batches", type=int, default=1,
                        help="with --profile: cut the batch into this many micro-batches, which "
                             "run on the threads (default: 1)")
    parser.add_argument("--worker", choices=("time", "memory", "profile"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--size", choices=tuple(SIZES), help=argparse.SUPPRESS)
    parser.add_argument("--side", choices=("ours", "transformers"), help=argparse.SUPPRESS)
    parser.add_argument("--reference", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:  # inside a worker process: the environment already fixes the threads
        from threadpoolctl import threadpool_limits

        from bert.engine.allocation import keep_freed_memory
        from bert.engine.pool import set_threads

        threadpool_limits(args.threads)  # torch's OpenMP too
        if args.worker != "memory":
            # as training does, for both models (they share the process), before the threads
            # start; not in the memory workers, where freed memory kept resident would hide
            # what a step needs
            keep_freed_memory()
        set_threads(args.threads)  # our pool; BLAS on one thread
        size = SIZES[args.size]
        if args.worker == "time":
            out = time_worker(size, args.threads, args.repeats, args.warmup, args.reference)
        elif args.worker == "profile":
            from bert.bench.passes import profile

            result = profile(ours(size, args.micro_batches)[0], args.threads,
                             args.repeats or size.repeats,
                             task_threads=min(args.threads, args.micro_batches))
            out = {**result, "rows": {name: vars(row) for name, row in result["rows"].items()}}
        else:
            out = memory_worker(size, args.threads, args.side)
        print(json.dumps(out))
        return

    names = [name.strip() for name in args.sizes.split(",") if name.strip()]
    unknown = [name for name in names if name not in SIZES]
    if unknown:
        parser.error(f"unknown size(s) {unknown}: choose among {', '.join(SIZES)}")
    if args.profile:
        from bert.bench import passes

        print(header({"threads": args.threads, "machine": machine()}))
        for name in names:
            result = run_worker(["--worker", "profile", "--size", name,
                                 "--micro-batches", str(args.micro_batches)]
                                + (["--repeats", str(args.repeats)] if args.repeats else []),
                                args.threads)
            result["rows"] = {work: passes.Row(**row) for work, row in result["rows"].items()}
            print(f"\n{passes.table(name, result)}")
        return
    reference = not args.no_reference and reference_available()
    report = {"threads": args.threads, "reference": reference,
              "reference_note": None if reference else (
                  "disabled by --no-reference" if args.no_reference else
                  f"torch or transformers is not installed; {REFERENCE_HINT}"),
              "machine": machine(), "results": []}
    for name in names:
        report["results"].append(measure(name, args.threads, args.repeats, args.warmup,
                                         reference, not args.no_memory))
    print(json.dumps(report, indent=2) if args.json else table(report))


if __name__ == "__main__":
    main()
