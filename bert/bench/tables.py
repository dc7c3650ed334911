"""The benchmarks' reports as text: the step comparison's table (``step``), the profile's
(``profile``), the PyTorch loop's (``loop``), the data-parallel configurations' (``processes``),
the train stage's summary (``stage``), the files' (``files``). Each reads the report its command
prints under ``--json`` (the profile: ``bert.bench.passes.profile``'s result)."""

from __future__ import annotations

import statistics


def spread(stats: dict) -> str:
    """Median with half the interquartile range, e.g. ``12.3 ±0.4``."""
    return f"{stats['median_ms']:.1f} ±{(stats['q3_ms'] - stats['q1_ms']) / 2:.1f}"


def markdown(columns: list[str], rows: list[list[str]]) -> list[str]:
    """The lines of a Markdown table."""
    return ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns),
            *("| " + " | ".join(row) + " |" for row in rows)]


def header(report: dict) -> str:
    """The line above a table: the BLAS kernel in use (the machine's settings, such as
    ``OPENBLAS_CORETYPE``, can change it) and the thread count."""
    m = report["machine"]
    kernels = ", ".join(f"{b['internal_api']} {b['version']} kernel {b['architecture']}"
                        for b in m.get("blas", [])) or "no BLAS found by threadpoolctl"
    return (f"BLAS: {kernels}; OPENBLAS_CORETYPE={m.get('OPENBLAS_CORETYPE') or 'unset'}; "
            f"{report['threads']} compute thread{'s' if report['threads'] != 1 else ''}")


def step_table(report: dict) -> str:
    """The step comparison as a Markdown table, the BLAS kernel above it, the machine and notes
    under it."""
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
    m = report["machine"]
    lines = [header(report), "", *markdown(columns, rows)]
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


def profile_table(name: str, result: dict) -> str:
    """Where the step's time goes (``bert.bench.passes.profile``'s result), the largest row
    first."""
    plain, wrapped = result["plain_step_s"], result["wrapped_step_s"]
    tasks = result.get("task_threads", 1)
    columns = ["work", f"{'thread-ms' if tasks > 1 else 'ms'} per step", "of which CPU", "share",
               "calls", "work per step", "passes per element", "cost"]
    rows = []
    for work, row in sorted(result["rows"].items(), key=lambda item: -item[1].seconds):
        amount = passes = cost = "-"
        if row.multiply_adds:
            amount = f"{row.multiply_adds / 1e6:.1f} M multiply-adds"
            if row.seconds:
                cost = f"{2 * row.multiply_adds / row.seconds / 1e9:.0f} GFLOP/s"
        elif row.elements:
            amount = f"{row.elements / 1e3:.0f} K elements"
            passes = f"{row.element_passes / row.elements:.1f}"
            cost = f"{row.seconds / row.element_passes * 1e9:.2f} ns per element-pass"
        rows.append([work, f"{row.seconds * 1e3:.2f}",
                     f"{row.cpu_seconds * 1e3:.2f}" if row.calls else "-",
                     f"{row.seconds / (tasks * wrapped):.0%}",
                     f"{row.calls:g}" if row.calls else "-", amount, passes, cost])
    return "\n".join([
        f"{name}: step {plain * 1e3:.1f} ms (median of {result['steps']}, "
        f"{result['threads']} thread{'s' if result['threads'] != 1 else ''}"
        + (f", micro-batches on {tasks} at once" if tasks > 1 else "") + "); "
        f"{wrapped * 1e3:.1f} ms with the wrappers", "", *markdown(columns, rows)])


def loop_table(results: list[dict]) -> str:
    """One row per size and micro-batch count: both sides' step and forward-backward, the
    speed-up (torch's time over ours)."""
    columns = ["size", "micro-batches", "ours step ms", "torch step ms", "step speed-up",
               "ours fwd+bwd ms", "torch fwd+bwd ms", "fwd+bwd speed-up", "load"]
    rows = []
    for r in results:
        for side, ours in r["ours"].items():
            speedup = r["speedup"][side]
            rows.append([r["size"], side.split("=")[1], spread(ours["step"]),
                         spread(r["torch"]["step"]), f"{speedup['step']:.2f}x",
                         spread(ours["fwd_bwd"]), spread(r["torch"]["fwd_bwd"]),
                         f"{speedup['fwd_bwd']:.2f}x",
                         f"{r['load_average_at_start']:.1f}-{r['load_average_at_end']:.1f}"])
    first = results[0]
    return "\n".join([
        *markdown(columns, rows), "",
        f"{first['threads']} compute threads on both sides; dropout {first['dropout']}; "
        "float32. Times: median ±half the interquartile range; speed-up: torch's median "
        "over ours. load: the 1-minute load average before and after each size."])


