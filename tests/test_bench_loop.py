"""``python -m bert.bench loop``: runs at a toy size (no timing asserts).

The fast tests run the command in this process, with the worker's timing done here too; the slow
one runs it as a user does, its worker a process of its own.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bert.bench import clock, loop
from bert.bench.cli import main
from bert.bench.sizes import SIZES
from bert.bench.system import reference_available

pytestmark = pytest.mark.skipif(not reference_available(),
                                reason="needs the reference extra: pip install -e '.[reference]'")

TOY = ("loop", "--sizes", "micro", "--repeats", "2", "--warmup", "1")


@pytest.fixture
def worker_here(monkeypatch):
    """The worker's timing run in this process (what ``--worker`` prints, read back as JSON),
    without the pauses between blocks (no threads of another process to wait for)."""
    def run_worker(command, threads, *args):
        options = dict(zip(args[::2], args[1::2], strict=True))
        assert command == "loop" and options["--size"] == "micro"
        result = loop.time_worker(SIZES["micro"], threads,
                                  [int(m) for m in options["--micro-batches"].split(",")],
                                  float(options["--dropout"]), int(options["--repeats"]),
                                  int(options["--warmup"]))
        return json.loads(json.dumps(result))

    monkeypatch.setattr(loop, "run_worker", run_worker)
    monkeypatch.setattr(clock, "settle", lambda seconds=0.0: None)


def check_json(result: dict, threads: int) -> None:
    assert result["size"] == "micro" and result["threads"] == threads
    assert set(result["ours"]) == {"ours M=1", "ours M=2"}
    for side in (*result["ours"].values(), result["torch"]):
        for kind in ("step", "fwd_bwd"):
            assert side[kind]["samples"] == 2
            assert 0 < side[kind]["min_ms"] <= side[kind]["median_ms"] <= side[kind]["max_ms"]
    speedup = result["speedup"]["ours M=2"]["step"]
    assert speedup == pytest.approx(result["torch"]["step"]["median_ms"]
                                    / result["ours"]["ours M=2"]["step"]["median_ms"])


def test_both_sides_are_timed_for_each_micro_batch_count(worker_here, capsys):
    main([*TOY, "--micro-batches", "1,2", "--threads", "1", "--json"])
    (result,) = json.loads(capsys.readouterr().out)
    check_json(result, threads=1)


def test_the_table_has_a_row_per_micro_batch_count(worker_here, capsys):
    main([*TOY, "--micro-batches", "1,2", "--threads", "1"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| size | micro-batches | ours step ms | torch step ms |")
    assert lines[2].startswith("| micro | 1 |") and lines[3].startswith("| micro | 2 |")


def test_a_micro_batch_count_that_does_not_divide_the_batch_is_refused(capsys):
    with pytest.raises(SystemExit) as stopped:
        main([*TOY, "--micro-batches", "3"])  # the micro size has batches of 2
    assert stopped.value.code == 2
    assert "--micro-batches [3] do not divide the batch of micro (2)" in capsys.readouterr().err


@pytest.mark.slow
def test_the_command_times_both_sides_in_a_worker_process():
    done = subprocess.run([sys.executable, "-m", "bert.bench", *TOY, "--micro-batches", "1,2",
                           "--threads", "2", "--json"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    (result,) = json.loads(done.stdout)
    check_json(result, threads=2)
