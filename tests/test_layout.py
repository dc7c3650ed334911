"""Where the files of a project live: a folder per run, the data and the initial weights in
folders named after their parameters and shared by the runs that use them."""

from __future__ import annotations

from pathlib import Path

import pytest

from bert.errors import DataFileError
from bert.workflow.layout import Layout, read_fix
from bert.workflow.run_record import RunOrigin, record_run
from tests.workflow import tiny_params


def test_paths_are_under_the_project_folder(tmp_path):
    layout = Layout(tmp_path, "lr", "synthetic-1a2b3c4d", "5e6f7a8b")
    assert layout.train_data == tmp_path / "data/synthetic-1a2b3c4d/train.h5"
    assert layout.init_weights == tmp_path / "artifacts/init/5e6f7a8b/init.h5"
    assert layout.model_weights == tmp_path / "artifacts/runs/lr/model.h5"
    assert layout.results == tmp_path / "artifacts/runs/lr/results.json"
    assert layout.checkpoints == tmp_path / "artifacts/runs/lr/checkpoints"
    assert layout.curves_plot() == [tmp_path / "artifacts/runs/lr/plots/curves.png"]
    assert layout.export_weights == tmp_path / "artifacts/runs/lr/export/model.safetensors"
    assert layout.under_root("a/b.json") == tmp_path / "a/b.json"
    assert layout.under_root("/elsewhere/b.json") == Path("/elsewhere/b.json")


def test_each_folder_a_stage_writes_has_its_own_lock_and_log(tmp_path):
    layout = Layout(tmp_path, "lr", "synthetic-1a2b3c4d", "5e6f7a8b")
    assert layout.lock("data_dir") == tmp_path / "data/synthetic-1a2b3c4d/.bert.lock"
    assert layout.lock("init_dir") == tmp_path / "artifacts/init/5e6f7a8b/.bert.lock"
    assert layout.lock("run_dir") == layout.run_lock == tmp_path / "artifacts/runs/lr/.bert.lock"
    assert layout.log("data_dir") == tmp_path / "data/synthetic-1a2b3c4d/log.txt"
    assert layout.log("run_dir") == layout.log_file == tmp_path / "artifacts/runs/lr/log.txt"


def test_runs_share_the_folders_of_what_they_share():
    base = Layout.of(tiny_params())
    assert base.run == "params" and base.data.startswith("synthetic-")
    faster = Layout.of(tiny_params(training={"learning_rate": 0.02}), "fast")
    assert (faster.data, faster.init) == (base.data, base.init)  # the same data and weights
    wider = Layout.of(tiny_params(model={"dim_ff": 20}))
    assert wider.data == base.data and wider.init != base.init
    reseeded = Layout.of(tiny_params(data={"random_seed": 5}))
    assert reseeded.data != base.data and reseeded.init == base.init  # no init key changed
    longer = Layout.of(tiny_params(data={"vocab_size": 20}))
    assert longer.data != base.data and longer.init != base.init


def test_files_resolves_properties_and_methods_alike(tmp_path):
    layout = Layout(tmp_path)
    params = tiny_params()
    assert layout.files(("test_data", "results"), params) == [
        tmp_path / "data/default/test.h5", tmp_path / "artifacts/runs/params/results.json"]
    assert layout.files(("init_sources",), params) == []  # a method giving a list
    svg = tiny_params(plots={"formats": ["png", "svg"]})
    assert layout.files(("attention_plot",), svg) == [
        layout.plots / "attention.png", layout.plots / "attention.svg"]


def test_init_sources_are_the_files_of_a_transformers_directory(tmp_path):
    source = tmp_path / "pretrained"
    source.mkdir()
    for name in ("config.json", "model.safetensors", "README.md"):
        (source / name).write_text("{}")
    params = tiny_params(model={"init_from": "pretrained"})
    assert Layout(tmp_path).files(("init_sources",), params) == [
        source / "config.json", source / "model.safetensors"]


def test_a_started_run_is_found_from_its_record(tmp_path):
    with pytest.raises(DataFileError, match="no run named lr has started here; run `doit`"):
        Layout.recorded("lr", tmp_path)
    params = tiny_params()
    layout = Layout.of(params, "lr", tmp_path)
    record_run(params, layout, RunOrigin("params.yaml", {"training.epochs": "2"}), 12)
    assert Layout.recorded("lr", tmp_path) == layout


@pytest.mark.parametrize(("path", "kind", "fix"), [
    ("data/synthetic-1a2b3c4d/train.h5", "dataset", "delete it and run `doit data`"),
    ("artifacts/init/5e6f7a8b/init.h5", "weights file", "delete it and run `doit init`"),
    ("artifacts/runs/lr/model.h5", "weights file", "delete it and run `doit train`"),
    ("artifacts/runs/lr/history.json", "training history", "delete it and run `doit train`"),
    ("artifacts/runs/lr/metrics.json", "metrics file", "delete it and run `doit evaluate`"),
    ("my_copy.h5", "dataset", "check that you named the right file (it should be a dataset)"),
    ("data/train.h5", "dataset", "check that you named"),  # not where the workflow writes
    # a good file of the workflow's, named where another kind is expected: never to delete
    ("artifacts/runs/lr/model.h5", "dataset", "check that you named the right file"),
    ("data/synthetic-1a2b3c4d/test.h5", "weights file", "check that you named"),
    ("artifacts/runs/lr/metrics.json", "training history", "check that you named"),
])
def test_only_the_workflow_s_own_files_of_the_kind_asked_are_to_be_deleted(path, kind, fix):
    assert fix in read_fix(path, kind)
