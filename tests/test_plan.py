"""What ``doit`` runs (``bert.workflow.plan``): the runs its command line asks for, their tasks,
and ``doit clean`` of shared folders."""

from __future__ import annotations

import pytest
import yaml

from bert.errors import ParamsError
from bert.parallel.extra import mpi_available
from bert.workflow import lock
from bert.workflow.plan import Plan, clean_shared, runs_asked
from bert.workflow.run_record import RunOrigin, record_run
from tests.workflow import layout_of, tiny, tiny_params, write_params


@pytest.fixture
def folder(tmp_path, monkeypatch):
    write_params(tmp_path, tiny())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(lock, "_claimed", {})  # claims of this test alone
    return tmp_path


def test_the_runs_of_the_command_line(folder):
    (run,) = runs_asked({})
    assert (run.name, run.base, run.overrides) == ("params", "params.yaml", {})
    (run,) = runs_asked({"training.learning_rate": "0.002"})
    assert run.name == "params+learning_rate@0.002" and run.params.training.learning_rate == 0.002
    assert run.command("train")[-4:] == ["--run", "params+learning_rate@0.002", "--set",
                                         "training.learning_rate=0.002"]
    (run,) = runs_asked({"run": "fast", "training.learning_rate": "0.002"})
    assert run.name == "fast" and run.layout.run_dir.name == "fast"
    write_params(folder, tiny(), "other.yaml")
    assert runs_asked({"params": "other.yaml"})[0].name == "other"


def test_a_sweep_s_runs_with_the_command_line_s_keys_on_top(folder):
    (folder / "lr.yaml").write_text(yaml.safe_dump(
        {"variants": {"a": {}, "b": {"training.learning_rate": 0.02}}}))
    runs = runs_asked({"sweep": "lr.yaml"})
    assert [run.name for run in runs] == ["lr.a", "lr.b"]
    assert all(run.quiet == {"training.threads": "1"} for run in runs)  # no part of the name
    assert runs[1].overrides == {"training.learning_rate": "0.02"}
    runs = runs_asked({"sweep": "lr.yaml", "training.epochs": "3"})
    assert [run.name for run in runs] == ["lr.a+epochs@3", "lr.b+epochs@3"]
    assert all(run.params.training.epochs == 3 for run in runs)
    with pytest.raises(ParamsError, match="a sweep names its base file and its runs; drop "
                       "params= and run="):
        runs_asked({"sweep": "lr.yaml", "run": "x"})


def test_runs_share_the_tasks_of_what_they_share(folder):
    plan = Plan(runs_asked({}) + runs_asked({"training.learning_rate": "0.02"})
                + runs_asked({"model.dim_ff": "20"}))
    assert len(list(plan.shared("data"))) == 1
    assert len(list(plan.shared("init"))) == 2  # dim_ff changes the initial weights
    assert [task["name"] for task in plan.per_run("train")] == [
        "params", "params+learning_rate@0.02", "params+dim_ff@20"]
    assert sorted(lock._claimed) == sorted(run.layout.run_lock for run in plan.runs)


@pytest.mark.skipif(not mpi_available(), reason='needs the mpi extra: pip install -e ".[mpi]"')
def test_a_launcher_that_cannot_be_found_is_a_params_error_before_any_task(folder):
    write_params(folder, tiny(training={"processes": 2, "micro_batches": 2,
                                        "mpiexec": "no-such-launcher"}))
    with pytest.raises(ParamsError, match="params.yaml: training.mpiexec is 'no-such-launcher'"):
        Plan(runs_asked({}))


def started(folder, run: str, **changes) -> None:
    """A record of run ``run`` of the tiny parameters with ``changes``, as training writes it."""
    params = tiny_params(**changes)
    record_run(params, layout_of(folder, params, run), RunOrigin("params.yaml"), 12)


def test_cleaning_a_shared_folder_keeps_what_another_run_uses(folder, capsys):
    base = layout_of(folder, tiny())
    data = base.files(("train_data", "test_data"))
    for path in data:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"data")
    started(folder, "params")
    started(folder, "fast", training={"learning_rate": 0.02})
    started(folder, "seeded", data={"random_seed": 5})  # other data: does not count
    clean_shared(data, "data_dir", base.data_dir, {"params"})
    assert capsys.readouterr().out == f"{base.data_dir} is kept: the runs fast use it\n"
    assert all(path.read_bytes() == b"data" for path in data)
    clean_shared(data, "data_dir", base.data_dir, {"params", "fast"})
    assert not any(path.exists() for path in data)
    assert "train.h5 removed" in capsys.readouterr().out
