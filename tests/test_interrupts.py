"""Ctrl-C, SIGTERM and a killed ``doit``: doit stops wherever it is with exit code 130 (143),
a stage in progress stops cleanly, no stage outlives doit unnoticed, and none runs beside
another writer of the same files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bert.parallel.mpi import mpi_available
from bert.workflow import interrupts
from bert.workflow.stage_action import _prctl, end_with_parent
from tests.hooks import SLOW_DATA, SLOW_START, SLOW_TRAIN, hook
from tests.test_mpi import processes_in
from tests.workflow import (
    assert_same_run,
    doit,
    layout_of,
    make_project,
    run_dir,
    stages_ran,
    tiny,
    tiny_params,
)

# 2 epochs of 60 steps, a checkpoint every 20
RUN = tiny(data={"num_train_batches": 60},
           training={"epochs": 2, "checkpoint_every_steps": 20, "keep_checkpoints": 3})
MPI_RUN = {**RUN, "training": {**RUN["training"], "micro_batches": 2}}

def start(folder: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    """``doit *args`` in its own session (its process group: as a terminal runs it)."""
    return subprocess.Popen([sys.executable, "-m", "doit", *args], cwd=folder, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def checkpoint_steps(folder: Path) -> list[int]:
    return sorted(int(p.stem.split("-")[1])
                  for p in folder.glob("artifacts/runs/*/checkpoints/*/step-*.h5"))


def wait_for(condition, process: subprocess.Popen | None = None, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process is None or process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def wait_no_process_in(folder: Path) -> None:
    wait_for(lambda: not processes_in(folder), timeout=60)


def refused_while_busy(folder: Path, holder: str) -> None:
    """A second doit of the same run and ``python -m bert train`` are both refused, naming
    ``holder``."""
    for command in (["-m", "doit", "train"], ["-m", "bert", "train"]):
        result = subprocess.run([sys.executable, *command], cwd=folder, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
        assert "the run params is in use by another workflow process" in result.stderr, (
            result.stderr)
        assert holder in result.stderr, result.stderr


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Path:
    """RUN without interruption: the reference."""
    folder = make_project(tmp_path_factory.mktemp("straight"), RUN)
    doit(folder, "report")
    return folder


# --- doit's handlers, in this process -----------------------------------------------------------

class Process:
    """Stands for a stage's process: records the signals passed on to it."""

    def __init__(self) -> None:
        self.sent: list[int] = []
        self.returncode = 130

    def send_signal(self, signum: int) -> None:
        self.sent.append(signum)


def test_with_no_stage_running_doit_stops_at_once(capsys):
    for signum, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        with pytest.raises(SystemExit) as stop:
            interrupts._stop_or_remember(signum, None)
        assert stop.value.code == code
    err = capsys.readouterr().err
    assert "interrupted (Ctrl-C) while no stage was running; the stages that finished are kept" in (
        err)


def test_during_a_stage_doit_waits_for_it_then_stops():
    process = Process()
    with pytest.raises(SystemExit) as stop, interrupts.running_stage() as stage:
        interrupts._stop_or_remember(signal.SIGINT, None)  # Ctrl-C: the stage got it too
        stage.started(process)
        interrupts._stop_or_remember(signal.SIGTERM, None)  # to doit alone: passed on
    assert stop.value.code == 130 and process.sent == [signal.SIGTERM]
    early = Process()
    with pytest.raises(SystemExit) as stop, interrupts.running_stage() as stage:
        interrupts._stop_or_remember(signal.SIGTERM, None)  # while the stage starts
        stage.started(early)
    assert stop.value.code == 143 and early.sent == [signal.SIGTERM]
    with interrupts.running_stage() as stage:  # no signal: doit goes on
        stage.started(Process())


def test_a_second_ctrl_c_says_which_checkpoint_is_intact(project, monkeypatch):
    from bert.workflow import train as train_module
    from bert.workflow.train import train

    calls = []

    def interrupted_step(run):
        calls.append(run.state.step)
        raise KeyboardInterrupt  # what the second Ctrl-C raises in the middle of a step

    monkeypatch.setattr(train_module, "take_step", interrupted_step)
    three = tiny_params(training={"epochs": 3})
    with pytest.raises(interrupts.TrainingInterrupted) as info:
        train(three, layout_of(project, three), progress=False)
    assert calls == [12] and not info.value.saved
    message = interrupts.interrupted_message(info.value)
    assert message == ("interrupted; the newest checkpoint (step 12) is intact; run `doit "
                       "train` to resume from it")
    assert "nothing was written" not in interrupts.interrupted_message(KeyboardInterrupt())


# --- a stage ends with doit ---------------------------------------------------------------------

@pytest.mark.slow
def test_a_stage_whose_doit_is_gone_before_it_starts_never_runs(tmp_path):
    marker = tmp_path / "ran"
    child = subprocess.run([sys.executable, "-c", f"open({str(marker)!r}, 'w')"],
                           preexec_fn=lambda: end_with_parent(os.getpid() + 10**6, _prctl()))
    assert child.returncode == 143 and not marker.exists()


