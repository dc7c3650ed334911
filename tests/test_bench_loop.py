"""``python -m bert.bench loop``: a smoke run at a toy size (no timing asserts)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bert.bench.system import reference_available

pytestmark = pytest.mark.skipif(not reference_available(),
                                reason="needs the reference extra: pip install -e '.[reference]'")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bert.bench", "loop", "--sizes", "micro",
                           "--repeats", "2", "--warmup", "1", *args], capture_output=True,
                          text=True, timeout=300)


def test_both_sides_are_timed_for_each_micro_batch_count():
    done = run("--micro-batches", "1,2", "--threads", "2", "--json")
    assert done.returncode == 0, done.stderr
    (result,) = json.loads(done.stdout)
    assert result["size"] == "micro" and result["threads"] == 2
    assert set(result["ours"]) == {"ours M=1", "ours M=2"}
    for side in (*result["ours"].values(), result["torch"]):
        for kind in ("step", "fwd_bwd"):
            assert side[kind]["samples"] == 2
            assert 0 < side[kind]["min_ms"] <= side[kind]["median_ms"] <= side[kind]["max_ms"]
    speedup = result["speedup"]["ours M=2"]["step"]
    assert speedup == pytest.approx(result["torch"]["step"]["median_ms"]
                                    / result["ours"]["ours M=2"]["step"]["median_ms"])


def test_the_table_has_a_row_per_micro_batch_count():
    done = run("--micro-batches", "1,2")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("| size | micro-batches | ours step ms | torch step ms |")
    assert lines[2].startswith("| micro | 1 |") and lines[3].startswith("| micro | 2 |")


def test_a_micro_batch_count_that_does_not_divide_the_batch_is_refused():
    done = run("--micro-batches", "3")  # the micro size has batches of 2
    assert done.returncode == 2
    assert "--micro-batches [3] do not divide the batch of micro (2)" in done.stderr
