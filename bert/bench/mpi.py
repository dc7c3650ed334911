"""Benchmark of data-parallel training: ``python -m bert.bench --processes N [--size mini]``.

Times the training step (``bert.core.step.training_step``, dropout on, float32) four ways, each
in worker processes of its own with the BLAS thread count fixed before NumPy is imported:

- 1 process x 1 thread, the whole batch at once (the baseline);
- 1 process x N threads, the whole batch at once: the pool shares each layer's chains;
- N MPI ranks x 1 thread each, under ``mpiexec -n N``, the batch cut into M micro-batches (M/N
  per rank);
- 1 process x N threads, the batch cut into M micro-batches, each whole on one thread.

M is ``--micro-batches`` (default N). The parallel efficiency of a configuration of N cores is
``t(1 x 1) / (N t)``. Under MPI it also times, on the gradient's size, the fixed-order
reduction the step uses (``bert.parallel.mpi``) against a plain ``MPI_Allreduce``, and a plain
Allreduce against the message size, from which the projected efficiency over a network takes its
inputs. The workers start once and wait, asleep, for their turn: the
four take turns in a few rounds, so that a change of the machine's load hits all of them alike.
Times are medians of the repetitions; a step on the ranks is timed on rank 0 between two
barriers, so it includes waiting for the slowest rank.

On a shared machine the configurations do not get the same share of the CPUs: Linux shares them
out by session first (autogroup), and ``mpiexec`` starts each rank in a session of its own, so
under load two ranks get about twice the CPU time of one process, whatever its threads. Each
worker therefore also reports, from the kernel's accounts (``/proc/self/task/*/schedstat``),
how long its busy threads waited, runnable, for a CPU; the step less the shortest of those
waits is what the configuration took when not waiting for a CPU (Linux only).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from bert.bench.step import ROUNDS, SIZES, Size, make_batch, make_config, settle, threads_env

MESSAGE_MIB = (0.25, 1, 4, 16, 64)
# The scaling model (see ``projection``): ranks, link speeds, and the per-hop latency assumed
# for a network (it cannot be measured on one machine).
PROJECTED_RANKS = (2, 4, 8, 16, 32, 64)
LINKS_GBIT = (10, 100)
HOP_LATENCY_S = 20e-6


def _times(func, repeats: int, barrier=None) -> list[float]:
    """Seconds of ``repeats`` calls of ``func``, each between two barriers when given."""
    times = []
    for _ in range(repeats):
        if barrier:
            barrier()
        start = time.perf_counter()
        func()
        if barrier:
            barrier()
        times.append(time.perf_counter() - start)
    return times


def thread_cpu() -> dict[str, tuple[int, int]]:
    """Per thread of this process: nanoseconds running and waiting, runnable, for a CPU (the
    kernel's schedstat); empty where there is none."""
    found = {}
    try:
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/schedstat") as f:
                running, waiting = f.read().split()[:2]
            found[tid] = (int(running), int(waiting))
    except (OSError, ValueError):
        return {}
    return found


def cpu_waits(before: dict, after: dict, seconds: float) -> list[float]:
    """Seconds each thread that ran at least 5% of ``seconds`` between two ``thread_cpu``
    readings waited for a CPU."""
    return [(after[t][1] - before[t][1]) / 1e9 for t in after
            if t in before and after[t][0] - before[t][0] >= 0.05 * seconds * 1e9]


def _next_command(comm) -> str:
    """The next line of stdin (read by rank 0, passed on to the others, which wait for it
    asleep rather than spinning in MPI: they would take a CPU from the side being timed)."""
    reader = comm is None or comm.Get_rank() == 0
    line = (sys.stdin.readline().strip() or "quit") if reader else None
    if comm is None:
        return line
    arrived = comm.Ibarrier()  # rank 0 enters once it has the line
    while not arrived.Test():
        time.sleep(0.002)
    return comm.bcast(line)


def serve(size: Size, micro_batches: int, warmup: int, threads: int) -> None:
    """A worker: build the model and batch, warm up, say ``ready``, then answer the commands
    read from stdin (``steps K``, ``update K``, ``reductions K``, ``quit``) with one JSON line
    each on stdout (rank 0's). It runs the step under MPI when started by a launcher, on
    ``threads`` compute threads per process, as the train stage does."""
    import numpy as np

    from bert.engine.allocation import keep_freed_memory
    from bert.engine.pool import set_threads

    keep_freed_memory()  # as training does, before the threads start
    set_threads(threads)

    from bert.core.optim import AdamWConfig, adamw_step, clip_grad_norm, init_state
    from bert.core.parameters import init_params, is_decayed
    from bert.core.step import OneProcess, Partial, training_step

    config = make_config(size)
    params = init_params(config, np.random.default_rng(0))
    optimizer, batch = init_state(params), make_batch(size)
    comm, reduction, barrier = None, OneProcess(), None
    if os.environ.get("PMI_SIZE", "1") != "1" or os.environ.get("OMPI_COMM_WORLD_SIZE"):
        from bert.parallel.mpi import MpiReduction, world

        comm = world()
        reduction, barrier = MpiReduction(comm), comm.Barrier

    def step() -> None:
        training_step(params, config, batch, optimizer, lr=1e-4, adamw=AdamWConfig(),
                      max_grad_norm=1.0, rng=lambda i: np.random.default_rng([0, i]),
                      micro_batches=micro_batches, reduction=reduction)

    grads = params.zeros_like()
    grads.flat[:] = 1e-3

    def update() -> None:  # what every rank repeats on the whole model after the reduction
        clip_grad_norm(grads, 1.0)
        adamw_step(params, grads, optimizer, 1e-4, AdamWConfig(), is_decayed)

    def answer(result: dict) -> None:
        if comm is None or comm.Get_rank() == 0:
            print(json.dumps(result), flush=True)

    for _ in range(warmup):
        step()
    answer({"ready": True, "parameters": int(sum(p.size for p in params.values()))})
    while (command := _next_command(comm).split())[0] != "quit":
        what, repeats = command[0], int(command[1])
        if what == "steps":
            before, start = thread_cpu(), time.perf_counter()
            times = _times(step, repeats, barrier)
            seconds = time.perf_counter() - start
            waits = cpu_waits(before, thread_cpu(), seconds)
            if comm is not None:  # every rank's busy threads
                waits = [w for rank in comm.allgather(waits) for w in rank]
            answer({"step_s": times, "loop_s": seconds,
                    "cpu_wait_s": min(waits) if waits else None})
        elif what == "update":
            answer({"update_s": _times(update, repeats)})
        else:
            answer(reductions(comm, reduction, params, micro_batches, repeats, Partial))


def _median(func, repeats: int, barrier=None) -> float:
    return statistics.median(_times(func, repeats, barrier))


def reductions(comm, reduction, params, micro_batches: int, repeats: int, partial) -> dict:
    """The step's fixed-order reduction and a plain Allreduce of the same gradient; a plain
    Allreduce of float32 messages of ``MESSAGE_MIB`` sizes."""
    import numpy as np
    from mpi4py import MPI

    from bert.core.flat import FlatParams
    from bert.core.summation import pieces

    nodes = pieces(reduction.block(micro_batches), micro_batches)

    # gradients shaped like the step's (the parameters' flat layout); the reduction may write
    # the total into the first piece's arrays, which changes the values it sums, not its time
    sums = [partial(FlatParams.of(params, order=params.order), 0.0, 0.0) for _ in nodes]

    flat = np.concatenate([v.reshape(-1) for v in params.values()])
    out = np.empty_like(flat)
    result = {
        "fixed_order_reduction_s": _median(
            lambda: reduction.total(nodes, sums, micro_batches), repeats, comm.Barrier),
        "allreduce_s": _median(lambda: comm.Allreduce(flat, out, MPI.SUM), repeats,
                                 comm.Barrier),
        "gradient_mib": flat.nbytes / 2**20,
        "allreduce_by_size": {},
    }
    for mib in MESSAGE_MIB:
        message = np.ones(int(mib * 2**18), np.float32)
        received = np.empty_like(message)
        result["allreduce_by_size"][str(mib)] = _median(
            lambda m=message, r=received: comm.Allreduce(m, r, MPI.SUM), repeats, comm.Barrier)
    return result


class Worker:
    """A worker process (or MPI job) of ``serve``, driven line by line."""

    def __init__(self, command: list[str], threads: int) -> None:
        self.process = subprocess.Popen(command, env=threads_env(threads), text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.command = command

    def read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"benchmark worker failed: {' '.join(self.command)}")
        return json.loads(line)

    def ask(self, command: str) -> dict:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.read()

    def close(self) -> None:
        try:
            self.process.stdin.write("quit\n")
            self.process.stdin.close()
        except BrokenPipeError:  # it ended already (and said why on stderr)
            pass
        self.process.wait(timeout=60)


def measure(processes: int, size_name: str, repeats: int, warmup: int, mpiexec: str,
            micro_batches: int | None = None) -> dict:
    """The four configurations, their steps timed in alternating rounds (so that a change of
    the machine's load hits all four alike), and the derived efficiencies."""
    from bert.workflow.launch import find_launcher

    micro_batches = micro_batches or processes
    size = SIZES[size_name]
    tokens = size.batch_size * size.seq_len
    load = os.getloadavg()[0]

    def serve_command(threads: int, micro: int) -> list[str]:
        return [sys.executable, "-m", "bert.bench.mpi", "--worker", "--size", size_name,
                "--micro-batches", str(micro), "--warmup", str(warmup), "--threads", str(threads)]

    workers = {
        "one_process_one_thread": Worker(serve_command(1, 1), 1),
        "one_process_threads": Worker(serve_command(processes, 1), processes),
        "ranks_one_thread_each": Worker(
            [*find_launcher(mpiexec), "-n", str(processes), *serve_command(1, micro_batches)], 1),
        "micro_batch_threads": Worker(serve_command(processes, micro_batches), processes),
    }
    try:
        for worker in workers.values():
            ready = worker.read()
        samples: dict[str, list[float]] = {name: [] for name in workers}
        busy = {name: [] for name in workers}  # per round: seconds of steps less the CPU wait
        rounds = min(repeats, ROUNDS)
        for r in range(rounds):
            for name, worker in workers.items():
                settle()
                done = worker.ask(f"steps {repeats // rounds + (r < repeats % rounds)}")
                samples[name] += done["step_s"]
                if done["cpu_wait_s"] is not None:
                    busy[name].append(done["loop_s"] - done["cpu_wait_s"])
        settle()
        update = statistics.median(
            workers["one_process_one_thread"].ask(f"update {repeats}")["update_s"])
        comm = workers["ranks_one_thread_each"].ask(f"reductions {repeats}")
    finally:
        for worker in workers.values():
            worker.close()
    step = {name: statistics.median(times) for name, times in samples.items()}
    one = step["one_process_one_thread"]
    return {
        "size": size_name, "processes": processes, "micro_batches": micro_batches,
        "tokens_per_step": tokens, "parameters": ready["parameters"],
        "load_average_at_start": load, "load_average_at_end": os.getloadavg()[0],
        **{name: {"step_s": seconds, "tokens_per_s": tokens / seconds, "samples": samples[name],
                  "step_not_waiting_s": (sum(busy[name]) / len(samples[name])
                                         if len(busy[name]) == rounds else None)}
           for name, seconds in step.items()},
        "rank_efficiency": one / (processes * step["ranks_one_thread_each"]),
        "thread_efficiency": one / (processes * step["one_process_threads"]),
        "micro_batch_thread_efficiency": one / (processes * step["micro_batch_threads"]),
        "update_s": update,
        "compute_per_micro_batch_s": (one - update) / processes,
        "gradient_mib": comm["gradient_mib"],
        "fixed_order_reduction_s": comm["fixed_order_reduction_s"],
        "allreduce_s": comm["allreduce_s"],
        "allreduce_by_size_s": comm["allreduce_by_size"],
    }


def ring_allreduce_s(ranks: int, nbytes: float, gbit: float) -> float:
    """A ring allreduce of ``nbytes`` over ``ranks`` on links of ``gbit`` Gb/s: each rank sends
    and receives 2 (N-1)/N of the message, in 2 (N-1) hops of ``HOP_LATENCY_S`` each."""
    return 2 * (ranks - 1) / ranks * nbytes * 8 / (gbit * 1e9) + 2 * (ranks - 1) * HOP_LATENCY_S


def projection(report: dict) -> dict[int, dict[int, float]]:
    """Parallel efficiency of N ranks, each computing one micro-batch of the measured size,
    against one process computing all N: ``(N c + u) / (N (c + u + r))``, with c the compute
    per micro-batch and u the update (clipping, AdamW) measured here, r the ring allreduce at
    each link speed plus the local overhead of the fixed-order reduction measured here."""
    c, u = report["compute_per_micro_batch_s"], report["update_s"]
    overhead = max(report["fixed_order_reduction_s"] - report["allreduce_s"], 0.0)
    nbytes = report["gradient_mib"] * 2**20
    return {gbit: {n: (n * c + u) / (n * (c + u + ring_allreduce_s(n, nbytes, gbit) + overhead))
                   for n in PROJECTED_RANKS} for gbit in LINKS_GBIT}


def table(report: dict) -> str:
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
             f"{report['load_average_at_end']:.1f} at the end",
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
                 f"network ({HOP_LATENCY_S * 1e6:.0f} us per hop):")
    lines.append("ranks     " + "".join(f"{n:>7}" for n in PROJECTED_RANKS))
    lines += [f"{gbit:>3} Gb/s  " + "".join(f"{e:7.0%}" for e in row.values())
              for gbit, row in report["projection"].items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bert.bench --processes N",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=2, help="MPI ranks (default 2)")
    parser.add_argument("--size", choices=tuple(SIZES), default="mini",
                        help="the model and batch size (default mini)")
    parser.add_argument("--repeats", type=int, default=6,
                        help="timed steps of each configuration (default 6)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first (default 1)")
    parser.add_argument("--mpiexec", default="mpiexec", help="the launcher (default mpiexec)")
    parser.add_argument("--json", action="store_true", help="print everything as JSON")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--micro-batches", type=int, default=None,
                        help="micro-batches of the ranks and of the micro-batch threads "
                             "(default: --processes)")
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        serve(SIZES[args.size], args.micro_batches or 1, args.warmup, args.threads)
        return
    if args.processes < 2 or SIZES[args.size].batch_size % args.processes:
        parser.error("--processes must be 2 or more and divide the batch size")
    micro_batches = args.micro_batches or args.processes
    if micro_batches % args.processes or SIZES[args.size].batch_size % micro_batches:
        parser.error("--micro-batches must be a multiple of --processes and divide the batch "
                     "size")
    report = measure(args.processes, args.size, args.repeats, args.warmup, args.mpiexec,
                     micro_batches)
    report["projection"] = projection(report)
    print(json.dumps(report, indent=2) if args.json else table(report))


if __name__ == "__main__":
    main()
