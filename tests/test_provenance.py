"""Which run a file belongs to (``bert.workflow.provenance``): a stage never reads a model, a
history or metrics of another run as its own, and says which stage makes the right one."""

from __future__ import annotations

import json
import shutil

from tests.workflow import cli_error, layout_of, tiny, write_params


def test_the_initial_weights_as_model_are_refused(project, capsys):
    layout = layout_of(project, tiny())
    shutil.copy(layout.init_weights, layout.model_weights)
    for stage in ("evaluate", "export"):
        line = cli_error(capsys, stage)
        assert "artifacts/runs/params/model.h5: has no mark of the run that trained it" in line
        assert "delete it and run `doit train`" in line


def test_the_model_of_other_parameters_is_refused(project, capsys):
    write_params(project, tiny(training={"learning_rate": 0.02}))  # the same run name
    assert "model.h5: comes from another run" in cli_error(capsys, "evaluate")
    write_params(project, tiny(training={"epochs": 3}))
    line = cli_error(capsys, "evaluate")
    assert "model.h5: is from step 12 of the run, not from the end of" in line
    assert "metrics.json: is from step 12" in cli_error(capsys, "report")


def test_the_model_of_another_run_folder_is_refused(project, capsys):
    """A run's folder copied under another name, then trained with other parameters: its
    stages see the copied files for what they are."""
    shutil.copytree(project / "artifacts/runs/params", project / "artifacts/runs/fast")
    line = cli_error(capsys, "evaluate", "--run", "fast", "--set", "training.learning_rate=0.02")
    assert "artifacts/runs/fast/model.h5: comes from another run" in line


def test_metrics_of_another_run_are_not_reported(project, capsys):
    metrics_file = layout_of(project, tiny()).metrics
    metrics = json.loads(metrics_file.read_text())
    metrics["model"]["run"] = "0123456789abcdef"
    metrics_file.write_text(json.dumps(metrics))
    assert "metrics.json: comes from another run" in cli_error(capsys, "report")
