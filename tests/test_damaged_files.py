"""Damaged or mistaken files, as a user meets them: one line that names the file and what is
wrong with it; "delete it and run `doit ...`" only for the workflow's own files, never for a
file the user named; a damaged checkpoint skipped for the one before it."""

from __future__ import annotations

import json

import h5py
import pytest

from bert.storage import checkpoint as ckpt
from bert.workflow.provenance import project_run_params
from bert.workflow.train import train
from tests.workflow import cli_error, layout_of, tiny, tiny_params

RUN = "artifacts/runs/params"


def test_a_weights_file_shown_as_a_dataset_is_named_not_deleted(project, capsys):
    line = cli_error(capsys, "show", f"{RUN}/model.h5", "0")
    assert "this is a weights file, not a dataset" in line and "delete" not in line
    layout = layout_of(project, tiny())
    line = cli_error(capsys, "predict", str(layout.test_data), "0", "--model",
                     str(layout.train_data))
    assert "this is a dataset, not a weights file or a training checkpoint" in line
    assert "delete" not in line


def test_only_the_workflows_own_damaged_file_is_to_be_deleted(project, capsys):
    train_data = layout_of(project, tiny()).train_data
    copy = project / "my_copy.h5"
    data = train_data.read_bytes()
    copy.write_bytes(data[: len(data) // 2])
    line = cli_error(capsys, "show", "my_copy.h5", "0")
    assert "truncated or corrupt" in line and "delete" not in line
    train_data.write_bytes(data[: len(data) // 2])
    line = cli_error(capsys, "show", str(train_data.relative_to(project)), "0")
    assert "delete it and run `doit data`" in line


@pytest.mark.parametrize(("name", "content", "command", "expected"), [
    ("history.json", {"steps": 3}, "report", "history.json: not the expected contents"),
    ("history.json", [], "report", "history.json: not the expected contents"),
    ("metrics.json", {"test": {"mlm_loss": "low"}}, "report", "metrics.json: not the expected"),
    ("history.json", {"epochs": {}}, "curves", "history.json: not the expected contents"),
])
def test_json_of_the_wrong_shape(project, capsys, name, content, command, expected):
    (project / RUN / name).write_text(json.dumps(content))
    assert expected in cli_error(capsys, command)


def test_json_that_is_not_json(project, capsys):
    (project / RUN / "history.json").write_text("not json at all")
    line = cli_error(capsys, "report")
    assert f"{RUN}/history.json: not valid JSON" in line and "delete it and run `doit train`" in (
        line)


@pytest.mark.parametrize("attribute", ["epoch_history"])
def test_a_checkpoint_with_a_broken_json_attribute_is_skipped(project, caplog, attribute):
    params = tiny_params()
    layout = layout_of(project, params)
    newest = ckpt.list_checkpoints(layout.checkpoints
                                   / ckpt.fingerprint(project_run_params(params, layout)))[0]
    with h5py.File(newest, "r+") as f:
        f.attrs[attribute] = "{not json"
    layout.model_weights.unlink()
    train(params, layout, progress=False)
    assert "skipping checkpoint" in caplog.text and attribute in caplog.text
