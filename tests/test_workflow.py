"""End to end: ``doit`` driving the whole workflow of one run in a temporary project folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from bert.storage import h5io
from bert.workflow.tasks import plots_available
from tests.workflow import (
    assert_same_run,
    doit,
    layout_of,
    make_project,
    ran,
    run_dir,
    stages_ran,
    tiny,
    write_params,
)

pytestmark = pytest.mark.slow  # doit end to end
ROOT = Path(__file__).resolve().parents[1]
STAGES = ("data", "init", "train", "evaluate", "report")
# The pictures, redrawn whenever the run changes. Without matplotlib a single ``plots`` task
# says so on the first run and is then up to date.
PICTURES = ("plots:curves", "plots:attention", "plots:predictions") if plots_available() else ()
FIRST_RUN = (*STAGES, *(PICTURES or ("plots",)))


LONG = tiny(data={"num_train_batches": 150},
            training={"epochs": 2, "checkpoint_every_steps": 20, "keep_checkpoints": 3})


def contents(folder: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()}


@pytest.fixture(scope="module")
def straight_long(tmp_path_factory) -> Path:
    """An uninterrupted run of LONG, the reference for the interrupted ones."""
    folder = make_project(tmp_path_factory.mktemp("straight"), LONG)
    doit(folder)
    return folder


@pytest.mark.slow
def test_fresh_run_then_nothing_then_only_what_changed(tmp_path):
    folder = make_project(tmp_path / "project", tiny())
    first = doit(folder)
    base = layout_of(folder, tiny())
    pictures = [f"plots:params:{p.split(':')[1]}" for p in PICTURES] or ["plots:params"]
    assert ran(first) == [f"data:{base.data}", f"init:{base.init}", "train:params",
                          "evaluate:params", "report:params", *pictures]
    results = json.loads(base.results.read_text())
    for key in ("train_mlm_loss", "test_mlm_loss", "test_nsp_loss", "test_nsp_accuracy"):
        assert isinstance(results[key], float)
    assert ran(doit(folder)) == []
    data = contents(base.data_dir)

    write_params(folder, tiny(logging={"level": "DEBUG"}))
    assert ran(doit(folder)) == []
    write_params(folder, tiny(training={"threads": 1}))  # changes how fast, never a bit
    assert ran(doit(folder)) == []
    write_params(folder, tiny(plots={"formats": ["png", "svg"]}))
    assert stages_ran(doit(folder)) == list(PICTURES)
    write_params(folder, tiny(model={"dim_ff": 20}))
    assert stages_ran(doit(folder)) == ["init", "train", "evaluate", "report", *PICTURES]
    write_params(folder, tiny(model={"dim_ff": 20}, data={"vocab_size": 20}))
    assert stages_ran(doit(folder)) == [*STAGES, *PICTURES]
    # a data key the architecture does not depend on leaves the initial weights alone
    write_params(folder, tiny(model={"dim_ff": 20}, data={"vocab_size": 20, "random_seed": 5}))
    assert stages_ran(doit(folder)) == ["data", "train", "evaluate", "report", *PICTURES]
    assert contents(base.data_dir) == data  # other data never replaces the first's

    pytest.importorskip("safetensors", reason="doit export needs pip install -e '.[interop]'")
    assert ran(doit(folder, "export")) == ["export:params"]  # not in the default run, on request
    export = run_dir(folder) / "export"
    assert (export / "model.safetensors").is_file()
    assert (export / "tokenizer.json").is_file()  # the synthetic language's
    assert (export / "README.md").is_file()
    assert (run_dir(folder) / "export/model.safetensors").is_file()
    assert ran(doit(folder, "export")) == []


@pytest.mark.slow
def test_more_epochs_extend_the_run_bit_identically(tmp_path):
    two_then_three = make_project(tmp_path / "a", tiny(training={"epochs": 2}))
    doit(two_then_three)
    write_params(two_then_three, tiny(training={"epochs": 3}))
    result = doit(two_then_three)
    assert stages_ran(result) == ["train", "evaluate", "report", *PICTURES]
    assert "resuming from step 12 (epoch 2, batch 0)" in result.stderr
    straight = make_project(tmp_path / "b", tiny(training={"epochs": 3}))
    doit(straight)
    assert_same_run(run_dir(two_then_three), run_dir(straight))


@pytest.mark.slow
def test_a_new_learning_rate_in_the_file_retrains_from_the_initial_weights(tmp_path):
    folder = make_project(tmp_path / "project", tiny())
    doit(folder)
    write_params(folder, tiny(training={"learning_rate": 0.02}))
    result = doit(folder)
    assert stages_ran(result) == ["train", "evaluate", "report", *PICTURES]
    assert "training from the initial weights" in result.stderr
    # the same run name, another run: one checkpoint folder per run
    assert len(list((run_dir(folder) / "checkpoints").iterdir())) == 2
    fresh = make_project(tmp_path / "fresh", tiny(training={"learning_rate": 0.02}))
    doit(fresh)
    assert_same_run(run_dir(folder), run_dir(fresh))


def wait_for_mid_epoch_checkpoint(folder: Path, process: subprocess.Popen,
                                  batches: int = 150) -> None:
    """Until a checkpoint of a step inside an epoch of ``batches`` steps is written."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        steps = [int(p.stem.split("-")[1])
                 for p in folder.glob("artifacts/runs/*/checkpoints/*/step-*.h5")]
        if any(step % batches for step in steps):
            return
        assert process.poll() is None, "training ended before it could be interrupted"
        time.sleep(0.01)
    raise AssertionError("no checkpoint appeared")


