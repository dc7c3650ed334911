"""The benchmarks' worker processes: each started with its thread count fixed in the environment
before NumPy or torch is imported, as ``python -m bert.bench <command> --worker ...``.

``run_worker`` runs one to its end and reads its last line of JSON; ``Worker`` keeps one (or an
MPI job of several) waiting for commands, one line each on stdin, answered with one line of
JSON on stdout; ``start_worker`` is what a worker does first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def threads_env(threads: int) -> dict[str, str]:
    """This process's environment with the thread count of BLAS and OpenMP set, for a worker
    process to read before NumPy or torch is imported."""
    return {**os.environ, **{name: str(threads) for name in THREAD_VARIABLES}}


def worker_command(command: str, threads: int, *args: str) -> list[str]:
    """``python -m bert.bench <command> --worker --threads N ...``."""
    return [sys.executable, "-m", "bert.bench", command, "--worker", "--threads", str(threads),
            *args]


def run_worker(command: str, threads: int, *args: str) -> dict:
    """Run a worker of sub-command ``command`` to its end; its last line, read as JSON."""
    done = subprocess.run(worker_command(command, threads, *args), env=threads_env(threads),
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark worker {command} {' '.join(args)} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def start_worker(threads: int, keep_freed: bool = True) -> None:
    """What a worker does first (its environment fixes the BLAS and OpenMP threads already):
    torch's OpenMP limited to ``threads`` too; freed memory kept, as training does, before the
    threads start (``keep_freed``: not in a memory worker, where memory kept resident would hide
    what a step needs); our pool on ``threads`` compute threads, BLAS on one."""
    from threadpoolctl import threadpool_limits

    from bert.engine.allocation import keep_freed_memory
    from bert.engine.pool import set_threads

    threadpool_limits(threads)
    if keep_freed:
        keep_freed_memory()
    set_threads(threads)


class Worker:
    """A worker process (or MPI job) that answers commands line by line."""

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
