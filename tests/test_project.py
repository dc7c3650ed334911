"""A project folder made outside a clone (python -m bert init-project) runs the workflow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bert.__main__ import main
from bert.workflow.params_page import params_yaml
from bert.workflow.project import DODO, init_project

ROOT = Path(__file__).resolve().parents[1]


def test_the_repository_s_dodo_is_the_one_a_new_project_gets():
    assert (ROOT / "dodo.py").read_text() == DODO


def test_init_project_writes_the_two_files_and_replaces_nothing(tmp_path, capsys):
    assert main(["init-project", str(tmp_path / "new")]) == 0
    assert (tmp_path / "new" / "dodo.py").read_text() == DODO
    assert (tmp_path / "new" / "params.yaml").read_text() == params_yaml()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "params.yaml").write_text("mine\n")
    assert main(["init-project", str(tmp_path / "mine")]) == 2
    assert "exists already, and is left alone" in capsys.readouterr().err
    assert (tmp_path / "mine" / "params.yaml").read_text() == "mine\n"
    assert not (tmp_path / "mine" / "dodo.py").exists()


@pytest.mark.slow
def test_the_workflow_runs_in_a_new_project(tmp_path):
    """doit in a folder init-project made, on a small run, prints the results table."""
    init_project(tmp_path)
    small = ["data.num_train_batches=4", "data.num_test_batches=2", "training.epochs=1",
             "model.dim_ff=32", "model.dim_model=16", "model.num_heads=2", "model.num_layers=1"]
    done = subprocess.run([sys.executable, "-m", "doit", *small], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "test MLM loss" in done.stdout
    assert list((tmp_path / "artifacts" / "runs").iterdir())[0].name.startswith("params+")
