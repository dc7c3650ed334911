"""Live metrics (bert.workflow.live): a line per logged step and per epoch, each step once even
after a kill and a resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from bert.data.datasets import make_datasets
from bert.workflow.init import initialize
from bert.workflow.layout import Layout
from bert.workflow.live import LiveMetrics, read_lines
from bert.workflow.train import train
from tests.test_workflow import make_project
from tests.workflow import tiny, tiny_params

LOSSES = {"total": 1.5, "mlm": 1.25, "nsp": float("nan")}


def test_a_line_every_n_steps_and_one_per_epoch(tmp_path):
    path = tmp_path / "live.jsonl"
    live = LiveMetrics(path, 0, every=2, tokens_per_step=64)
    for step in range(1, 6):
        live.step(step, 1, LOSSES, 0.01 * step, 0.5)
    live.epoch({"epoch": 1, "step": 5, "test_mlm_loss": 2.0})
    live.close()
    lines = read_lines(path)
    assert [(line["kind"], line["step"]) for line in lines] == [
        ("step", 2), ("step", 4), ("epoch", 5)]
    assert lines[0]["loss_mlm"] == 1.25 and lines[0]["loss_nsp"] is None  # NaN is null
    assert lines[1]["learning_rate"] == 0.04 and lines[1]["tokens_per_second"] > 0
    assert lines[2]["test_mlm_loss"] == 2.0
    assert all(json.loads(text) for text in path.read_text().splitlines())  # strict JSON


def test_resuming_drops_the_later_steps_and_a_half_written_line(tmp_path):
    path = tmp_path / "live.jsonl"
    live = LiveMetrics(path, 0, every=1, tokens_per_step=1)
    for step in range(1, 8):
        live.step(step, 1, LOSSES, 0.1, 0.5)
    live.close()
    with open(path, "a") as file:
        file.write('{"kind": "step", "step": 8, "loss')  # a writer killed mid-line
    live = LiveMetrics(path, 4, every=1, tokens_per_step=1)  # the checkpoint of step 4
    assert [line["step"] for line in read_lines(path)] == [1, 2, 3, 4]
    for step in range(5, 9):
        live.step(step, 1, LOSSES, 0.1, 0.5)
    live.close()
    assert [line["step"] for line in read_lines(path)] == list(range(1, 9))
    assert LiveMetrics(path, 0, every=1, tokens_per_step=1).close() is None  # a fresh start
    assert read_lines(path) == []


def test_a_training_run_writes_its_live_metrics(tmp_path):
    layout = Layout(tmp_path)
    params = tiny_params(logging={"live_every_steps": 1})
    make_datasets(params.data, layout.data_dir)
    initialize(params, layout)
    state = train(params, layout, progress=False)
    lines = read_lines(layout.live_metrics)
    steps = [line for line in lines if line["kind"] == "step"]
    assert [line["step"] for line in steps] == list(range(1, state.step + 1))
    assert [line["loss_total"] for line in steps] == state.history["loss_total"]
    epochs = [line for line in lines if line["kind"] == "epoch"]
    assert [line["epoch"] for line in epochs] == [1, 2]
    assert epochs[-1]["test_mlm_loss"] == state.epoch_history[-1]["test_mlm_loss"]


@pytest.mark.slow
def test_a_run_killed_mid_epoch_and_resumed_has_each_step_once(tmp_path):
    """SIGKILL of the train stage mid-epoch, past a checkpoint; the resumed run's file holds
    steps 1..N once each, equal to the history of the finished run."""
    mapping = tiny(logging={"live_every_steps": 1},
                   data={"num_train_batches": 40},
                   training={"epochs": 2, "checkpoint_every_steps": 7})
    make_project(tmp_path, mapping)
    command = [sys.executable, "-m", "doit", "train"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, cwd=tmp_path, env=env, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    live = Layout(tmp_path).live_metrics
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # into the first epoch, past a checkpoint
        if any(line["step"] >= 17 for line in read_lines(live)):
            break
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert max(line["step"] for line in read_lines(live)) < 80, "it finished before the kill"
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    steps = [line["step"] for line in read_lines(live) if line["kind"] == "step"]
    assert steps == list(range(1, 81))
    history = json.loads(Layout(tmp_path).history.read_text())
    resumed = [line["loss_total"] for line in read_lines(live) if line["kind"] == "step"]
    assert resumed == history["steps"]["loss_total"]
