"""The results document of each sentence task: the task's scores beside its own optimum, the
probes, and metrics files checked to hold what their task needs."""

from __future__ import annotations

import json
import math

import pytest

from bert.errors import DataFileError
from bert.storage.checkpoint import HISTORY_KEYS
from bert.workflow.report import read_metrics, results
from bert.workflow.sentence import score_keys
from tests.workflow import tiny_params

HISTORY = {"steps": {key: [0.5, 0.25] for key in HISTORY_KEYS},
           "epochs": [{"epoch": 1, "step": 2, "seconds": 1.0, "learning_rate": 0.01}],
           "batches_per_epoch": 2, "tokens_per_step": 128, "run": "r"}


def scores(task: str, base: float) -> dict:
    """Made-up scores of ``task``, each a distinct number."""
    keys = score_keys(task)
    return {**{key: base + i / 100 for i, key in enumerate(keys)}, "num_mlm_labels": 40,
            "num_examples": 16}


def optimum(task: str, bayes: bool = True) -> dict:
    """An optimum of ``task`` (without the bayes_ and topic_only_ keys: text data's)."""
    values = {"uniform_mlm_loss": 3.0, "unigram_mlm_loss": 2.5}
    if task != "none":
        values |= {f"chance_{task}_loss": math.log(2), f"chance_{task}_accuracy": 0.5}
    if bayes:
        values["bayes_mlm_loss"] = 1.0
        if task != "none":
            values |= {f"bayes_{task}_loss": 0.125, f"bayes_{task}_accuracy": 0.875,
                       f"topic_only_{task}_accuracy": 0.75 if task == "nsp" else 0.5}
    return values


def metrics(task: str, bayes: bool = True) -> dict:
    return {"sentence_task": task, "test": scores(task, 1.5), "train": scores(task, 1.25),
            "optimum": optimum(task, bayes),
            "probes": {probe: {"scores": scores(probe, 0.5), "optimum": optimum(probe, bayes)}
                       for probe in ("nsp", "sop")},
            "model": {"run": "r", "step": 2}}


@pytest.mark.parametrize("task", ["nsp", "sop"])
def test_a_sentence_task_is_reported_under_its_own_name_beside_its_optimum(task):
    document = results(tiny_params(data={"sentence_task": task}), metrics(task), HISTORY)
    other = {"nsp": "sop", "sop": "nsp"}[task]
    assert document["sentence_task"] == task
    assert not [key for key in document if other in key]
    test, train = metrics(task)["test"], metrics(task)["train"]
    assert document[f"test_{task}_loss"] == test[f"{task}_loss"]
    assert document[f"test_{task}_accuracy"] == test[f"{task}_accuracy"]
    assert document[f"train_{task}_loss"] == train[f"{task}_loss"]
    assert document["optimum"] == {
        "test_mlm_loss": 1.0, f"test_{task}_loss": 0.125, f"test_{task}_accuracy": 0.875,
        f"test_{task}_accuracy_topics_only": 0.75 if task == "nsp" else 0.5}
    assert document["baselines"] == {"uniform_mlm_loss": 3.0, "unigram_mlm_loss": 2.5,
                                     f"chance_{task}_loss": math.log(2),
                                     f"chance_{task}_accuracy": 0.5}
    assert document["gap_to_optimum"] == pytest.approx({
        "test_mlm_loss": 0.5, f"test_{task}_loss": test[f"{task}_loss"] - 0.125,
        f"test_{task}_accuracy": 0.875 - test[f"{task}_accuracy"]})


def test_without_a_sentence_task_there_is_no_sentence_score_but_the_probes():
    document = results(tiny_params(data={"sentence_task": "none"}), metrics("none"), HISTORY)
    outside = {key: value for key, value in document.items() if key not in ("probes", "params")}
    assert "nsp" not in json.dumps(outside) and "sop" not in json.dumps(outside)
    assert document["optimum"] == {"test_mlm_loss": 1.0}
    assert document["baselines"] == {"uniform_mlm_loss": 3.0, "unigram_mlm_loss": 2.5}
    assert set(document["probes"]) == {"nsp", "sop"}


def test_the_probes_show_the_head_against_the_optimum_the_topics_and_chance():
    document = results(tiny_params(), metrics("nsp"), HISTORY)
    probe = metrics("nsp")["probes"]["sop"]["scores"]
    sop = document["probes"]["sop"]
    assert sop["gap_to_optimum"] == pytest.approx({"loss": probe["sop_loss"] - 0.125,
                                                   "accuracy": 0.875 - probe["sop_accuracy"]})
    assert sop == {"loss": probe["sop_loss"], "accuracy": probe["sop_accuracy"], "examples": 16,
                   "chance": {"loss": math.log(2), "accuracy": 0.5},
                   "optimum": {"loss": 0.125, "accuracy": 0.875, "accuracy_topics_only": 0.5},
                   "gap_to_optimum": sop["gap_to_optimum"]}
    assert document["probes"]["nsp"]["optimum"]["accuracy_topics_only"] == 0.75
    text = results(tiny_params(), metrics("nsp", bayes=False), HISTORY)  # no optimum
    assert "optimum" not in text and "gap_to_optimum" not in text
    for part in text["probes"].values():
        assert "optimum" not in part and "gap_to_optimum" not in part
        assert part["chance"] == {"loss": math.log(2), "accuracy": 0.5}


@pytest.mark.parametrize("task", ["nsp", "sop", "none"])
def test_metrics_are_read_with_the_keys_of_their_task(tmp_path, task):
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(metrics(task)))
    assert read_metrics(path) == metrics(task)
    if task != "none":
        damaged = metrics(task)
        del damaged["test"][f"{task}_accuracy"]
        path.write_text(json.dumps(damaged))
        with pytest.raises(DataFileError, match=f"'test.{task}_accuracy' is missing"):
            read_metrics(path)


def test_metrics_of_an_unknown_task_or_without_probes_are_refused(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({**metrics("sop"), "sentence_task": "xyz"}))
    with pytest.raises(DataFileError, match="'sentence_task' is 'xyz'.*run `doit evaluate`"):
        read_metrics(path)
    no_probes = metrics("nsp")
    del no_probes["probes"], no_probes["sentence_task"]  # as written before the probes
    path.write_text(json.dumps(no_probes))
    with pytest.raises(DataFileError, match="'probes' is missing"):
        read_metrics(path)
