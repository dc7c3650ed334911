"""The workflow used as a careless or hostile user would: nothing lost, nothing silently wrong.

Every case ends either in one ``error: …`` line (non-zero exit, no traceback, no file of the
user's touched) or is handled correctly. ``python -m pytest tests/test_hostile.py -v`` lists
them; each test's id says what was tried.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from bert.__main__ import main
from bert.core.config import BertConfig, param_shapes
from bert.data.datasets import make_datasets
from bert.errors import DataFileError, OutputError
from bert.storage import atomic
from bert.storage import checkpoint as ckpt
from bert.workflow.evaluate import evaluate_model
from bert.workflow.init import initialize
from bert.workflow.interrupts import TrainingInterrupted, interrupted_message
from bert.workflow.layout import Layout
from bert.workflow.loader import params_from_mapping
from bert.workflow.provenance import project_run_params as run_params
from bert.workflow.report import write_results
from bert.workflow.train import train
from bert.workflow.yamlfile import UniqueKeyLoader
from tests.workflow import tiny, tiny_params, write_params

ROOT = Path(__file__).resolve().parents[1]


# --- a trained tiny project, copied for each case -------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("trained")
    shutil.copy(ROOT / "dodo.py", folder / "dodo.py")
    write_params(folder, tiny())
    layout, params = Layout(folder), tiny_params()
    make_datasets(params.data, layout.data_dir)
    initialize(params, layout)
    train(params, layout, progress=False)
    evaluate_model(params, layout)
    write_results(params, layout)
    return folder


@pytest.fixture
def project(trained, tmp_path, monkeypatch) -> Path:
    """A copy of the trained project, the current folder for the duration of the test."""
    folder = tmp_path / "project"
    shutil.copytree(trained, folder)
    monkeypatch.chdir(folder)
    return folder


def cli(capsys, *args: str) -> str:
    """Run ``python -m bert`` in-process; assert one error line and return it."""
    code = main(list(args))
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def run(folder: Path, *args: str, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=folder, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})}, **kwargs)


def one_line_failure(result: subprocess.CompletedProcess, expected: str) -> None:
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert expected in result.stderr, result.stderr


def doit(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return run(folder, sys.executable, "-m", "doit", *args)


def set_params(folder: Path, **changes) -> None:
    write_params(folder, tiny(**changes))


# --- 1, 2: output paths never destroy what the workflow did not write -----------------------

@pytest.mark.parametrize(("section", "key", "value", "expected"), [
    ("evaluation", "results_file", "dodo.py", "outside the project's artifacts/ folder"),
    ("evaluation", "results_file", "params.yaml", "outside the project's artifacts/ folder"),
    ("evaluation", "results_file", "/tmp/elsewhere.json", "outside the project's artifacts/"),
    ("evaluation", "results_file", "artifacts/../dodo.py", "outside the project's artifacts/"),
    ("evaluation", "results_file", "artifacts/model.h5", "a file `doit train` writes"),
    ("evaluation", "results_file", "artifacts/checkpoints/r.json", "inside artifacts/checkpoints"),
    ("evaluation", "results_file", "", "is empty"),
    ("evaluation", "results_file", "artifacts/", "a folder"),
    ("evaluation", "results_file", "artifacts/logs/bert.log", "the log file"),
    ("evaluation", "results_file", "artifacts/logs/bert.log.1", "its rotated copies"),
    ("logging", "file", "artifacts/model.h5", "a file `doit train` writes"),
    ("logging", "file", "data/train.h5", "outside the project's artifacts/ folder"),
    ("logging", "file", "params.yaml", "outside the project's artifacts/ folder"),
    ("logging", "file", "artifacts/history.json", "a file `doit train` writes"),
    ("logging", "file", "", "is empty"),
])
def test_an_output_path_on_a_file_of_the_project_is_refused(project, section, key, value,
                                                            expected):
    before = {p: p.read_bytes() for p in project.rglob("*") if p.is_file()}
    set_params(project, **{section: {key: value}})
    result = doit(project)
    one_line_failure(result, f"{section}.{key} is")
    assert expected in result.stderr
    after = {p: p.read_bytes() for p in project.rglob("*") if p.is_file()
             if p.name not in ("params.yaml", ".bert.lock")}
    assert after == {p: b for p, b in before.items() if p.name != "params.yaml"}


def test_an_existing_file_that_is_not_ours_is_never_replaced(project, capsys):
    mine = project / "artifacts/notes.json"
    mine.write_text('{"my": "notes"}')
    set_params(project, evaluation={"results_file": "artifacts/notes.json"})
    line = cli(capsys, "report")
    assert "exists and was not written by this workflow" in line
    assert mine.read_text() == '{"my": "notes"}'
    (project / "artifacts/folder.json").mkdir()
    set_params(project, evaluation={"results_file": "artifacts/folder.json"})
    assert "is a folder" in cli(capsys, "report")
    # through a link pointing out of artifacts/
    (project / "artifacts/link.json").symlink_to(project / "dodo.py")
    set_params(project, evaluation={"results_file": "artifacts/link.json"})
    dodo = (project / "dodo.py").read_bytes()
    assert "leads outside artifacts/" in cli(capsys, "report")
    assert (project / "dodo.py").read_bytes() == dodo
    # ours (the previous results) is replaced, as it should be
    set_params(project)
    assert main(["report"]) == 0


def test_a_log_file_that_is_not_ours_is_never_appended_or_rotated(project, capsys):
    notes = project / "artifacts/notes.txt"
    notes.write_text("my notes\n")
    set_params(project, logging={"file": "artifacts/notes.txt"})
    assert "exists and was not written by this workflow" in cli(capsys, "report")
    assert notes.read_text() == "my notes\n"
    backup = project / "artifacts/logs/bert.log.1"  # rotation would rename over it
    backup.parent.mkdir(exist_ok=True)
    backup.write_text("my notes\n")
    set_params(project)
    assert "bert.log.1 exists and was not written" in cli(capsys, "report")
    assert backup.read_text() == "my notes\n"


def test_doit_clean_removes_only_the_results_report_wrote(project):
    outside = project.parent / "outside.json"
    outside.write_text("{}")
    mine = project / "artifacts/mine.json"
    mine.write_text('{"my": "results"}')
    set_params(project, evaluation={"results_file": "artifacts/mine.json"})
    assert doit(project, "clean", "report").returncode == 0
    assert mine.read_text() == '{"my": "results"}' and outside.read_text() == "{}"
    set_params(project)
    assert (project / "artifacts/results.json").is_file()
    assert doit(project, "clean", "report").returncode == 0
    assert not (project / "artifacts/results.json").exists()  # ours: removed


# --- 3: more training examples asked for than there are ------------------------------------

def test_train_examples_beyond_the_training_set_scores_what_exists(project, capsys):
    assert main(["evaluate"]) == 0
    assert "evaluation.train_examples is 4096 but the training set has 48 examples" in (
        capsys.readouterr().err)
    metrics = json.loads((project / "artifacts/metrics.json").read_text())
    assert metrics["train"]["num_examples"] == 48
    all48 = params_from_mapping(tiny(evaluation={"train_examples": 0}))
    assert evaluate_model(all48, Layout(project))["train"] == metrics["train"]


# --- 4: the provenance of model.h5; one workflow at a time ---------------------------------

def test_the_initial_weights_as_model_are_refused(project, capsys):
    shutil.copy(project / "artifacts/init.h5", project / "artifacts/model.h5")
    for stage in ("evaluate", "export"):
        line = cli(capsys, stage)
        assert "model.h5: has no mark of the run that trained it" in line
        assert "delete it and run `doit train`" in line


def test_the_model_of_other_parameters_is_refused(project, capsys):
    set_params(project, training={"learning_rate": 0.02})
    assert "model.h5: comes from another run" in cli(capsys, "evaluate")
    set_params(project, training={"epochs": 3})
    assert "model.h5: is from step 12 of the run, not from the end of" in cli(capsys, "evaluate")
    assert "metrics.json: is from step 12" in cli(capsys, "report")


def test_metrics_of_another_run_are_not_reported(project, capsys):
    metrics = json.loads((project / "artifacts/metrics.json").read_text())
    metrics["model"]["run"] = "0123456789abcdef"
    (project / "artifacts/metrics.json").write_text(json.dumps(metrics))
    assert "metrics.json: comes from another run" in cli(capsys, "report")


def test_a_second_workflow_in_the_same_folder_refuses(project):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time; from bert.workflow.lock import hold_project_lock;"
         "hold_project_lock(); print('held', flush=True); time.sleep(60)"],
        cwd=project, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        for command in (("-m", "doit"), ("-m", "bert", "evaluate")):
            result = run(project, sys.executable, *command)
            one_line_failure(result, f"in use by another workflow process (pid {holder.pid}: ")
    finally:
        holder.kill()
        holder.wait()
    # once it is gone, doit runs, and its own stages run under its lock
    set_params(project, evaluation={"batch_size": 8})
    result = doit(project)
    assert result.returncode == 0, result.stderr
    assert ".  evaluate" in result.stdout


# --- 5: imports refuse what cannot be right ------------------------------------------------

safetensors = pytest.importorskip("safetensors.numpy", reason="needs pip install -e '.[interop]'")


@pytest.fixture
def exported(project) -> Path:
    assert main(["export"]) == 0
    return project / "artifacts/export"


def init_from(project: Path, capsys, source: str) -> str:
    set_params(project, model={"init_from": source})
    return cli(capsys, "init")


def test_nan_weights_are_refused_on_import(project, capsys):
    with h5py.File(project / "artifacts/model.h5", "r+") as f:
        f["bert.encoder.layer.0.output.dense.bias"][3] = np.inf
    line = init_from(project, capsys, "artifacts/model.h5")
    assert "tensor 'bert.encoder.layer.0.output.dense.bias' holds NaN or infinite values" in line


def test_nan_in_a_safetensors_import_is_refused(project, exported, capsys):
    tensors = safetensors.load_file(exported / "model.safetensors")
    tensors["bert.pooler.dense.weight"][0, 0] = np.nan
    safetensors.save_file(tensors, exported / "model.safetensors")
    assert "tensor 'bert.pooler.dense.weight' holds NaN" in init_from(project, capsys,
                                                                       "artifacts/export")


def test_an_infinite_config_value_is_refused(project, exported, capsys):
    config = exported / "config.json"
    text, replaced = re.subn(r'"initializer_range": [^,\n}]+', '"initializer_range": Infinity',
                             config.read_text())
    assert replaced == 1
    config.write_text(text)
    assert "'initializer_range' is inf" in init_from(project, capsys, "artifacts/export")


def shard(exported: Path, weight_map: object) -> None:
    (exported / "model.safetensors").rename(exported / "part-1.safetensors")
    (exported / "model.safetensors.index.json").write_text(json.dumps({"weight_map":
                                                                       weight_map}))


@pytest.mark.parametrize(("where", "expected"), [
    ("../outside.safetensors", "shard path '../outside.safetensors' is outside the directory"),
    ("/etc/passwd", "shard path '/etc/passwd' is outside the directory"),
])
def test_shard_paths_outside_the_directory_are_refused(project, exported, capsys, where,
                                                       expected):
    shard(exported, {"bert.pooler.dense.weight": where})
    assert expected in init_from(project, capsys, "artifacts/export")


def test_a_tensor_in_two_shards_is_refused(project, exported, capsys):
    shard(exported, {"a": "part-1.safetensors", "b": "part-2.safetensors"})
    shutil.copy(exported / "part-1.safetensors", exported / "part-2.safetensors")
    line = init_from(project, capsys, "artifacts/export")
    assert "is in two shards, part-1.safetensors and part-2.safetensors" in line


@pytest.mark.parametrize(("text", "expected"), [
    ("{not json", "model.safetensors.index.json: not valid JSON"),
    ('{"metadata": {}}', "has no 'weight_map' object"),
    ("[1, 2]", "model.safetensors.index.json: not a JSON object"),
])
def test_a_broken_index_is_refused(project, exported, capsys, text, expected):
    shard(exported, {})
    (exported / "model.safetensors.index.json").write_text(text)
    assert expected in init_from(project, capsys, "artifacts/export")


@pytest.mark.parametrize(("text", "expected"), [
    ("[" * 100_000 + "]" * 100_000, "config.json: nested too deeply to be read"),
    ('{"num_hidden_layers": 1000000000, "vocab_size": 16, "hidden_size": 16, '
     '"num_attention_heads": 2, "intermediate_size": 24, "max_position_embeddings": 16}',
     "this needs ~"),
    ("{}" + " " * (17 << 20), "far too large for this file"),
])
def test_a_hostile_config_json_is_refused_quickly(project, exported, capsys, text, expected):
    (exported / "config.json").write_text(text)
    started = time.perf_counter()
    assert expected in init_from(project, capsys, "artifacts/export")
    assert time.perf_counter() - started < 10


# --- 6: duplicate keys ---------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("data:\n  vocab_size: 32\nmodel: {}\ndata:\n  batch_size: 4\n",
     "key 'data' appears twice, at lines 1 and 4"),
    ("training:\n  epochs: 2\n  learning_rate: 0.1\n  epochs: 3\n",
     "key 'epochs' appears twice, at lines 2 and 4"),
])
def test_duplicate_yaml_keys_are_refused(project, capsys, text, expected):
    (project / "params.yaml").write_text(text)
    assert expected in cli(capsys, "data")


# --- 7: allocation bombs -------------------------------------------------------------------

def test_parameters_that_cannot_fit_in_memory_are_refused_up_front(project):
    set_params(project, data={"vocab_size": 4096, "num_topics": 256})
    result = doit(project)
    one_line_failure(result, "the data stage needs ~")
    assert "GiB; the machine has" in result.stderr
    set_params(project, model={"num_layers": 1_000_000_000})
    one_line_failure(doit(project), "the train stage needs ~")


def alias_bomb(levels: int = 9) -> str:
    """A YAML list whose printed form has 9**levels items, in a few hundred bytes."""
    items = ['&a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, levels):
        items.append(f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "[" + ", ".join(items) + "]"


@pytest.mark.parametrize("where", ["data:\n  vocab_size: {}\n", "data: {}\n"])
def test_a_yaml_alias_bomb_is_refused_at_once(project, capsys, where):
    (project / "params.yaml").write_text(where.format(alias_bomb()))
    assert (project / "params.yaml").stat().st_size < 1000
    started = time.perf_counter()
    line = cli(capsys, "data")
    assert time.perf_counter() - started < 2 and len(line) < 400


def test_a_weights_file_declaring_a_huge_vocabulary_is_refused(project, capsys):
    config, weights = ckpt.load_weights(project / "artifacts/model.h5", "fix")
    huge = BertConfig(**{**dataclasses.asdict(config), "vocab_size": 100_000_000})
    ckpt.save_weights(project / "artifacts/huge.h5", huge, {}, {})
    with h5py.File(project / "artifacts/huge.h5", "r+") as f:
        for name, shape in param_shapes(huge).items():
            f.create_dataset(name, shape=shape, dtype=np.float32)  # declared, never written
    assert (project / "artifacts/huge.h5").stat().st_size < 100_000
    started = time.perf_counter()
    line = init_from(project, capsys, "artifacts/huge.h5")
    assert "declares (100000000, 16)" in line and "but stores only 0 bytes" in line
    assert time.perf_counter() - started < 5


def test_a_huge_integer_in_params_is_one_line(project, capsys):
    (project / "params.yaml").write_text("data:\n  random_seed: " + "9" * 5000 + "\n")
    assert len(cli(capsys, "data")) < 400
    (project / "params.yaml").write_text("model:\n  init_from: " + "x" * 100_000 + "\n")
    assert len(cli(capsys, "init")) < 400


# --- 8: read errors advise deleting only the workflow's own outputs -------------------------

def test_a_weights_file_shown_as_a_dataset_is_named_not_deleted(project, capsys):
    line = cli(capsys, "show", "artifacts/model.h5", "0")
    assert "this is a weights file, not a dataset" in line and "delete" not in line
    line = cli(capsys, "predict", "data/test.h5", "0", "--model", "data/train.h5")
    assert "this is a dataset, not a weights file or a training checkpoint" in line
    assert "delete" not in line


def test_only_the_workflows_own_damaged_file_is_to_be_deleted(project, capsys):
    copy = project / "my_copy.h5"
    data = (project / "data/train.h5").read_bytes()
    copy.write_bytes(data[: len(data) // 2])
    line = cli(capsys, "show", "my_copy.h5", "0")
    assert "truncated or corrupt" in line and "delete" not in line
    (project / "data/train.h5").write_bytes(data[: len(data) // 2])
    assert "delete it and run `doit data`" in cli(capsys, "show", "data/train.h5", "0")


# --- 9: a full disk ------------------------------------------------------------------------

def limit_file_size(limit: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write beyond fails with EFBIG
    return apply


def test_a_full_disk_is_one_line_and_the_run_resumes(project):
    set_params(project, training={"epochs": 3})
    checkpoints = sorted(project.glob("artifacts/checkpoints/*/step-*.h5"))
    before = {p: p.read_bytes() for p in checkpoints}
    size = max(p.stat().st_size for p in checkpoints)
    result = run(project, sys.executable, "-m", "bert", "train",
                 preexec_fn=limit_file_size(size // 2))
    one_line_failure(result, "no space left on device while writing ")
    assert len([ln for ln in result.stderr.splitlines() if ln.startswith("error")]) == 1
    assert {p: p.read_bytes() for p in checkpoints} == before  # the previous ones intact
    assert not list(project.glob("artifacts/**/*.tmp"))
    result = run(project, sys.executable, "-m", "bert", "train")  # space is back
    assert result.returncode == 0, result.stderr
    assert "resuming from step 12" in result.stderr


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="mounts a tmpfs")
def test_a_really_full_filesystem(tmp_path, trained):
    """doit on a 1 MiB file system: one line from the stage, doit's own record (sqlite3) still
    readable, and once the file system grows the run completes from where it stopped."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        shutil.copy(trained / "dodo.py", disk / "dodo.py")
        write_params(disk, tiny(data={"num_train_batches": 200}))
        result = doit(disk)
        assert result.returncode != 0
        assert "error: no space left on device while writing " in result.stderr
        assert not list(disk.glob("**/.*.tmp"))
        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        retry = doit(disk)
        assert retry.returncode == 0, retry.stderr
        assert (disk / "artifacts/results.json").is_file()
    finally:
        subprocess.run(["umount", str(disk)])


