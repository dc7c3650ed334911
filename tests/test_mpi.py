"""Data-parallel training over MPI, end to end through ``doit`` in a temporary folder: 2 ranks
(of one or more threads each) end bit-identical to 1 process, runs switch process counts between
epochs, survive a kill of the whole job and a Ctrl-C, and a rank that raises takes the job down
at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bert.parallel.mpi import mpi_available
from bert.workflow.launch import find_launcher
from tests.test_workflow import wait_for_mid_epoch_checkpoint
from tests.workflow import (
    assert_same_run,
    doit,
    make_project,
    run_dir,
    stages_ran,
    tiny,
    write_params,
)

pytestmark = pytest.mark.skipif(not mpi_available(),
                                reason='needs the mpi extra: pip install -e ".[mpi]"')

# Dropout on, so that the dropout streams matter; 4 micro-batches of 2 examples.
DROPOUT = {"hidden_dropout": 0.1, "attention_dropout": 0.1}
SHORT = tiny(model=DROPOUT, training={"micro_batches": 4})
LONG = tiny(model=DROPOUT, data={"num_train_batches": 60},
            training={"micro_batches": 4, "checkpoint_every_steps": 20, "keep_checkpoints": 3})
COUNTS = ("processes", "mpiexec", "threads")  # how a run was executed, not what it computed


def on(processes: int, mapping: dict, **training) -> dict:
    """``mapping`` run on ``processes`` processes, with other training keys if given."""
    return {**mapping, "training": {**mapping["training"], "processes": processes, **training}}


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> Path:
    """SHORT on one process: the reference."""
    folder = make_project(tmp_path_factory.mktemp("one"), on(1, SHORT))
    doit(folder, "report")
    return folder


@pytest.fixture(scope="module")
def one_process_long(tmp_path_factory) -> Path:
    folder = make_project(tmp_path_factory.mktemp("one-long"), on(1, LONG))
    doit(folder, "report")
    return folder


@pytest.mark.slow
def test_two_ranks_end_bit_identical_to_one_process(tmp_path, one_process):
    folder = make_project(tmp_path / "project", on(2, SHORT))
    result = doit(folder, "report")
    assert_same_run(run_dir(folder), run_dir(one_process), COUNTS)
    training = json.loads((run_dir(folder) / "results.json").read_text())["training"]
    assert (training["processes"], training["micro_batches"]) == (2, 4)
    for text in (result.stderr, (run_dir(folder) / "log.txt").read_text()):
        assert text.count("training from the initial weights") == 1  # rank 0 alone logs
        assert text.count("rank 0 of 2; 1 compute thread(s) per rank") == 1


@pytest.mark.slow
@pytest.mark.parametrize(("micro_batches", "rank_threads", "one_process_threads"),
                         [(4, 2, 1), (2, 1, 3)], ids=["4-on-2x2-vs-1x1", "2-on-2x1-vs-1x3"])
def test_ranks_times_threads_end_bit_identical_to_one_process(
        tmp_path, micro_batches, rank_threads, one_process_threads):
    """Each rank runs its share of the micro-batches on its own threads (2 micro-batches on 2
    threads per rank), or one micro-batch per rank against one process running both on 3
    threads: the same bits either way."""
    short = tiny(model=DROPOUT, training={"micro_batches": micro_batches})
    one = make_project(tmp_path / "one", on(1, short, threads=one_process_threads))
    doit(one, "report")
    ranks = make_project(tmp_path / "ranks", on(2, short, threads=rank_threads))
    result = doit(ranks, "report")
    assert f"rank 0 of 2; {rank_threads} compute thread(s) per rank" in result.stderr
    assert_same_run(run_dir(ranks), run_dir(one), COUNTS)


@pytest.mark.slow
def test_two_processes_then_one_ends_as_one_straight(tmp_path, one_process):
    folder = make_project(tmp_path / "project", on(2, SHORT, epochs=1))
    doit(folder, "train")
    write_params(folder, on(1, SHORT, epochs=2))
    result = doit(folder, "report")
    assert "resuming from step 6" in result.stderr
    assert_same_run(run_dir(folder), run_dir(one_process), COUNTS)


def processes_in(folder: Path) -> list[int]:
    """The processes whose working folder is ``folder`` (Linux)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cwd").resolve() == folder.resolve():
                found.append(int(entry.name))
        except OSError:  # gone, or not ours to read
            continue
    return found


