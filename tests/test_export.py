"""The export stage: one unit (a model and its tokenizer, or the previous ones whole), the
vocabulary recorded with the weights, and the user's files in the folder kept."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("tokenizers", reason="text data needs pip install -e '.[text]'")
safetensors = pytest.importorskip("safetensors", reason="needs pip install -e '.[interop]'")

from bert.data.datasets import load_tokenizer  # noqa: E402
from bert.data.tokenizer import TextTokenizer  # noqa: E402
from bert.errors import OutputError  # noqa: E402
from bert.storage import interop  # noqa: E402
from bert.workflow import export as export_module  # noqa: E402
from bert.workflow.export import export  # noqa: E402
from bert.workflow.layout import Layout  # noqa: E402
from bert.workflow.loader import params_from_mapping  # noqa: E402
from tests.test_fill_mask import TEXT, trained_project  # noqa: E402
from tests.textcorpus import write_corpus  # noqa: E402

PARAMS = params_from_mapping(TEXT)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("text")
    write_corpus(folder / "corpus")
    return trained_project(folder)


@pytest.fixture
def project(trained, tmp_path) -> Path:
    folder = tmp_path / "project"
    shutil.copytree(trained, folder)
    return folder


def contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_the_weights_record_the_vocabulary_of_their_tokenizer(project):
    exported = project / "artifacts/export"
    with safetensors.safe_open(exported / "model.safetensors", framework="np") as opened:
        recorded = opened.metadata()["vocab_sha256"]
    assert recorded == load_tokenizer(exported).digest == load_tokenizer(
        project / "data/test.h5").digest
    assert interop.trained_vocabulary(project / "artifacts/model.h5") == (recorded, "text")
    assert interop.trained_vocabulary(exported) == (recorded, None)


def test_a_full_disk_midway_leaves_the_previous_export_whole(project, monkeypatch):
    exported = project / "artifacts/export"
    before = contents(exported)
    other = TextTokenizer(list(reversed(load_tokenizer(exported).vocab)), True)
    monkeypatch.setattr(export_module, "load_tokenizer", lambda path: other)  # a new tokenizer

    def full(path, data):
        raise OutputError(f"no space left on device while writing {path}")

    monkeypatch.setattr(interop, "write_bytes", full)  # then the model cannot be written
    with pytest.raises(OutputError, match="no space left on device"):
        export(PARAMS, Layout(project))
    assert contents(exported) == before  # not the new tokenizer beside the old model
    assert sorted(p.name for p in exported.parent.iterdir() if p.name.startswith(".")) == []


def test_the_user_s_files_in_the_export_are_kept(project):
    exported = project / "artifacts/export"
    (exported / "README.md").write_text("my model card\n")
    (exported / "notes").mkdir()
    (exported / "notes/a.txt").write_text("a\n")
    weights = (exported / "model.safetensors").stat().st_ino
    export(PARAMS, Layout(project))
    assert (exported / "README.md").read_text() == "my model card\n"
    assert (exported / "notes/a.txt").read_text() == "a\n"
    assert (exported / "model.safetensors").stat().st_ino != weights  # a new unit


def test_an_export_that_is_a_link_is_refused_and_its_target_left_alone(project, tmp_path):
    exported = project / "artifacts/export"
    elsewhere = tmp_path / "elsewhere"
    exported.rename(elsewhere)
    exported.symlink_to(elsewhere)
    before = contents(elsewhere)
    with pytest.raises(OutputError, match="artifacts/export: is not a folder of its own"):
        export(PARAMS, Layout(project))
    assert contents(elsewhere) == before and exported.is_symlink()


def test_a_killed_export_leaves_nothing_in_the_way(project):
    exported = project / "artifacts/export"
    before = contents(exported)
    killed = subprocess.run(
        [sys.executable, "-c", "import os, sys\n"
         "from bert.storage import interop\n"
         "from bert.workflow.export import export\n"
         "from bert.workflow.layout import Layout\n"
         "from tests.test_export import PARAMS\n"
         "interop.write_bytes = lambda path, data: os._exit(9)\n"  # killed while writing
         "from pathlib import Path\n"
         "export(PARAMS, Layout(Path(sys.argv[1])))", str(project)], cwd=Path(__file__).parents[1])
    assert killed.returncode == 9
    assert contents(exported) == before
    staging = [p for p in exported.parent.iterdir() if p.name.startswith(".export.")]
    assert len(staging) == 1 and staging[0].is_dir()  # what the killed process left
    export(PARAMS, Layout(project))
    assert not staging[0].exists()  # removed by the next write, its process being gone
    assert json.loads((exported / "config.json").read_text())["vocab_size"] == 120