# --- 10: tracebacks that became one line ---------------------------------------------------

def test_a_mask_probability_that_masks_nothing(project, capsys):
    set_params(project, data={"mask_probability": 1e-6})
    assert "data.mask_probability is 1e-06: the test set has no masked token" in cli(capsys,
                                                                                      "data")


def test_a_read_only_artifacts_folder_fails_before_training(project, capsys, tmp_path):
    shutil.rmtree(project / "artifacts/checkpoints")
    artifacts = project / "artifacts"
    if os.geteuid() == 0:  # root writes anywhere: make it a read-only mount
        keep = tmp_path / "keep"
        shutil.copytree(artifacts, keep)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs",
                           str(artifacts)]).returncode:
            pytest.skip("cannot mount a read-only tmpfs here")
    else:
        artifacts.chmod(0o555)
    try:
        started = time.perf_counter()
        line = cli(capsys, "train")
        assert "(Read-only file system)" in line or "(Permission denied)" in line
        assert time.perf_counter() - started < 5
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(artifacts)])
        else:
            artifacts.chmod(0o755)


@pytest.mark.parametrize(("name", "content", "command", "expected"), [
    ("history.json", {"steps": 3}, "report", "history.json: not the expected contents"),
    ("history.json", [], "report", "history.json: not the expected contents"),
    ("metrics.json", {"test": {"mlm_loss": "low"}}, "report", "metrics.json: not the expected"),
    ("history.json", {"epochs": {}}, "curves", "history.json: not the expected contents"),
])
def test_json_of_the_wrong_shape(project, capsys, name, content, command, expected):
    (project / "artifacts" / name).write_text(json.dumps(content))
    assert expected in cli(capsys, command)


