"""``python -m bert.bench processes``: a smoke run at a toy size, and the scaling model."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bert.bench.processes import PROJECTED_RANKS, projection, ring_allreduce_s
from bert.bench.system import cpu_waits, thread_cpu
from bert.parallel.mpi import mpi_available


@pytest.mark.slow
@pytest.mark.skipif(not mpi_available(), reason='needs the mpi extra: pip install -e ".[mpi]"')
def test_the_benchmark_reports_every_configuration():
    done = subprocess.run([sys.executable, "-m", "bert.bench", "processes", "--processes", "2",
                           "--size", "micro", "--repeats", "2", "--json"],
                          capture_output=True, text=True, timeout=300, check=True)
    report = json.loads(done.stdout)
    assert report["micro_batches"] == 2
    for name in ("one_process_one_thread", "one_process_threads", "ranks_one_thread_each",
                 "micro_batch_threads"):
        assert len(report[name]["samples"]) == 2
        assert report[name]["tokens_per_s"] == pytest.approx(
            report["tokens_per_step"] / report[name]["step_s"])
        assert "step_not_waiting_s" in report[name]  # None where steps are too short to tell
    assert report["rank_efficiency"] == pytest.approx(
        report["one_process_one_thread"]["step_s"]
        / (2 * report["ranks_one_thread_each"]["step_s"]))
    assert report["micro_batch_thread_efficiency"] == pytest.approx(
        report["one_process_one_thread"]["step_s"]
        / (2 * report["micro_batch_threads"]["step_s"]))
    assert set(report["projection"]) == {"10", "100"}  # JSON keys


def test_the_ring_model_by_hand():
    # 2 ranks, 1 GB/s of payload (8 Gb/s): each rank moves the whole message once, in 2 hops
    assert ring_allreduce_s(2, 1e9, 8) == pytest.approx(1.0 + 2 * 20e-6)
    report = {"compute_per_micro_batch_s": 1.0, "update_s": 0.0, "fixed_order_reduction_s": 0.0,
              "allreduce_s": 0.0, "gradient_mib": 0.0}
    efficiency = projection(report)
    assert list(efficiency[10]) == list(PROJECTED_RANKS)
    # nothing to send: only the latency of the hops is lost
    assert efficiency[10][2] == pytest.approx(1 / (1 + 2 * 20e-6))


def test_cpu_waits_are_those_of_the_threads_that_ran():
    before = {"1": (0, 0), "2": (0, 0), "3": (0, 0)}
    after = {"1": (600_000_000, 300_000_000),  # ran 0.6 s, waited 0.3 s for a CPU
             "2": (40_000_000, 500_000_000),  # ran under 5% of the second: not busy
             "3": (900_000_000, 100_000_000), "4": (10**9, 0)}  # 4: started in between
    assert cpu_waits(before, after, seconds=1.0) == [0.3, 0.1]


def test_this_threads_running_time_is_read_from_the_kernel():
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("schedstat is Linux's")
    import threading
    import time

    def spin(seconds: float) -> None:
        end = time.thread_time() + seconds
        while time.thread_time() < end:
            pass

    before = thread_cpu()
    spin(0.2)
    # a thread that starts, runs and ends in between is not in either reading
    helper = threading.Thread(target=spin, args=(0.05,))
    helper.start()
    helper.join()
    time.sleep(0.05)  # a context switch: the kernel's account of this thread is brought up to date
    after = thread_cpu()
    me = str(threading.get_native_id())
    assert after[me][0] - before[me][0] >= 0.15e9
    assert str(helper.native_id) not in after
