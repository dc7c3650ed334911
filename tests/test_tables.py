"""The results table: one row per score, the gap with the sign of ``bert.workflow.gap``."""

from __future__ import annotations

from bert.views.tables import comparison_rows, probe_rows, results_table

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


def test_the_rows_of_sop_are_its_own_and_none_has_no_sentence_row():
    optimum = {"bayes_mlm_loss": 1.0, "unigram_mlm_loss": 2.5, "uniform_mlm_loss": 3.0,
               "bayes_sop_loss": 0.125, "chance_sop_loss": 0.6931, "bayes_sop_accuracy": 0.9375,
               "chance_sop_accuracy": 0.5}
    metrics = {"sentence_task": "sop", "optimum": optimum, "train": {"mlm_loss": 1.25},
               "test": {"mlm_loss": 1.5, "sop_loss": 0.5, "sop_accuracy": 0.75,
                        "mlm_accuracy": 0.625}}
    rows = {row[0]: row[1:] for row in comparison_rows(metrics, optimum)}
    assert list(rows) == ["test MLM loss", "test SOP loss", "test SOP accuracy",
                          "test MLM accuracy", "train MLM loss"]
    assert rows["test SOP loss"] == (0.5, 0.125, None, 0.6931, 0.375)
    assert rows["test SOP accuracy"] == (0.75, 0.9375, None, 0.5, 0.1875)
    mlm = {key: value for key, value in optimum.items() if "sop" not in key}
    none = {"sentence_task": "none", "optimum": mlm, "train": {"mlm_loss": 1.25},
            "test": {"mlm_loss": 1.5, "mlm_accuracy": 0.625}}
    assert [row[0] for row in comparison_rows(none, mlm)] == [
        "test MLM loss", "test MLM accuracy", "train MLM loss"]


def test_the_probes_are_a_second_table_with_the_topics_only_rule():
    probes = {task: {"scores": {f"{task}_loss": 0.5, f"{task}_accuracy": 0.75},
                     "optimum": {f"bayes_{task}_loss": 0.125, f"bayes_{task}_accuracy": 0.875,
                                 f"topic_only_{task}_accuracy": topics,
                                 f"chance_{task}_loss": 0.6931, f"chance_{task}_accuracy": 0.5}}
              for task, topics in (("nsp", 0.8125), ("sop", 0.5))}
    assert probe_rows(probes) == [
        ("NSP probe accuracy", 0.75, 0.875, 0.8125, 0.5, 0.125),
        ("NSP probe loss", 0.5, 0.125, None, 0.6931, 0.375),
        ("SOP probe accuracy", 0.75, 0.875, 0.5, 0.5, 0.125),
        ("SOP probe loss", 0.5, 0.125, None, 0.6931, 0.375)]
    lines = results_table({**METRICS, "probes": probes}).splitlines()
    assert lines[6] == ""
    assert lines[7].split() == ["sentence", "head", "model", "Bayes-opt", "topics", "chance",
                                "gap"]
    assert lines[8].split() == ["NSP", "probe", "accuracy", "0.7500", "0.8750", "0.8125",
                                "0.5000", "0.1250"]
    assert len(lines) == 12 and len({len(line) for line in lines if line}) == 1
