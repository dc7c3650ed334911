"""The report stage: the results JSON, with the classic keys first-class and everything else.

The results file (``results.json`` in the run's folder) carries its ``schema``, and the run it
reports on.
"""

from __future__ import annotations

from pathlib import Path

from bert import __version__
from bert.errors import remake_hint
from bert.storage.atomic import NUMBER, read_json, write_json
from bert.storage.checkpoint import HISTORY_KEYS
from bert.workflow.gap import gap
from bert.workflow.layout import Layout
from bert.workflow.params import Params
from bert.workflow.provenance import check_model_id
from bert.workflow.stages import stage

FIX_METRICS = remake_hint("evaluate")
FIX_HISTORY = remake_hint("train")
RESULTS_SCHEMA = "bert-from-scratch/results"

SCORES_SHAPE = {key: NUMBER for key in ("mlm_loss", "mlm_accuracy", "nsp_loss", "nsp_accuracy",
                                        "num_mlm_labels", "num_examples")}
# the baselines every test set has; the synthetic language's also has the bayes_* scores
OPTIMUM_KEYS = ("uniform_mlm_loss", "unigram_mlm_loss", "chance_nsp_loss", "chance_nsp_accuracy")
METRICS_SHAPE = {"test": SCORES_SHAPE, "train": SCORES_SHAPE,
                 "optimum": {key: NUMBER for key in OPTIMUM_KEYS},
                 "model": {"run": str, "step": int}}
EPOCH_SHAPE = {"epoch": int, "step": int, "seconds": (int, float), "learning_rate": NUMBER}
HISTORY_SHAPE = {"steps": {key: [NUMBER] for key in HISTORY_KEYS}, "epochs": [EPOCH_SHAPE],
                 "batches_per_epoch": int, "tokens_per_step": int, "run": str}


def read_metrics(path: Path, fix: str = FIX_METRICS) -> dict:
    """``artifacts/metrics.json``, checked to have the shape the evaluate stage writes."""
    return read_json(path, fix, METRICS_SHAPE)


def read_history(path: Path, fix: str = FIX_HISTORY) -> dict:
    """``artifacts/history.json``, checked to have the shape the train stage writes."""
    return read_json(path, fix, HISTORY_SHAPE)


def _gap(key: str, score: float | None, optimum: float | None) -> float | None:
    """The gap to the optimum, or None (null) when either is not a number (JSON stores NaN as
    null)."""
    return None if score is None or optimum is None else gap(key, score, optimum)


def results(params: Params, metrics: dict, history: dict) -> dict:
    """The results document: final losses and accuracies, the optimum and the baselines, the
    gaps to the optimum, training time and throughput, the parameters and the version.
    Without an optimum (text data), ``optimum`` and ``gap_to_optimum`` are left out."""
    test, train, optimum = metrics["test"], metrics["train"], metrics["optimum"]  # NaN is None
    has_optimum = "bayes_mlm_loss" in optimum  # text data has none
    epochs = history["epochs"]
    seconds = sum(record["seconds"] for record in epochs)
    steps = len(history["steps"]["loss_total"])
    document = {
        "train_mlm_loss": train["mlm_loss"],
        "test_mlm_loss": test["mlm_loss"],
        "test_nsp_loss": test["nsp_loss"],
        "test_nsp_accuracy": test["nsp_accuracy"],
        "test_mlm_accuracy": test["mlm_accuracy"],
        "train_mlm_accuracy": train["mlm_accuracy"],
        "train_nsp_loss": train["nsp_loss"],
        "train_nsp_accuracy": train["nsp_accuracy"],
        "optimum": None,  # filled in below when the data has one
        "baselines": {"uniform_mlm_loss": optimum["uniform_mlm_loss"],
                      "unigram_mlm_loss": optimum["unigram_mlm_loss"],
                      "chance_nsp_loss": optimum["chance_nsp_loss"],
                      "chance_nsp_accuracy": optimum["chance_nsp_accuracy"]},
        "gap_to_optimum": None,
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
    document["optimum"] = {"test_mlm_loss": optimum["bayes_mlm_loss"],
                           "test_nsp_loss": optimum["bayes_nsp_loss"],
                           "test_nsp_accuracy": optimum["bayes_nsp_accuracy"]}
    if "topic_only_nsp_accuracy" in optimum:  # test sets written before it was computed lack it
        document["optimum"]["test_nsp_accuracy_topics_only"] = optimum["topic_only_nsp_accuracy"]
    document["gap_to_optimum"] = {
        f"test_{key}": _gap(key, test[key], optimum[f"bayes_{key}"])
        for key in ("mlm_loss", "nsp_loss", "nsp_accuracy")
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