def assert_no_rank_left(folder: Path) -> None:
    deadline = time.monotonic() + 10
    while processes_in(folder) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not processes_in(folder), "a rank outlived its job"


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "Ctrl-C"])
def test_an_interrupted_job_resumes_bit_identically(tmp_path, one_process_long, stop):
    folder = make_project(tmp_path / "project", on(2, LONG))
    doit(folder, "data", "init")
    process = subprocess.Popen([sys.executable, "-m", "doit", "train"], cwd=folder,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    wait_for_mid_epoch_checkpoint(folder, process)
    os.killpg(process.pid, stop)  # doit, mpiexec and both ranks
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0
    assert_no_rank_left(folder)
    assert not (run_dir(folder) / "model.h5").exists()
    if stop == signal.SIGINT:
        assert not list(run_dir(folder).glob("checkpoints/*/.*.tmp"))
        assert stderr.count("checkpoint saved; run `doit train` to resume") == 1
        assert "Traceback" not in stderr
    result = doit(folder, "report")
    assert "resuming from step" in result.stderr
    assert "skipping checkpoint" not in result.stderr  # none was half-written
    assert_same_run(run_dir(folder), run_dir(one_process_long), COUNTS)


@pytest.mark.slow
def test_mpiexec_forwards_ctrl_c_and_the_job_exits_130(tmp_path):
    folder = make_project(tmp_path / "project", on(2, LONG))
    doit(folder, "data", "init")
    command = [*find_launcher("mpiexec"), "-n", "2", sys.executable, "-m", "bert", "train",
               "--params", "params.yaml"]
    process = subprocess.Popen(command, cwd=folder, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    wait_for_mid_epoch_checkpoint(folder, process)
    process.send_signal(signal.SIGINT)  # to mpiexec alone, which passes it on to the ranks
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert stderr.count("checkpoint saved; run `doit train` to resume") == 1
    step = int(stderr.split("interrupted at step ")[1].split(";")[0])
    assert list(run_dir(folder).glob(f"checkpoints/*/step-{step:09d}.h5"))
    assert_no_rank_left(folder)


# Makes rank 1 raise, from outside the package: Python imports a ``sitecustomize`` module found
# on PYTHONPATH at startup. In its sixth step (after the checkpoint of step 4), or while it sets
# up its logging, before training (the job must stop too: a rank that merely exited would leave
# the other waiting forever).
RAISE_ON_RANK_1 = {
    "in a step": """
import os

if os.environ.get("PMI_RANK") == "1":
    import bert.workflow.train as train

    original, calls = train.take_step, []

    def take_step(run):
        calls.append(run.state.step)
        if len(calls) == 6:
            raise RuntimeError("injected failure")
        return original(run)

    train.take_step = take_step
""",
    "before training": """
import os

if os.environ.get("PMI_RANK") == "1":
    import bert.workflow.logs as logs

    def setup_logging(params, path):
        raise RuntimeError("injected failure")

    logs.setup_logging = setup_logging
""",
}


@pytest.mark.slow
@pytest.mark.parametrize("where", list(RAISE_ON_RANK_1))
def test_a_rank_that_raises_stops_the_job_at_once(tmp_path, one_process, where):
    folder = make_project(tmp_path / "project", on(2, SHORT))
    doit(folder, "data", "init")
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(RAISE_ON_RANK_1[where])
    started = time.monotonic()
    failed = subprocess.run([sys.executable, "-m", "doit", "train"], cwd=folder,
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(inject)})
    assert time.monotonic() - started < 60
    assert failed.returncode != 0
    assert_no_rank_left(folder)
    assert "error: rank 1 of 2 failed: RuntimeError: injected failure" in failed.stderr
    assert not (run_dir(folder) / "model.h5").exists()
    result = doit(folder, "report")
    if where == "in a step":
        assert "resuming from step 4" in result.stderr
    assert "skipping checkpoint" not in result.stderr  # none was half-written
    assert_same_run(run_dir(folder), run_dir(one_process), COUNTS)


@pytest.mark.parametrize(("training", "message"), [
    ({"processes": 2, "micro_batches": 2, "mpiexec": "no-such-launcher -v"},
     "params.yaml: training.mpiexec is 'no-such-launcher -v': no-such-launcher is not found"),
    ({"processes": 2, "micro_batches": 3}, "training.micro_batches is 3, not a multiple of "
     "training.processes (2)"),
    ({"processes": 0}, "training.processes is 0, outside [1, inf]"),
    ({"micro_batches": 3}, "data.batch_size is 8, not a multiple of training.micro_batches (3)"),
    ({"processes": 2, "micro_batches": 2, "mpiexec": "mpiexec 'unterminated"},
     "training.mpiexec is \"mpiexec 'unterminated\", which cannot be split into words (No "
     "closing quotation); fix its quotes"),
])
def test_bad_launch_parameters_give_one_line_and_write_nothing(tmp_path, training, message):
    folder = make_project(tmp_path / "project", tiny(training=training))
    result = doit(folder, check=False)
    assert result.returncode != 0
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (folder / "data").exists() and not (folder / "artifacts").exists()


def test_a_rank_program_outside_a_job_of_that_size_says_how_to_launch(tmp_path):
    folder = make_project(tmp_path / "project", tiny(training={"processes": 2, "micro_batches": 2}))
    result = subprocess.run([sys.executable, "-m", "bert", "train"], cwd=folder,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "training.processes is 2, but this job has 1 process(es): run `doit train`" in (
        result.stderr)


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["true", "echo"])
def test_a_launcher_that_runs_no_rank_fails_the_train_stage(tmp_path, launcher):
    folder = make_project(tmp_path / "project",
                          tiny(training={"processes": 2, "micro_batches": 2, "mpiexec": launcher}))
    result = doit(folder, "train", check=False)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert (f"error: training.mpiexec is '{launcher}': it exited 0, but no rank trained "
            "(artifacts/runs/params/model.h5 was not written; the launcher's output, if any, is "
            "just above); set training.mpiexec to an MPI launcher, e.g. mpiexec") in result.stderr
    assert not (run_dir(folder) / "model.h5").exists()
    assert "train" in stages_ran(doit(folder, "train", check=False))  # not taken for done


@pytest.mark.slow
def test_an_mpi_library_that_cannot_be_loaded_is_one_line_per_rank(tmp_path):
    folder = make_project(tmp_path / "project", on(2, SHORT))
    doit(folder, "data", "init")
    result = subprocess.run([sys.executable, "-m", "doit", "train"], cwd=folder,
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "MPI4PY_LIBMPI": "/nonexistent/libmpi.so"})
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    errors = sorted(line for line in result.stderr.splitlines() if line.startswith("error: "))
    assert errors == [f"error: rank {rank} of 2: the MPI library cannot be loaded (cannot load "
                      "MPI library; /nonexistent/libmpi.so: cannot open shared object file: No "
                      "such file or directory); install it with pip install -e \".[mpi]\", or "
                      "point MPI4PY_LIBMPI at the library mpi4py was built for"
                      for rank in (0, 1)]
    assert_no_rank_left(folder)