@pytest.mark.parametrize("attribute", ["epoch_history"])
def test_a_checkpoint_with_a_broken_json_attribute_is_skipped(project, caplog, attribute):
    params = tiny_params()
    newest = ckpt.list_checkpoints(Layout(project).checkpoints
                                   / ckpt.fingerprint(run_params(params, Layout(project))))[0]
    with h5py.File(newest, "r+") as f:
        f.attrs[attribute] = "{not json"
    (project / "artifacts/model.h5").unlink()
    train(params, Layout(project), progress=False)
    assert "skipping checkpoint" in caplog.text and attribute in caplog.text


# --- 11: smaller ---------------------------------------------------------------------------

def test_temporaries_of_killed_writes_are_removed_by_the_next_write(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".results.json.{dead.pid}.0123abcd.tmp"
    stale.write_text("half")
    alive = tmp_path / f".results.json.{os.getppid()}.0123abcd.tmp"  # a live writer's: kept
    alive.write_text("half")
    atomic.write_json(tmp_path / "results.json", {})
    assert not stale.exists() and alive.exists()


def test_fewer_epochs_use_the_checkpoint_of_that_epoch_and_keep_the_others(project, caplog):
    layout, params = Layout(project), tiny_params()
    folder = layout.checkpoints / ckpt.fingerprint(run_params(params, layout))
    three = train(tiny_params(training={"epochs": 3}), layout, progress=False)
    kept = {p: p.read_bytes() for p in ckpt.list_checkpoints(folder)}
    two = train(params, layout, progress=False)  # epoch 2 ended at step 12, checkpointed
    assert two.step == 12 and three.step == 18
    assert "this run is already at step 18; using its checkpoint at the end of epoch 2" in (
        caplog.text)
    assert {p: p.read_bytes() for p in ckpt.list_checkpoints(folder)} == kept
    (folder / "step-000000012.h5").unlink()
    kept.pop(folder / "step-000000012.h5")
    result = run(project, sys.executable, "-m", "bert", "train")
    one_line_failure(result, "training.epochs is 2, but this run is already at step 18")
    assert {p: p.read_bytes() for p in ckpt.list_checkpoints(folder)} == kept


def test_a_second_ctrl_c_says_which_checkpoint_is_intact(project, monkeypatch):
    from bert.workflow import train as train_module

    set_params(project, training={"epochs": 3})
    calls = []

    def interrupted_step(run):
        calls.append(run.state.step)
        raise KeyboardInterrupt  # what the second Ctrl-C raises in the middle of a step

    monkeypatch.setattr(train_module, "take_step", interrupted_step)
    with pytest.raises(TrainingInterrupted) as info:
        train(tiny_params(training={"epochs": 3}), Layout(project), progress=False)
    assert calls == [12] and not info.value.saved
    message = interrupted_message(info.value)
    assert message == ("interrupted; the newest checkpoint (step 12) is intact; run `doit "
                       "train` to resume from it")
    assert "nothing was written" not in interrupted_message(KeyboardInterrupt())


def test_outputs_with_no_space_raise_one_output_error(tmp_path, monkeypatch):
    """The atomic writer turns every OSError of a write into one line, old file intact."""
    target = tmp_path / "f.json"
    atomic.write_json(target, {"old": 1})

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic, "fsync_path", full)
    with pytest.raises(OutputError, match="no space left on device while writing"):
        atomic.write_json(target, {"new": 1})
    assert json.loads(target.read_text()) == {"old": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_a_dataset_file_of_forged_size_is_refused(tmp_path):
    path = tmp_path / "forged.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", shape=(10**9,), dtype=np.float64, chunks=(10**6,),
                         compression="gzip")
        f.attrs["schema"], f.attrs["schema_version"] = "s", 1
    from bert.storage import h5io

    with pytest.raises(DataFileError, match="declares"):
        h5io.read(path, schema="s", schema_version=1, specs={"x": h5io.Spec(("N",))}, fix="x")


