"""Where the files of a project live, and the files a stage record names."""

from __future__ import annotations

from pathlib import Path

from bert.workflow.layout import Layout
from tests.workflow import tiny_params


def test_paths_are_under_the_project_folder(tmp_path):
    layout = Layout(tmp_path)
    assert layout.train_data == tmp_path / "data/train.h5"
    assert layout.model_weights == tmp_path / "artifacts/model.h5"
    assert layout.under_root("a/b.json") == tmp_path / "a/b.json"
    assert layout.under_root("/elsewhere/b.json") == Path("/elsewhere/b.json")


def test_files_resolves_properties_and_methods_alike(tmp_path):
    layout = Layout(tmp_path)
    params = tiny_params(evaluation={"results_file": "artifacts/out/r.json"})
    assert layout.files(("test_data", "results"), params) == [tmp_path / "data/test.h5",
                                                              tmp_path / "artifacts/out/r.json"]
    assert layout.files(("init_sources",), params) == []  # a method giving a list


def test_init_sources_are_the_files_of_a_transformers_directory(tmp_path):
    source = tmp_path / "pretrained"
    source.mkdir()
    for name in ("config.json", "model.safetensors", "README.md"):
        (source / name).write_text("{}")
    params = tiny_params(model={"init_from": "pretrained"})
    assert Layout(tmp_path).files(("init_sources",), params) == [
        source / "config.json", source / "model.safetensors"]