@pytest.mark.slow
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
    assert not (run_dir(folder) / "model.h5").exists()
    if stop == signal.SIGINT:
        assert "checkpoint saved; run `doit train` to resume" in stderr
        assert "Traceback" not in stderr
    result = doit(folder)
    assert "resuming from step" in result.stderr
    assert_same_run(run_dir(folder), run_dir(straight_long))


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


@pytest.mark.parametrize(("section", "key", "where"), [
    ("evaluation", "results_file", "artifacts/runs/<run>/results.json"),
    ("logging", "file", "artifacts/runs/<run>/log.txt"),
])
def test_a_retired_output_key_is_one_line_and_nothing_is_touched(project, section, key, where):
    """The keys that once chose where a file went: one line that says where it goes now, and
    every file of the project as it was."""
    before = contents(project)
    write_params(project, tiny(**{section: {key: "dodo.py"}}))
    result = doit(project, check=False)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and f"{section}.{key} is no longer a parameter: " in errors[0]
    assert where in errors[0] and errors[0].endswith("; remove it")
    after = contents(project)
    assert {p: b for p, b in after.items() if p.name != "params.yaml"} == {
        p: b for p, b in before.items() if p.name != "params.yaml"}


@pytest.mark.slow
def test_damaged_files_give_a_clear_error_and_the_fix_works(tmp_path):
    folder = make_project(tmp_path / "project", tiny())
    doit(folder)
    train_data = layout_of(folder, tiny()).train_data
    good, contents = train_data.read_bytes(), h5io.content_digest(train_data, "")
    train_data.write_bytes(good[: len(good) // 2])
    result = doit(folder, check=False)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert (f"{train_data.relative_to(folder)}: truncated or corrupt" in result.stderr
            and "delete it and run `doit data` to make it again" in result.stderr)
    train_data.unlink()  # the fix the message gives
    assert stages_ran(doit(folder))[:2] == ["data", "train"]
    # regenerated bit-identically: the same arrays and attributes, made at another time
    assert h5io.content_digest(train_data, "") == contents
    assert ran(doit(folder)) == []

    # a corrupt newest checkpoint is reported and skipped; the older one carries the run
    model = run_dir(folder) / "model.h5"
    final = h5io.content_digest(model, "")
    newest = sorted(run_dir(folder).glob("checkpoints/*/step-*.h5"))[-1]
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped bit pattern in the middle of the weights
    newest.write_bytes(bytes(data))
    model.unlink()
    result = doit(folder)
    assert "skipping checkpoint" in result.stderr and newest.name in result.stderr
    assert "Traceback" not in result.stderr
    assert h5io.content_digest(model, "") == final


@pytest.mark.slow
def test_a_nan_loss_stops_with_the_step_and_the_fix(tmp_path):
    folder = make_project(tmp_path / "project", tiny())
    doit(folder, "init", "data")
    with h5py.File(layout_of(folder, tiny()).init_weights, "r+") as f:
        f["bert.embeddings.LayerNorm.weight"][0] = np.nan
    result = doit(folder, "train", check=False)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "step 1: the loss is nan; training diverged. Lower training.learning_rate" in (
        result.stderr)
    assert not list(run_dir(folder).glob("checkpoints/*/*.h5"))
