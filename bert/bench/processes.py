"""Data-parallel training: ``python -m bert.bench processes [--processes N] [--size mini]``.

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
import sys
import time

from bert.bench.clock import blocks, settle, timed, times
from bert.bench.sides import ours
from bert.bench.sizes import SIZES, Size
from bert.bench.system import cpu_waits, thread_cpu
from bert.bench.tables import processes_table
from bert.bench.workers import Worker, start_worker, worker_command

MESSAGE_MIB = (0.25, 1, 4, 16, 64)
# The scaling model (see ``projection``): ranks, link speeds, and the per-hop latency assumed
# for a network (it cannot be measured on one machine).
PROJECTED_RANKS = (2, 4, 8, 16, 32, 64)
LINKS_GBIT = (10, 100)
HOP_LATENCY_S = 20e-6


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


def serve(size: Size, micro_batches: int, warmup: int, threads: int,
          switch_interval: float | None = None) -> None:
    """A worker: build the model and batch, warm up, say ``ready``, then answer the commands
    read from stdin (``steps K``, ``update K``, ``reductions K``, ``quit``) with one JSON line
    each on stdout (rank 0's). It runs the step under MPI when started by a launcher, on
    ``threads`` compute threads per process, as the train stage does; ``switch_interval``, if
    given, is how long a thread holds the GIL before another waiting for it takes it
    (``sys.setswitchinterval``; Python's default is 5 ms)."""
    if switch_interval is not None:
        sys.setswitchinterval(switch_interval)
    start_worker(threads)

    from bert.core.step import OneProcess, Partial

    comm, reduction, barrier = None, OneProcess(), None
    if os.environ.get("PMI_SIZE", "1") != "1" or os.environ.get("OMPI_COMM_WORLD_SIZE"):
        from bert.parallel.mpi import MpiReduction, world

        comm = world()
        reduction, barrier = MpiReduction(comm), comm.Barrier
    side = ours(size, micro_batches, reduction=reduction)
    params = side.params

    def answer(result: dict) -> None:
        if comm is None or comm.Get_rank() == 0:
            print(json.dumps(result), flush=True)

    def timed_steps(repeats: int) -> tuple[list[float], float]:
        """Each of ``repeats`` steps' seconds, and the seconds of them all."""
        found: list[float] = []
        return found, timed(lambda: found.extend(times(side.step, repeats, barrier)))

    for _ in range(warmup):
        side.step()
    answer({"ready": True, "parameters": int(sum(p.size for p in params.values()))})
    while (command := _next_command(comm).split())[0] != "quit":
        what, repeats = command[0], int(command[1])
        if what == "steps":
            before = thread_cpu()
            found, seconds = timed_steps(repeats)
            waits = cpu_waits(before, thread_cpu(), seconds)
            if comm is not None:  # every rank's busy threads
                waits = [w for rank in comm.allgather(waits) for w in rank]
            answer({"step_s": found, "loop_s": seconds,
                    "cpu_wait_s": min(waits) if waits else None})
        elif what == "update":
            answer({"update_s": times(side.update, repeats)})
        else:
            answer(reductions(comm, reduction, params, micro_batches, repeats, Partial))


def _median(func, repeats: int, barrier=None) -> float:
    return statistics.median(times(func, repeats, barrier))


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


def measure(processes: int, size_name: str, repeats: int, warmup: int, mpiexec: str,
            micro_batches: int | None = None, switch_interval: float | None = None) -> dict:
    """The four configurations, their steps timed in alternating rounds (so that a change of
    the machine's load hits all four alike), and the derived efficiencies."""
    from bert.workflow.launch import find_launcher

    micro_batches = micro_batches or processes
    size = SIZES[size_name]
    tokens = size.tokens
    load = os.getloadavg()[0]

    def serve_command(threads: int, micro: int) -> list[str]:
        switch = ["--switch-interval", str(switch_interval)] if switch_interval else []
        return worker_command("processes", threads, "--size", size_name, "--micro-batches",
                              str(micro), "--warmup", str(warmup), *switch)

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
        rounds = blocks(repeats)
        for block in rounds:
            for name, worker in workers.items():
                settle()
                done = worker.ask(f"steps {block}")
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
    step = {name: statistics.median(found) for name, found in samples.items()}
    one = step["one_process_one_thread"]
    return {
        "size": size_name, "processes": processes, "micro_batches": micro_batches,
        "switch_interval_s": switch_interval or sys.getswitchinterval(),
        "tokens_per_step": tokens, "parameters": ready["parameters"],
        "load_average_at_start": load, "load_average_at_end": os.getloadavg()[0],
        **{name: {"step_s": seconds, "tokens_per_s": tokens / seconds, "samples": samples[name],
                  "step_not_waiting_s": (sum(busy[name]) / len(samples[name])
                                         if len(busy[name]) == len(rounds) else None)}
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


def run(args: argparse.Namespace) -> None:
    """``python -m bert.bench processes``: the four configurations, then the table (or the
    JSON)."""
    if args.worker:
        serve(SIZES[args.size], args.micro_batches or 1, args.warmup, args.threads,
              args.switch_interval)
        return
    report = measure(args.processes, args.size, args.repeats, args.warmup, args.mpiexec,
                     args.micro_batches, args.switch_interval)
    report["projection"] = projection(report)
    report["hop_latency_s"] = HOP_LATENCY_S
    print(json.dumps(report, indent=2) if args.json else processes_table(report))
