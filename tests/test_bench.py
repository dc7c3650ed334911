"""bert.bench at a toy size: the command line, the step comparison and the profile run, and
their tables and JSON are well formed (no timing asserts)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bert.bench import cli, step
from bert.bench.batches import make_batch, num_scored
from bert.bench.sides import ours
from bert.bench.sizes import SIZES, Size, make_config
from bert.core.costs import matmul_flops

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--sizes", "micro", "--repeats", "2", "--warmup", "1", "--threads", "1"]


def run_bench(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "bert.bench", *FAST, *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_without_a_command_the_step_comparison_runs():
    args = cli.parse(["--sizes", "micro,small", "--no-memory"])
    assert (args.command, args.sizes, args.no_memory) == ("step", ["micro", "small"], True)
    assert cli.parse([]).sizes == cli.STEP_SIZES.split(",")


def test_every_command_parses_its_defaults_and_names_the_module_that_runs_it(monkeypatch):
    monkeypatch.chdir(ROOT)  # the stage's default parameters file
    monkeypatch.setattr("bert.bench.system.reference_available", lambda: True)
    for name, (module, _) in cli.COMMANDS.items():
        assert cli.parse([name]).command == name
        assert callable(importlib.import_module(module).run), module
    assert cli.parse(["processes"]).micro_batches == 2  # by default, --processes


@pytest.mark.parametrize(("argv", "message"), [
    (["--sizes", "micro,huge"], "unknown size(s) ['huge']: choose among default,"),
    (["profile", "--sizes", ""], "unknown size(s) []"),
    (["loop", "--micro-batches", "1,x"], "'1,x': give whole numbers, e.g. 1,2"),
    (["processes", "--processes", "3"], "--processes must be 2 or more and divide the batch"),
    (["step", "--profile"], "unrecognized arguments: --profile"),
])
def test_bad_options_are_refused_before_any_work(argv, message, capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.parse(argv)
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow  # the command, in a process of its own
def test_json_report_is_complete():
    report = json.loads(run_bench("--json", "--no-reference"))
    assert report["threads"] == 1 and report["reference"] is False
    assert "--no-reference" in report["reference_note"]
    (result,) = report["results"]
    assert result["size"] == "micro" and result["tokens_per_step"] == 2 * 8
    for kind in ("step", "forward"):
        stats = result["ours"][kind]
        assert stats["samples"] == 2
        assert 0 < stats["min_ms"] <= stats["median_ms"] <= stats["max_ms"]
    assert result["ours"]["step"]["tokens_per_s"] > 0
    assert result["matmul_peak_gflops"] > 0 and result["peak_share"] > 0
    assert result["flops"]["step"] == 3 * result["flops"]["forward"] > 0
    memory = result["memory"]["ours"]
    assert memory["step_peak_mib"] >= 0 and memory["method"] in ("VmHWM", "ru_maxrss")
    assert "transformers" not in result


@pytest.mark.slow  # measures, as a benchmark run does
def test_table_has_a_row_per_size_and_says_how_to_compare(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(step, "reference_available", lambda: False)  # as without torch
    cli.main(["step", *FAST, "--no-memory"])
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("BLAS: ") and "kernel" in lines[0]
    assert lines[0].endswith("; 1 compute thread")
    assert lines[2].startswith("| size | ours step ms | ours tok/s | ours fwd ms |")
    assert lines[4].startswith("| micro |")
    assert lines[2].count("|") == lines[4].count("|")
    assert "torch or transformers is not installed" in out and "[reference]" in out


def test_flop_count_of_one_layer_by_hand():
    size = Size(vocab_size=10, hidden_size=4, num_layers=1, num_heads=2,
                      intermediate_size=8, batch_size=1, seq_len=3, repeats=1, description="")
    # tokens 3: qkv 2*3*4*12 + out 2*3*4*4 + ffn 2*2*3*4*8, attention 2*2*(2 heads)*3*3*2,
    # MLM head at 1 position 2*4*(4 + 10), pooler + NSP 2*4*(4 + 2)
    forward = 288 + 96 + 384 + 144 + 112 + 48
    assert matmul_flops(make_config(size), size.batch_size, size.seq_len,
                        num_scored=1) == {"forward": forward, "step": 3 * forward}


def test_the_default_size_is_what_params_yaml_trains():
    from bert.workflow.params import Params

    size, params = SIZES["default"], Params()
    assert (size.vocab_size, size.hidden_size, size.num_layers, size.num_heads,
            size.intermediate_size, size.batch_size, size.seq_len) == (
        params.data.vocab_size, params.model.dim_model, params.model.num_layers,
        params.model.num_heads, params.model.dim_ff, params.data.batch_size,
        params.data.sequence_length)


def test_the_profile_counts_every_layer_call_and_its_elements():
    from bert.bench.passes import PRODUCTS, profile

    size = SIZES["micro"]  # 1 layer, hidden 16, 2 heads, intermediate 32, batch 2 x 8
    result = profile(ours(size).step, threads=1, steps=2, warmup=1)
    rows = result["rows"]
    tokens, H, F = size.batch_size * size.seq_len, size.hidden_size, size.intermediate_size
    # per step: LayerNorm after the embeddings, twice in the layer, once in the MLM head
    assert rows["LayerNorm forward"].calls == 4 and rows["LayerNorm backward"].calls == 4
    # GELU in the layer (tokens x F) and in the MLM head (its scored positions x H)
    gelu = rows["GELU forward with its derivative (erf)"]
    assert gelu.calls == 2 and (gelu.elements - tokens * F) % H == 0
    assert gelu.element_passes == 30 * gelu.elements  # the chain's declared passes
    # query/key/value, attention output, two feed-forward, MLM transform and decoder, pooler and
    # NSP classifier: 8 forward products, each with two in the backward
    assert rows[PRODUCTS].calls == 8 + 2 * 8
    # every product the step needs but attention's own (scores and context, inside its chains)
    attention = 3 * 2 * size.batch_size * size.seq_len ** 2 * H
    flops = matmul_flops(make_config(size), size.batch_size, size.seq_len,
                         num_scored(make_batch(size)))
    assert rows[PRODUCTS].multiply_adds == flops["step"] / 2 \
        - attention
    wrapped = result["wrapped_step_s"]
    assert all(row.seconds >= 0 for name, row in rows.items() if not name.startswith("other"))
    assert abs(sum(row.seconds for row in rows.values()) - wrapped) < 1e-9


def test_the_profile_of_micro_batches_on_threads_counts_every_thread_alike():
    from bert.bench.passes import profile
    from bert.engine import pool

    size, before = SIZES["small"], pool.threads()  # micro-batches long enough to overlap
    runs = {}
    try:
        for threads in (1, 2):
            pool.set_threads(threads)
            result = profile(ours(size, micro_batches=2).step, threads=threads, steps=5,
                             warmup=1, task_threads=threads)
            runs[threads] = result
    finally:
        pool.set_threads(before)
    one, two = ({name: row for name, row in runs[n]["rows"].items()
                 if not name.startswith("other")} for n in (1, 2))
    assert one.keys() == two.keys()
    for name in one:  # the same calls and work whichever thread made them
        assert (two[name].calls, two[name].elements, two[name].multiply_adds) == (
            one[name].calls, one[name].elements, one[name].multiply_adds), name
    assert one["LayerNorm forward"].calls == 2 * 6  # per micro-batch: 2 layers, 2 + 2 more
    assert all(row.seconds >= 0 for row in two.values())
    # the rows, other included, add up to the time of the two threads
    assert abs(sum(row.seconds for row in runs[2]["rows"].values())
               - 2 * runs[2]["wrapped_step_s"]) < 1e-9


def test_a_call_on_another_thread_is_no_callee_of_this_threads_call():
    import threading
    import time

    from bert.bench.passes import Recorder

    recorder, entered, finished = Recorder(), threading.Event(), threading.Event()
    outer = recorder.wrap("outer", lambda: (entered.set(), finished.wait(10)))
    other = recorder.wrap("other thread's", lambda: time.sleep(0.05))
    first = threading.Thread(target=outer)
    first.start()
    entered.wait(10)
    second = threading.Thread(target=lambda: (other(), finished.set()))
    second.start()
    first.join()
    second.join()
    # "outer" lasted while the other thread's call ran: all of it is its own time
    assert recorder.rows["outer"].seconds >= 0.05
    assert recorder.rows["other thread's"].seconds >= 0.05


def test_the_profile_table_lists_the_largest_work_first(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    cli.main(["profile", *FAST])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("BLAS: ")
    assert lines[2].startswith("micro: step ") and "1 thread)" in lines[2]
    assert lines[4].startswith("| work | ms per step |")
    times = [float(line.split("|")[2]) for line in lines[6:]]
    assert len(times) >= 15 and times == sorted(times, reverse=True)
