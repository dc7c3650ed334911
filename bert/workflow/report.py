"""The report stage: the results JSON, with the classic keys first-class and everything else."""

from __future__ import annotations

from bert import __version__
from bert.errors import remake_hint
from bert.storage.atomic import read_json, write_json
from bert.workflow.gap import gap
from bert.workflow.layout import Layout
from bert.workflow.params import Params
from bert.workflow.stages import stage

FIX_METRICS = remake_hint("evaluate")
FIX_HISTORY = remake_hint("train")


def results(params: Params, metrics: dict, history: dict) -> dict:
    """The results document: final losses and accuracies, the optimum and the baselines, the
    gaps to the optimum, training time and throughput, the parameters and the version."""
    test, train, optimum = metrics["test"], metrics["train"], metrics["optimum"]
    epochs = history["epochs"]
    seconds = sum(record["seconds"] for record in epochs)
    steps = len(history["steps"]["loss_total"])
    return {
        "train_mlm_loss": train["mlm_loss"],
        "test_mlm_loss": test["mlm_loss"],
        "test_nsp_loss": test["nsp_loss"],
        "test_nsp_accuracy": test["nsp_accuracy"],
        "test_mlm_accuracy": test["mlm_accuracy"],
        "train_mlm_accuracy": train["mlm_accuracy"],
        "train_nsp_loss": train["nsp_loss"],
        "train_nsp_accuracy": train["nsp_accuracy"],
        "optimum": {"test_mlm_loss": optimum["bayes_mlm_loss"],
                    "test_nsp_loss": optimum["bayes_nsp_loss"],
                    "test_nsp_accuracy": optimum["bayes_nsp_accuracy"]},
        "baselines": {"uniform_mlm_loss": optimum["uniform_mlm_loss"],
                      "unigram_mlm_loss": optimum["unigram_mlm_loss"],
                      "chance_nsp_loss": optimum["chance_nsp_loss"],
                      "chance_nsp_accuracy": optimum["chance_nsp_accuracy"]},
        "gap_to_optimum": {
            f"test_{key}": gap(key, test[key], optimum[f"bayes_{key}"])
            for key in ("mlm_loss", "nsp_loss", "nsp_accuracy")
        },
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
    }


def write_results(params: Params, layout: Layout = Layout()) -> dict:
    """The report stage: read the metrics and the history, write the results JSON."""
    document = results(params, read_json(layout.metrics, FIX_METRICS),
                       read_json(layout.history, FIX_HISTORY))
    write_json(layout.results(params), document)
    return document
