"""The report stage: the results JSON, with the classic keys first-class and everything else.

The scores of the sentence task are named after it (``test_nsp_accuracy``, ``test_sop_accuracy``;
none without a sentence task: ``bert.workflow.sentence``), beside the task's own optimum. Under
``probes``, the model's sentence head on the NSP and the SOP probe sets, each beside its optimum,
the topic-only rule and chance, whatever the task it was trained on.

The results file (``results.json`` in the run's folder) carries its ``schema``.
"""

from __future__ import annotations

from pathlib import Path

from bert import __version__
from bert.errors import DataFileError, remake_hint
from bert.storage.atomic import NUMBER, read_json, shape_problem, write_json
from bert.storage.checkpoint import HISTORY_KEYS
from bert.workflow.gap import gap
from bert.workflow.layout import Layout
from bert.workflow.params import Params
from bert.workflow.provenance import check_model_id
from bert.workflow.sentence import (
    LABELLED_TASKS,
    SENTENCE_TASKS,
    has_sentence_label,
    score_keys,
    task_of,
)
from bert.workflow.stages import stage

FIX_METRICS = remake_hint("evaluate")
FIX_HISTORY = remake_hint("train")
RESULTS_SCHEMA = "bert-from-scratch/results"

def scores_shape(task: str) -> dict:
    """What ``bert.workflow.evaluate.score`` gives for examples of ``task``."""
    return {key: NUMBER for key in (*score_keys(task), "num_mlm_labels", "num_examples")}


def optimum_keys(task: str) -> tuple[str, ...]:
    """The baselines every test set of ``task`` has (the synthetic language's also has the
    ``bayes_*`` scores): the MLM ones, and chance for the sentence task."""
    chance = ((f"chance_{task}_loss", f"chance_{task}_accuracy") if has_sentence_label(task)
              else ())
    return ("uniform_mlm_loss", "unigram_mlm_loss", *chance)


def metrics_shape(task: str) -> dict:
    """The shape of the evaluate stage's metrics for a model of sentence task ``task``."""
    return {"test": scores_shape(task), "train": scores_shape(task),
            "optimum": {key: NUMBER for key in optimum_keys(task)},
            "probes": {probe: {"scores": scores_shape(probe),
                               "optimum": {key: NUMBER for key in optimum_keys(probe)}}
                       for probe in LABELLED_TASKS},
            "model": {"run": str, "step": int}}


METRICS_SHAPE = metrics_shape("nsp")  # a metrics file written before the sentence tasks
EPOCH_SHAPE = {"epoch": int, "step": int, "seconds": (int, float), "learning_rate": NUMBER}
HISTORY_SHAPE = {"steps": {key: [NUMBER] for key in HISTORY_KEYS}, "epochs": [EPOCH_SHAPE],
                 "batches_per_epoch": int, "tokens_per_step": int, "run": str}


def read_metrics(path: Path, fix: str = FIX_METRICS) -> dict:
    """``artifacts/metrics.json``, checked to have the shape the evaluate stage writes for its
    sentence task."""
    metrics = read_json(path, fix, {})
    task = task_of(metrics)
    problem = (f"'sentence_task' is {task!r}" if task not in SENTENCE_TASKS
               else shape_problem(metrics, metrics_shape(task)))
    if problem:
        raise DataFileError(f"{path}: not the expected contents ({problem}); {fix}")
    return metrics


def read_history(path: Path, fix: str = FIX_HISTORY) -> dict:
    """``artifacts/history.json``, checked to have the shape the train stage writes."""
    return read_json(path, fix, HISTORY_SHAPE)


def _gap(key: str, score: float | None, optimum: float | None) -> float | None:
    """The gap to the optimum, or None (null) when either is not a number (JSON stores NaN as
    null)."""
    return None if score is None or optimum is None else gap(key, score, optimum)


