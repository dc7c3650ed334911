"""The command of the train stage: one process as always, or the ranks under the launcher."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bert.errors import ParamsError
from bert.workflow.launch import find_launcher, train_command
from tests.workflow import tiny_params

COMMAND = [sys.executable, "-m", "bert", "train", "--params", "p.yaml", "--run", "p"]


def test_one_process_runs_the_stage_as_always():
    assert train_command(tiny_params(), COMMAND, "p.yaml") == COMMAND


def test_several_run_under_the_launcher(monkeypatch):
    import bert.workflow.launch as launch

    monkeypatch.setattr(launch, "mpi_available", lambda: True)
    monkeypatch.setattr(launch, "find_launcher", lambda command: ["/bin/launch", "-x"])
    params = tiny_params(training={"processes": 2, "micro_batches": 2})
    assert train_command(params, COMMAND, "p.yaml") == ["/bin/launch", "-x", "-n", "2", *COMMAND]


def test_a_launcher_with_arguments_is_found_on_path_and_keeps_them(tmp_path, monkeypatch):
    launcher = tmp_path / "site-launch"
    launcher.write_text("#!/bin/sh\n")
    launcher.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_launcher("site-launch --mpi=pmi2 -p 'big queue'") == [
        str(launcher), "--mpi=pmi2", "-p", "big queue"]


def test_the_launcher_beside_python_comes_first(tmp_path, monkeypatch):
    beside = tmp_path / "bin"
    beside.mkdir()
    (beside / "mpiexec").write_text("#!/bin/sh\n")
    (beside / "mpiexec").chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(beside / "python"))
    monkeypatch.setenv("PATH", "")
    assert find_launcher("mpiexec -f hosts") == [str(beside / "mpiexec"), "-f", "hosts"]


def test_a_missing_launcher_names_the_key_and_the_fix(monkeypatch):
    import bert.workflow.launch as launch

    monkeypatch.setattr(launch, "mpi_available", lambda: True)  # the launcher is checked alone
    monkeypatch.setenv("PATH", "")
    monkeypatch.setattr(sys, "executable", str(Path("/nonexistent/python")))
    with pytest.raises(ParamsError, match=r"training.mpiexec is 'nothing-here'.*"
                                          r"pip install -e \"\.\[mpi\]\""):
        find_launcher("nothing-here")
    with pytest.raises(ParamsError, match=r"^p.yaml: training.mpiexec"):
        train_command(tiny_params(training={"processes": 2, "micro_batches": 2,
                                            "mpiexec": "nothing-here"}), COMMAND, "p.yaml")


def test_without_mpi4py_the_message_gives_the_install_command(monkeypatch):
    import bert.workflow.launch as launch

    monkeypatch.setattr(launch, "mpi_available", lambda: False)
    with pytest.raises(ParamsError, match=r"^p.yaml: training.processes is 2, but mpi4py is not "
                                          r"installed: pip install -e \"\.\[mpi\]\"$"):
        train_command(tiny_params(training={"processes": 2, "micro_batches": 2}), COMMAND,
                      "p.yaml")
