"""Runs side by side, through doit: a run per set of parameters, each in its own folder;
overrides on the command line; sweeps run several at a time; ``python -m bert runs``; and
``doit clean`` of one run. Runs that share their data (or initial weights) share those
stages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bert.workflow.layout import LOCK_FILE
from bert.workflow.tasks import plots_available
from tests.workflow import (
    assert_same_run,
    cli_error,
    doit,
    layout_of,
    make_project,
    ran,
    run_dir,
    skipped,
    tiny,
)

LR = "params+learning_rate@0.002"  # the run of `doit training.learning_rate=0.002`
PICTURES = ("curves", "attention", "predictions") if plots_available() else ()


def run_tasks(run: str) -> list[str]:
    """The tasks of run ``run``, in the order doit runs them."""
    pictures = [f"plots:{run}:{p}" for p in PICTURES] or [f"plots:{run}"]
    return [f"train:{run}", f"evaluate:{run}", f"report:{run}", *pictures]


def contents(*folders: Path, locks: bool = True) -> dict[Path, bytes]:
    """Every file in ``folders`` (the lock files' records of their holders too, if ``locks``)."""
    return {path: path.read_bytes() for folder in folders for path in folder.rglob("*")
            if path.is_file() and (locks or path.name != LOCK_FILE)}


def runs_json(folder: Path) -> list[dict]:
    shown = subprocess.run([sys.executable, "-m", "bert", "runs", "--json"], cwd=folder,
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


@pytest.mark.slow
def test_a_second_run_leaves_the_first_alone_and_nothing_reruns_after(tmp_path):
    folder = make_project(tmp_path / "project", tiny())
    base = layout_of(folder, tiny())
    first = doit(folder)
    assert ran(first) == [f"data:{base.data}", f"init:{base.init}", *run_tasks("params")]
    before = contents(base.run_dir, base.data_dir, base.init_dir)

    second = doit(folder, "training.learning_rate=0.002")
    assert ran(second) == run_tasks(LR)  # the data and the initial weights are shared
    assert skipped(second) == [f"data:{base.data}", f"init:{base.init}"]
    assert contents(base.run_dir, base.data_dir, base.init_dir) == before  # to the byte

    third = doit(folder)  # it takes the run's lock again, and writes nothing else
    assert ran(third) == []
    assert skipped(third) == [f"data:{base.data}", f"init:{base.init}", *run_tasks("params")]
    assert ran(doit(folder, "training.learning_rate=0.002")) == []
    unlocked = {path: data for path, data in before.items() if path.name != LOCK_FILE}
    assert contents(base.run_dir, base.data_dir, base.init_dir, locks=False) == unlocked

    listed = {run["name"]: run for run in runs_json(folder)}
    assert sorted(listed) == ["params", LR]
    for name, run in listed.items():
        assert run["status"] == "done"
        assert run["results"] == json.loads((run_dir(folder, name) / "results.json").read_text())
    assert listed["params"]["overrides"] == {}
    assert listed[LR]["overrides"] == {"training.learning_rate": "0.002"}
    assert listed[LR]["params"]["training"]["learning_rate"] == 0.002
    assert listed[LR]["results"]["test_mlm_loss"] != listed["params"]["results"]["test_mlm_loss"]


@pytest.mark.parametrize(("variable", "expected"), [
    ("training.learning_rte=0.002", "did you mean 'training.learning_rate'?"),
    ("parms=x.yaml", "did you mean 'params'?"),
    ("trainng.epochs=3", "did you mean 'training.epochs'?"),
])
def test_a_misspelt_key_or_variable_is_one_line_with_the_right_one(tmp_path, variable,
                                                                   expected):
    folder = make_project(tmp_path / "project", tiny())
    result = doit(folder, variable, check=False)
    assert result.returncode != 0
    assert result.stderr.splitlines() == [result.stderr.strip()], result.stderr  # one line
    assert result.stderr.startswith(f"error: {variable}: ") and expected in result.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["dodo.py", "params.yaml"]


def test_a_stage_command_checks_its_settings_as_doit_does(project, capsys):
    line = cli_error(capsys, "train", "--set", "training.learning_rte=0.002")
    assert "did you mean 'training.learning_rate'?" in line
    line = cli_error(capsys, "train", "--set", "training.learning_rate=fast")
    assert line.startswith("error: training.learning_rate=fast on the command line: ")


def test_a_value_on_the_command_line_is_checked_like_the_file_s(tmp_path):
    folder = make_project(tmp_path / "project", tiny())
    result = doit(folder, "model.num_heads=3", check=False)
    assert result.returncode != 0 and len(result.stderr.splitlines()) == 1, result.stderr
    assert ("model.num_heads=3 on the command line: model.num_heads is 3, which does not "
            "divide model.dim_model (16)") in result.stderr


SWEEP = {"base": "params.yaml",
         "variants": {"shipped": {}, "lr": {"training.learning_rate": 0.02},
                      "heads": {"model.num_heads": 4}}}
# each variant, made alone, by the doit variables that make it
ALONE = {"tiny.shipped": ("params", ()),
         "tiny.lr": ("params+learning_rate@0.02", ("training.learning_rate=0.02",)),
         "tiny.heads": ("heads", ("run=heads", "model.num_heads=4"))}


@pytest.mark.slow
def test_a_sweep_two_at_a_time_ends_each_run_as_it_would_alone(tmp_path):
    folder = make_project(tmp_path / "sweep", tiny())
    (folder / "sweeps").mkdir()
    (folder / "sweeps/tiny.yaml").write_text(yaml.safe_dump(SWEEP))
    result = doit(folder, "sweep=sweeps/tiny.yaml", "-n", "2")
    tasks = ran(result)
    for run in ALONE:
        assert set(run_tasks(run)) <= set(tasks), tasks
    # shared stages once: one data set, and two sets of initial weights (the heads change
    # the model, the learning rate does not)
    assert len([t for t in tasks if t.startswith("data:")]) == 1
    assert len([t for t in tasks if t.startswith("init:")]) == 2
    assert sorted(p.name for p in (folder / "artifacts/init").iterdir()) == sorted(
        {layout_of(folder, tiny(model={"num_heads": 4})).init, layout_of(folder, tiny()).init})
    assert ran(doit(folder, "sweep=sweeps/tiny.yaml", "-n", "2")) == []

    alone = make_project(tmp_path / "alone", tiny())
    for sweep_run, (name, variables) in ALONE.items():
        doit(alone, *variables)
        assert_same_run(run_dir(folder, sweep_run), run_dir(alone, name))
    listed = {run["name"]: run for run in runs_json(folder)}
    assert sorted(listed) == sorted(ALONE)
    assert {run["sweep"] for run in listed.values()} == {"sweeps/tiny.yaml"}


@pytest.mark.slow
def test_doit_clean_of_one_run_leaves_the_others_and_the_data_they_use(tmp_path):
    folder = make_project(tmp_path / "project", tiny())
    doit(folder)
    doit(folder, "data.random_seed=5")  # other data, the same initial weights
    base, seeded = layout_of(folder, tiny()), layout_of(folder, tiny(data={"random_seed": 5}),
                                                        "params+data.random_seed@5")
    assert seeded.data != base.data and seeded.init == base.init
    kept = contents(base.run_dir, base.data_dir, base.init_dir)

    result = doit(folder, "clean", "data.random_seed=5")
    assert f"{base.init_dir.relative_to(folder)} is kept: the runs params use it" in (
        result.stdout)
    assert contents(base.run_dir, base.data_dir, base.init_dir) == kept
    for path in (seeded.model_weights, seeded.history, seeded.metrics, seeded.results,
                 *seeded.curves_plot(), seeded.train_data, seeded.test_data,
                 seeded.probe_nsp_data, seeded.probe_sop_data):  # its own data: no other uses it
        assert not path.exists(), path
    assert ran(doit(folder)) == []  # the other run is still complete