def test_yaml_keys_are_still_allowed_once_per_mapping():
    text = "a: {x: 1}\nb: {x: 2}\nbase: &b {y: 1}\nc:\n  <<: *b\n  y: 2\n"
    assert yaml.load(text, Loader=UniqueKeyLoader) == {"a": {"x": 1}, "b": {"x": 2},
                                                       "base": {"y": 1}, "c": {"y": 2}}


# --- more that a careful user tries ---------------------------------------------------------

@pytest.mark.parametrize(("params", "command", "expected"), [
    ({"model": {"init_from": "data/train.h5"}}, ["init"],
     "this is a dataset, not a weights file or a training checkpoint"),
    ({"evaluation": {"batch_size": 1_000_000_000}}, ["evaluate"], "the evaluate stage needs ~"),
    ({"data": {"sequence_length": 4096, "batch_size": 64}}, ["data"], "the train stage needs ~"),
    ({"logging": {"file": "artifacts"}}, ["report"], "logging.file is 'artifacts', a folder"),
    ({"logging": {"file": "artifacts/plots/x.log"}}, ["report"], "inside artifacts/plots"),
    ("\x00\xff\xfe binary", ["data"], "params.yaml: "),
    ("data: " + "[" * 5000 + "]" * 5000, ["data"], "nested too deeply to be read"),
    ("data:\n  vocab_size: 1e400\n", ["data"], "data.vocab_size is '1e400'; set it to an integer"),
    ("data:\n  concentration: 1e400\n", ["data"], "data.concentration is inf"),
])
def test_more_hostile_parameters(project, capsys, params, command, expected):
    if isinstance(params, str):
        (project / "params.yaml").write_text(params)
    else:
        set_params(project, **params)
    assert expected in cli(capsys, *command)