def probe_results(probe: str, scores: dict, optimum: dict) -> dict:
    """The sentence head on the probe set of task ``probe`` (nsp or sop): its loss and
    accuracy, the optimum's (with the topic-only rule's accuracy), chance, and the gaps; without
    an optimum (text data), ``optimum`` and ``gap_to_optimum`` are left out."""
    loss, accuracy = scores[f"{probe}_loss"], scores[f"{probe}_accuracy"]
    document = {"loss": loss, "accuracy": accuracy, "examples": scores["num_examples"],
                "chance": {"loss": optimum[f"chance_{probe}_loss"],
                           "accuracy": optimum[f"chance_{probe}_accuracy"]}}
    if f"bayes_{probe}_loss" not in optimum:
        return document
    best_loss, best_accuracy = optimum[f"bayes_{probe}_loss"], optimum[f"bayes_{probe}_accuracy"]
    document["optimum"] = {"loss": best_loss, "accuracy": best_accuracy,
                           "accuracy_topics_only": optimum.get(f"topic_only_{probe}_accuracy")}
    document["gap_to_optimum"] = {"loss": _gap("loss", loss, best_loss),
                                  "accuracy": _gap("accuracy", accuracy, best_accuracy)}
    return document


def results(params: Params, metrics: dict, history: dict) -> dict:
    """The results document: final losses and accuracies, the optimum and the baselines, the
    gaps to the optimum, the probes, training time and throughput, the parameters and the
    version. Without an optimum (text data), ``optimum`` and ``gap_to_optimum`` are left out;
    without a sentence task, every sentence score of the task."""
    test, train, optimum = metrics["test"], metrics["train"], metrics["optimum"]  # NaN is None
    task = task_of(metrics)
    has_optimum = "bayes_mlm_loss" in optimum  # text data has none
    sentence = has_sentence_label(task)
    epochs = history["epochs"]
    seconds = sum(record["seconds"] for record in epochs)
    steps = len(history["steps"]["loss_total"])
    task_keys = (f"{task}_loss", f"{task}_accuracy") if sentence else ()
    document = {
        "train_mlm_loss": train["mlm_loss"],
        "test_mlm_loss": test["mlm_loss"],
        **{f"test_{key}": test[key] for key in task_keys},
        "test_mlm_accuracy": test["mlm_accuracy"],
        "train_mlm_accuracy": train["mlm_accuracy"],
        **{f"train_{key}": train[key] for key in task_keys},
        "sentence_task": task,
        "optimum": None,  # filled in below when the data has one
        "baselines": {key: optimum[key] for key in optimum_keys(task)},
        "gap_to_optimum": None,
        "probes": {probe: probe_results(probe, part["scores"], part["optimum"])
                   for probe, part in metrics["probes"].items()},
        "evaluated": {"test_examples": test["num_examples"],
                      "test_mlm_labels": test["num_mlm_labels"],
                      "train_examples": train["num_examples"],
                      "train_mlm_labels": train["num_mlm_labels"]},
        "training": {
            "steps": steps,
            "epochs": len(epochs),
            "seconds": seconds,
            "tokens_per_second": steps * history["tokens_per_step"] / seconds if seconds else None,
            "final_learning_rate": history["steps"]["learning_rate"][-1] if steps else None,
            "processes": params.training.processes,
            "micro_batches": params.training.micro_batches,
            "per_epoch": epochs,
        },
        "params": params.subset(stage("report").reads),
        "package_version": __version__,
        "schema": RESULTS_SCHEMA,
    }
    if not has_optimum:
        del document["optimum"], document["gap_to_optimum"]
        return document
    document["optimum"] = {f"test_{key}": optimum[f"bayes_{key}"]
                           for key in ("mlm_loss", *task_keys)}
    if f"topic_only_{task}_accuracy" in optimum:  # test sets made before it was computed lack it
        document["optimum"][f"test_{task}_accuracy_topics_only"] = (
            optimum[f"topic_only_{task}_accuracy"])
    document["gap_to_optimum"] = {
        f"test_{key}": _gap(key, test[key], optimum[f"bayes_{key}"])
        for key in ("mlm_loss", *task_keys)
    }
    return document


def write_results(params: Params, layout: Layout) -> dict:
    """The report stage: read the metrics and the history, check that both are of the model
    these parameters train, write the results JSON."""
    target = layout.results
    metrics, history = read_metrics(layout.metrics), read_history(layout.history)
    check_model_id(metrics["model"], params, layout, layout.metrics, "evaluate")
    check_model_id({"run": history["run"], "step": len(history["steps"]["loss_total"])},
                   params, layout, layout.history, "train")
    document = results(params, metrics, history)
    write_json(target, document)
    return document