# A parent that starts a child tied to it, as doit starts a stage; the child says "SIGTERM" when
# it gets one.
PARENT = r"""
import os, subprocess, sys, time
from bert.workflow.stage_action import _prctl, end_with_parent

CHILD = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *a: sys.exit(print('SIGTERM', flush=True)))\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)
me = os.getpid()
subprocess.Popen([sys.executable, "-c", CHILD], preexec_fn=lambda: end_with_parent(me, _prctl()))
time.sleep(60)
"""


@pytest.mark.slow
@pytest.mark.skipif(_prctl() is None, reason="PR_SET_PDEATHSIG is Linux's")
def test_a_stage_gets_sigterm_when_its_parent_is_killed():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    assert parent.stdout.readline().strip() == "ready"
    parent.kill()  # SIGKILL: the parent cannot pass anything on
    parent.wait()
    assert parent.stdout.readline().strip() == "SIGTERM"  # the child's, on the same pipe


# --- Ctrl-C anywhere ----------------------------------------------------------------------------

PAUSE_AFTER_DATA = """

import time
from pathlib import Path

import doit.runner

_process_task_result = doit.runner.Runner.process_task_result


def _pause_after_data(self, node, base_fail):
    _process_task_result(self, node, base_fail)
    if node.task.name.startswith("data:"):
        Path("between").touch()
        time.sleep(60)


doit.runner.Runner.process_task_result = _pause_after_data
"""


@pytest.mark.slow
def test_ctrl_c_between_two_stages_stops_doit(tmp_path):
    folder = make_project(tmp_path / "project", tiny())
    dodo = folder / "dodo.py"
    dodo.write_text(dodo.read_text() + PAUSE_AFTER_DATA)  # doit waits after data
    process = start(folder)
    wait_for(lambda: (folder / "between").exists(), process)
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in err
    assert stages_ran(subprocess.CompletedProcess([], 0, out)) == ["data"]
    assert "interrupted (Ctrl-C) while no stage was running" in err
    (folder / "between").unlink()
    dodo.write_text(dodo.read_text().replace(PAUSE_AFTER_DATA, ""))
    assert stages_ran(doit(folder))[0] == "init"  # data was recorded as done


@pytest.mark.slow
def test_ctrl_c_while_a_stage_starts_stops_it_cleanly(tmp_path):
    folder = make_project(tmp_path / "project", tiny())
    doit(folder, "data")
    process = start(folder, "init", env=hook(tmp_path, SLOW_START))
    init = layout_of(folder, tiny()).init_weights
    wait_for(lambda: (folder / "starting").exists(), process)
    os.killpg(process.pid, signal.SIGINT)  # while Python starts the stage
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in err, err
    assert "interrupted; no partly written file was left" in err
    assert not init.exists() and not list(init.parent.glob(".*.tmp"))


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["Ctrl-C", "SIGTERM"])
def test_a_signal_during_training_stops_it_with_a_checkpoint_and_doit_after_it(
        tmp_path, straight, stop):
    folder = make_project(tmp_path / "project", RUN)
    doit(folder, "data", "init")
    process = start(folder, "report", env=hook(tmp_path, SLOW_TRAIN))
    wait_for(lambda: checkpoint_steps(folder), process)
    if stop == signal.SIGINT:
        os.killpg(process.pid, stop)  # a terminal's Ctrl-C: every process of the group
    else:
        process.send_signal(stop)  # `kill <doit>`: doit alone, which passes it on
    _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + stop and "Traceback" not in err, err
    assert "checkpoint saved; run `doit train` to resume" in err
    wait_no_process_in(folder)
    assert not (run_dir(folder) / "model.h5").exists()
    assert "resuming from step" in doit(folder, "report").stderr
    assert_same_run(run_dir(folder), run_dir(straight))


# --- a killed doit: its stage stops, and keeps every other writer out until it has -------------

@pytest.mark.slow
def test_a_stage_left_by_a_killed_doit_stops_and_keeps_others_out_meanwhile(tmp_path, straight):
    folder = make_project(tmp_path / "project", RUN)
    doit(folder, "data", "init")
    process = start(folder, "report", env=hook(tmp_path, SLOW_TRAIN))
    wait_for(lambda: checkpoint_steps(folder), process)
    (folder / "slow").touch()  # the stage, once it stops, waits until this is removed
    stage = [pid for pid in processes_in(folder) if pid != process.pid]
    process.kill()  # SIGKILL to doit alone: the train stage gets SIGTERM, and stops
    refused_while_busy(folder, f"pid {stage[0]}: python -m bert train")
    (folder / "slow").unlink()
    _, err = process.communicate(timeout=60)  # the stage's output comes on doit's pipes
    assert "checkpoint saved; run `doit train` to resume" in err and "Traceback" not in err
    wait_no_process_in(folder)
    result = doit(folder, "report")
    assert "resuming from step" in result.stderr
    assert_same_run(run_dir(folder), run_dir(straight))


