"""The report stage (``bert.workflow.report``): the results JSON of a run, from its metrics
and its history."""

from __future__ import annotations

import json

from bert.workflow.report import RESULTS_SCHEMA, write_results
from tests.workflow import layout_of, tiny, tiny_params


def test_the_results_hold_the_scores_the_optimum_and_the_run(project):
    layout = layout_of(project, tiny())
    document = write_results(tiny_params(), layout)
    assert json.loads(layout.results.read_text()) == document
    metrics = json.loads(layout.metrics.read_text())
    assert document["schema"] == RESULTS_SCHEMA
    assert document["test_mlm_loss"] == metrics["test"]["mlm_loss"]
    assert document["optimum"]["test_mlm_loss"] == metrics["optimum"]["bayes_mlm_loss"]
    assert document["gap_to_optimum"]["test_mlm_loss"] == (
        metrics["test"]["mlm_loss"] - metrics["optimum"]["bayes_mlm_loss"])
    assert document["training"]["steps"] == 12 and len(document["training"]["per_epoch"]) == 2


def test_a_score_stored_as_null_gives_a_null_gap_not_a_type_error(project):
    """JSON stores NaN as null; the report carries it through instead of failing."""
    layout = layout_of(project, tiny())
    metrics = json.loads(layout.metrics.read_text())
    metrics["optimum"]["bayes_mlm_loss"] = None
    layout.metrics.write_text(json.dumps(metrics))
    document = write_results(tiny_params(), layout)
    assert document["gap_to_optimum"]["test_mlm_loss"] is None
    assert document["optimum"]["test_mlm_loss"] is None
