"""The results table: one row per score, the gap with the sign of ``bert.workflow.gap``."""

from __future__ import annotations

from bert.views.tables import comparison_rows, results_table

OPTIMUM = {"bayes_mlm_loss": 1.0, "unigram_mlm_loss": 2.5, "uniform_mlm_loss": 3.0,
           "bayes_nsp_loss": 0.25, "chance_nsp_loss": 0.6931, "bayes_nsp_accuracy": 0.875,
           "chance_nsp_accuracy": 0.5}
METRICS = {"test": {"mlm_loss": 1.5, "nsp_loss": 0.5, "nsp_accuracy": 0.75,
                    "mlm_accuracy": 0.625},
           "train": {"mlm_loss": 1.25},
           "optimum": OPTIMUM}


def test_rows_hold_the_model_the_references_and_the_gap():
    rows = {row[0]: row[1:] for row in comparison_rows(METRICS, OPTIMUM)}
    assert rows["test MLM loss"] == (1.5, 1.0, 2.5, 3.0, 0.5)
    assert rows["test NSP loss"] == (0.5, 0.25, None, 0.6931, 0.25)
    assert rows["test NSP accuracy"] == (0.75, 0.875, None, 0.5, 0.125)
    assert rows["test MLM accuracy"] == (0.625, None, None, None, None)
    assert rows["train MLM loss"] == (1.25, None, None, None, None)


def test_the_table_is_fixed_width_with_a_dash_where_there_is_nothing():
    lines = results_table(METRICS).splitlines()
    assert lines[0].split() == ["model", "Bayes-opt", "unigram", "uniform", "gap"]
    assert lines[1] == f"{'test MLM loss':<18}" + "".join(
        f"{v:>11.4f}" for v in (1.5, 1.0, 2.5, 3.0, 0.5))
    assert lines[4].split() == ["test", "MLM", "accuracy", "0.6250", "-", "-", "-", "-"]
    assert len({len(line) for line in lines}) == 1