def mpi_run_training(tmp_path: Path) -> tuple[Path, Path, subprocess.Popen]:
    """MPI_RUN made on one process (the reference), and the same on 2 ranks started by a doit
    that is now training, slowly, past its first checkpoint: (reference, project, doit)."""
    one = make_project(tmp_path / "one", MPI_RUN)
    doit(one, "report")
    two = {**MPI_RUN, "training": {**MPI_RUN["training"], "processes": 2}}
    folder = make_project(tmp_path / "project", two)
    doit(folder, "data", "init")
    process = start(folder, "report", env=hook(tmp_path, SLOW_TRAIN))
    wait_for(lambda: checkpoint_steps(folder), process)
    return one, folder, process


@pytest.mark.slow
@pytest.mark.skipif(not mpi_available(), reason='needs the mpi extra: pip install -e ".[mpi]"')
@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_ranks_of_a_stopped_doit_stop_together_and_keep_others_out_meanwhile(tmp_path, stop):
    one, folder, process = mpi_run_training(tmp_path)
    (folder / "slow").touch()
    # SIGKILL: mpiexec gets SIGTERM as doit ends; SIGTERM: doit passes it on and waits. Either
    # way mpiexec passes it on to the ranks, and they stop together after the same step.
    process.send_signal(stop)
    refused_while_busy(folder, "python -m bert train")
    (folder / "slow").unlink()
    _, err = process.communicate(timeout=60)
    assert process.returncode == (-signal.SIGKILL if stop == signal.SIGKILL else 143)
    assert err.count("checkpoint saved; run `doit train` to resume") == 1, err
    assert "Traceback" not in err
    wait_no_process_in(folder)
    (folder / "params.yaml").write_text((one / "params.yaml").read_text())  # on 1 process
    assert "resuming from step" in doit(folder, "report").stderr
    assert_same_run(run_dir(folder), run_dir(one))


# --- more that a careful user tries -------------------------------------------------------------

@pytest.mark.slow
def test_a_data_stage_left_by_a_killed_doit_stops_without_a_partial_file(tmp_path):
    folder = make_project(tmp_path / "project", tiny())
    process = start(folder, "data", env=hook(tmp_path, SLOW_DATA))
    wait_for(lambda: (folder / "writing").exists(), process)
    process.kill()
    _, err = process.communicate(timeout=60)  # the stage's output, on doit's pipes
    assert "interrupted; no partly written file was left; run `doit` to go on" in err
    assert "Traceback" not in err
    wait_no_process_in(folder)
    data = layout_of(folder, tiny()).data_dir
    assert not (data / "train.h5").exists() and not list(data.glob(".*.tmp"))
    assert stages_ran(doit(folder, "data")) == ["data"]


@pytest.mark.slow
def test_a_stage_whose_lock_file_another_workflow_took_stops_with_a_checkpoint(tmp_path):
    from tests.test_lock import start_holder, stop, wait_held

    folder = make_project(tmp_path / "project", RUN)
    doit(folder, "data", "init")
    stage = subprocess.Popen([sys.executable, "-m", "bert", "train"], cwd=folder,
                             env=hook(tmp_path, SLOW_TRAIN), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    wait_for(lambda: checkpoint_steps(folder), stage)
    lock = layout_of(folder, RUN).run_lock
    lock.unlink()  # "a stale lock file", removed by hand
    holder = start_holder(folder, lock=lock)  # and a second workflow takes the new one
    try:
        wait_held(holder)
        _, err = stage.communicate(timeout=60)
    finally:
        stop(holder)
    assert stage.returncode == 130 and "Traceback" not in err
    assert ("error: the lock file was removed or replaced while this stage ran: the run params "
            f"is in use by another workflow process (pid {holder.pid}") in err
    assert "checkpoint saved; run `doit train` to resume" in err


@pytest.mark.slow
@pytest.mark.skipif(not mpi_available(), reason='needs the mpi extra: pip install -e ".[mpi]"')
def test_a_killed_launcher_takes_its_ranks_and_doit_says_so(tmp_path):
    one, folder, process = mpi_run_training(tmp_path)
    launcher = next(pid for pid in processes_in(folder)
                    if open(f"/proc/{pid}/comm").read().strip() == "mpiexec")
    os.kill(launcher, signal.SIGKILL)
    out, err = process.communicate(timeout=60)
    assert process.returncode != 0 and "Traceback" not in err
    assert "TaskFailed - taskid:train" in out or "TaskError - taskid:train" in out
    wait_no_process_in(folder)
    (folder / "params.yaml").write_text((one / "params.yaml").read_text())
    assert "resuming from step" in doit(folder, "report").stderr
    assert_same_run(run_dir(folder), run_dir(one))