def processes_table(report: dict) -> str:
    """The four configurations of data-parallel training, the reductions, the projection."""
    n, m = report["processes"], report["micro_batches"]
    one = report["one_process_one_thread"]["step_s"]
    rows = [
        ("1 process x 1 thread", 1, report["one_process_one_thread"], ""),
        (f"1 process x {n} threads", 1, report["one_process_threads"],
         f"{report['thread_efficiency']:.0%}"),
        (f"{n} ranks x 1 thread", m, report["ranks_one_thread_each"],
         f"{report['rank_efficiency']:.0%}"),
        (f"1 process x {n} threads", m, report["micro_batch_threads"],
         f"{report['micro_batch_thread_efficiency']:.0%}"),
    ]
    lines = [f"{report['size']}: {report['tokens_per_step']} tokens per step; load average "
             f"{report['load_average_at_start']:.1f} at the start, "
             f"{report['load_average_at_end']:.1f} at the end; GIL switch interval "
             f"{1000 * report['switch_interval_s']:g} ms",
             f"{'':24} {'micro-batches':>13} {'step ms':>9} {'tokens/s':>10} {'speed-up':>9} "
             f"{'efficiency':>11} {'not waiting for a CPU':>22}"]
    alone = report["one_process_one_thread"]["step_not_waiting_s"]
    for name, micro, r, eff in rows:
        unwaited = r["step_not_waiting_s"]
        lines.append(f"{name:24} {micro:>13} {1000 * r['step_s']:9.1f} "
                     f"{r['tokens_per_s']:10,.0f} {one / r['step_s']:8.2f}x {eff:>11} "
                     + (f"{1000 * unwaited:12.1f} ms {alone / unwaited:5.2f}x" if unwaited
                        and alone else f"{'-':>22}"))
    lines.append(f"gradient {report['gradient_mib']:.1f} MiB: fixed-order reduction "
                 f"{1000 * report['fixed_order_reduction_s']:.1f} ms, plain Allreduce "
                 f"{1000 * report['allreduce_s']:.1f} ms")
    lines.append("Allreduce by message size: " + ", ".join(
        f"{mib} MiB {1000 * s:.2f} ms" for mib, s in report["allreduce_by_size_s"].items()))
    lines.append(f"compute per micro-batch {1000 * report['compute_per_micro_batch_s']:.1f} ms, "
                 f"update {1000 * report['update_s']:.1f} ms; projected efficiency over a "
                 f"network ({report['hop_latency_s'] * 1e6:.0f} us per hop):")
    ranks = next(iter(report["projection"].values()))
    lines.append("ranks     " + "".join(f"{n:>7}" for n in ranks))
    lines += [f"{gbit:>3} Gb/s  " + "".join(f"{e:7.0%}" for e in row.values())
              for gbit, row in report["projection"].items()]
    return "\n".join(lines)


def stage_table(label: str, result: dict) -> str:
    """The train stage against the PyTorch loop: medians over the repeats, with each repeat's
    speed-up."""
    ours_ms, torch_ms = (statistics.median(result["per_step_ms"][s]) for s in ("ours", "torch"))
    speedups = result["speedups"]
    return (f"{label}: {result['steps_per_epoch']} steps per epoch; load average "
            f"{result['load_average_at_start']:.1f} at the start, "
            f"{result['load_average_at_end']:.1f} at the end\n"
            f"  train stage {ours_ms:.2f} ms per step (inside the steps "
            f"{statistics.median(result['ours_in_steps_ms']):.2f}), torch loop {torch_ms:.2f}: "
            f"{torch_ms / ours_ms:.2f}x (each repeat: "
            f"{', '.join(f'{s:.2f}' for s in speedups)})")


def files_table(report: dict) -> str:
    """Writing and reading a checkpoint and the model file, a row per size."""
    columns = ["size", "parameters", "checkpoint datasets", "checkpoint MiB",
               "save checkpoint ms", "load checkpoint ms", "save model ms", "load model ms"]
    rows = [[r["size"], f"{r['parameters']:,}", str(r["checkpoint_datasets"]),
             f"{r['checkpoint_mib']:.2f}", spread(r["save_checkpoint"]),
             spread(r["load_checkpoint"]), spread(r["save_weights"]), spread(r["load_weights"])]
            for r in report["results"]]
    return "\n".join([
        *markdown(columns, rows), "",
        f"Times: median ±half the interquartile range of {report['repeats']} calls after one "
        f"untimed; float32; each checkpoint of the next step, the newest {report['keep']} kept."])
