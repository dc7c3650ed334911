"""End to end: ``doit`` driving the whole workflow in a temporary project folder."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from bert.storage import h5io
from bert.workflow.layout import Layout
from bert.workflow.tasks import plots_available
from tests.workflow import tiny, write_params

pytestmark = pytest.mark.slow  # doit end to end
ROOT = Path(__file__).resolve().parents[1]
STAGES = ("data", "init", "train", "evaluate", "report")
# The pictures, redrawn whenever the run changes. Without matplotlib a single ``plots`` task
# says so on the first run and is then up to date.
PICTURES = ("plots:curves", "plots:attention", "plots:predictions") if plots_available() else ()
FIRST_RUN = (*STAGES, *(PICTURES or ("plots",)))
TIMING = ("seconds", "tokens_per_second")


def make_project(folder: Path, mapping: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "dodo.py", folder / "dodo.py")
    write_params(folder, mapping)
    return folder


def doit(folder: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "doit", *args], cwd=folder,
                            capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def ran(result: subprocess.CompletedProcess) -> list[str]:
    """The tasks doit executed (it prints ``.  name`` for those, ``-- name`` for skipped)."""
    return [line[3:].strip() for line in result.stdout.splitlines() if line.startswith(".  ")]


def weights(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        return {name: f[name][()] for name in f if isinstance(f[name], h5py.Dataset)}


def results_without(folder: Path, counts: tuple[str, ...] = ()) -> dict:
    """results.json without wall-clock timings, and without the training keys ``counts`` (how
    a run was executed, not what it computed)."""
    results = json.loads(Layout(folder).results.read_text())
    training = results["training"]
    for key in (*TIMING, *counts):
        training.pop(key, None)
        results["params"]["training"].pop(key, None)
    for record in training["per_epoch"]:
        for key in TIMING:
            record.pop(key)
    return results


def assert_same_run(a: Path, b: Path, counts: tuple[str, ...] = ()) -> None:
    """Bit-identical final weights, and results identical but for wall-clock timings (and the
    training keys ``counts``)."""
    wa, wb = weights(Layout(a).model_weights), weights(Layout(b).model_weights)
    assert wa.keys() == wb.keys()
    for name in wa:
        np.testing.assert_array_equal(wa[name], wb[name], err_msg=name)
    assert results_without(a, counts) == results_without(b, counts)


LONG = tiny(data={"num_train_batches": 150},
            training={"epochs": 2, "checkpoint_every_steps": 20, "keep_checkpoints": 3})


@pytest.fixture(scope="module")
def straight_long(tmp_path_factory) -> Path:
    """An uninterrupted run of LONG, the reference for the interrupted ones."""
    folder = make_project(tmp_path_factory.mktemp("straight"), LONG)
    doit(folder)
    return folder


def test_fresh_run_then_nothing_then_only_what_changed(tmp_path):
    folder = make_project(tmp_path / "project", tiny())
    assert ran(doit(folder)) == list(FIRST_RUN)
    results = json.loads((folder / "artifacts/results.json").read_text())
    for key in ("train_mlm_loss", "test_mlm_loss", "test_nsp_loss", "test_nsp_accuracy"):
        assert isinstance(results[key], float)
    assert ran(doit(folder)) == []

    write_params(folder, tiny(logging={"level": "DEBUG"}))
    assert ran(doit(folder)) == []
    write_params(folder, tiny(model={"dim_ff": 20}))
    assert ran(doit(folder)) == ["init", "train", "evaluate", "report", *PICTURES]
    write_params(folder, tiny(model={"dim_ff": 20}, data={"vocab_size": 20}))
    assert ran(doit(folder)) == [*STAGES, *PICTURES]
    # a data key the architecture does not depend on leaves the initial weights alone
    write_params(folder, tiny(model={"dim_ff": 20}, data={"vocab_size": 20, "random_seed": 5}))
    assert ran(doit(folder)) == ["data", "train", "evaluate", "report", *PICTURES]
    write_params(folder, tiny(model={"dim_ff": 20}, data={"vocab_size": 20, "random_seed": 5},
                              evaluation={"results_file": "artifacts/other.json"}))
    assert ran(doit(folder)) == ["report"]
    assert (folder / "artifacts/other.json").is_file()

    pytest.importorskip("safetensors", reason="doit export needs pip install -e '.[interop]'")
    assert ran(doit(folder, "export")) == ["export"]  # not in the default run, on request
    assert (folder / "artifacts/export/model.safetensors").is_file()
    assert (folder / "artifacts/export/tokenizer.json").is_file()  # the synthetic language's
    assert (folder / "artifacts/export/README.md").is_file()
    assert ran(doit(folder, "export")) == []


def test_more_epochs_extend_the_run_bit_identically(tmp_path):
    two_then_three = make_project(tmp_path / "a", tiny(training={"epochs": 2}))
    doit(two_then_three)
    write_params(two_then_three, tiny(training={"epochs": 3}))
    result = doit(two_then_three)
    assert ran(result) == ["train", "evaluate", "report", *PICTURES]
    assert "resuming from step 12 (epoch 2, batch 0)" in result.stderr
    straight = make_project(tmp_path / "b", tiny(training={"epochs": 3}))
    doit(straight)
    assert_same_run(two_then_three, straight)


def test_a_new_learning_rate_retrains_from_the_initial_weights(tmp_path):
    folder = make_project(tmp_path / "project", tiny())
    doit(folder)
    write_params(folder, tiny(training={"learning_rate": 0.02}))
    result = doit(folder)
    assert ran(result) == ["train", "evaluate", "report", *PICTURES]
    assert "training from the initial weights" in result.stderr
    assert len(list((folder / "artifacts/checkpoints").iterdir())) == 2  # one folder per run
    fresh = make_project(tmp_path / "fresh", tiny(training={"learning_rate": 0.02}))
    doit(fresh)
    assert_same_run(folder, fresh)


def wait_for_mid_epoch_checkpoint(folder: Path, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        steps = [int(p.stem.split("-")[1])
                 for p in folder.glob("artifacts/checkpoints/*/step-*.h5")]
        if any(step % 150 for step in steps):
            return
        assert process.poll() is None, "training ended before it could be interrupted"
        time.sleep(0.01)
    raise AssertionError("no checkpoint appeared")


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "Ctrl-C"])
def test_an_interrupted_run_resumes_bit_identically(tmp_path, straight_long, stop):
    folder = make_project(tmp_path / "project", LONG)
    doit(folder, "init", "data")
    process = subprocess.Popen([sys.executable, "-m", "doit", "train"], cwd=folder,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    wait_for_mid_epoch_checkpoint(folder, process)
    os.killpg(process.pid, stop)  # the whole group, as a terminal's Ctrl-C does
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0
    assert not (folder / "artifacts/model.h5").exists()
    if stop == signal.SIGINT:
        assert "checkpoint saved; run `doit train` to resume" in stderr
        assert "Traceback" not in stderr
    result = doit(folder)
    assert "resuming from step" in result.stderr
    assert_same_run(folder, straight_long)


def test_bad_params_give_one_line_and_write_nothing(tmp_path):
    folder = make_project(tmp_path / "project", tiny(model={"num_heads": 3}))
    result = doit(folder, check=False)
    assert result.returncode != 0
    assert "model.num_heads is 3, which does not divide model.dim_model (16)" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (folder / "data").exists() and not (folder / "artifacts").exists()
    write_params(folder, tiny(training={"learnig_rate": 0.1}))
    result = doit(folder, check=False)
    assert "training.learnig_rate is not a known parameter; did you mean 'learning_rate'?" in (
        result.stderr)


def test_damaged_files_give_a_clear_error_and_the_fix_works(tmp_path):
    folder = make_project(tmp_path / "project", tiny())
    doit(folder)
    train_data = folder / "data/train.h5"
    good, contents = train_data.read_bytes(), h5io.content_digest(train_data, "")
    train_data.write_bytes(good[: len(good) // 2])
    result = doit(folder, check=False)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert ("data/train.h5: truncated or corrupt" in result.stderr
            and "delete it and run `doit data` to make it again" in result.stderr)
    train_data.unlink()  # the fix the message gives
    assert ran(doit(folder))[:2] == ["data", "train"]
    # regenerated bit-identically: the same arrays and attributes, made at another time
    assert h5io.content_digest(train_data, "") == contents
    assert ran(doit(folder)) == []

    # a corrupt newest checkpoint is reported and skipped; the older one carries the run
    model = folder / "artifacts/model.h5"
    final = h5io.content_digest(model, "")
    newest = sorted(folder.glob("artifacts/checkpoints/*/step-*.h5"))[-1]
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped bit pattern in the middle of the weights
    newest.write_bytes(bytes(data))
    model.unlink()
    result = doit(folder)
    assert "skipping checkpoint" in result.stderr and newest.name in result.stderr
    assert "Traceback" not in result.stderr
    assert h5io.content_digest(model, "") == final


def test_a_nan_loss_stops_with_the_step_and_the_fix(tmp_path):
    folder = make_project(tmp_path / "project", tiny())
    doit(folder, "init", "data")
    init = folder / "artifacts/init.h5"
    with h5py.File(init, "r+") as f:
        f["bert.embeddings.LayerNorm.weight"][0] = np.nan
    result = doit(folder, "train", check=False)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "step 1: the loss is nan; training diverged. Lower training.learning_rate" in (
        result.stderr)
    assert not list(folder.glob("artifacts/checkpoints/*/*.h5"))