def test_more_hostile_files(project, capsys):
    (project / "artifacts/logs").mkdir(exist_ok=True)
    set_params(project, logging={"file": "artifacts/logs"})
    assert "artifacts/logs is a folder" in cli(capsys, "report")
    set_params(project)
    history = (project / "artifacts/history.json").read_bytes()
    (project / "artifacts/history.json").write_text("not json at all")
    assert "history.json: not valid JSON" in cli(capsys, "report")
    (project / "artifacts/history.json").write_bytes(history)
    assert "params.yaml" not in cli(capsys, "data", "--params", "artifacts")  # a folder
    line = cli(capsys, "show", "data/train.h5", "99999999999999999999")
    assert "no example 99999999999999999999" in line
    # a results file in a new sub-folder of artifacts/ is fine
    set_params(project, evaluation={"results_file": "artifacts/runs/a/results.json"})
    assert main(["report"]) == 0
    assert json.loads((project / "artifacts/runs/a/results.json").read_text())["schema"] == (
        "bert-from-scratch/results")


def test_a_score_stored_as_null_gives_a_null_gap_not_a_type_error(project):
    """JSON stores NaN as null; the report carries it through instead of failing."""
    metrics = json.loads((project / "artifacts/metrics.json").read_text())
    metrics["optimum"]["bayes_mlm_loss"] = None
    (project / "artifacts/metrics.json").write_text(json.dumps(metrics))
    document = write_results(tiny_params(), Layout(project))
    assert document["gap_to_optimum"]["test_mlm_loss"] is None
    assert document["optimum"]["test_mlm_loss"] is None
