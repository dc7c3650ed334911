"""Scoring a model on a dataset, beside the Bayes-optimal scores and the baselines.

The MLM loss is the mean cross-entropy over every labelled position of the set (not a mean of
batch means), the NSP loss the mean over examples; accuracies count argmax hits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import numpy as np

from bert.core.config import BertConfig
from bert.core.labels import IGNORE_INDEX
from bert.core.layers import cross_entropy_forward
from bert.core.model import predict
from bert.data.datasets import load_dataset, load_optimum
from bert.storage.atomic import write_json
from bert.workflow.layout import Layout
from bert.workflow.params import Params, bert_config
from bert.workflow.progress import progress_bar
from bert.workflow.provenance import load_trained_model, model_id

log = logging.getLogger(__name__)

SCORE_KEYS = ("mlm_loss", "mlm_accuracy", "nsp_loss", "nsp_accuracy")  # what ``score`` measures


def score(
    params: Mapping[str, np.ndarray],
    config: BertConfig,
    data: Mapping[str, np.ndarray],
    batch_size: int,
    num_examples: int | None = None,
    advance: Callable[[int], object] | None = None,
) -> dict[str, float]:
    """Losses and accuracies of the model over the first ``num_examples`` examples (all: None;
    all, too, when the set has fewer). ``num_examples`` in the result is the number scored.
    ``advance`` is called with the number of examples of each batch once it is scored.

    data: the five example arrays (N, T) / (N,). Runs in inference mode (no dropout).
    """
    total = len(data["nsp_labels"])
    if num_examples is not None:
        total = min(num_examples, total)
    sums = dict.fromkeys(("mlm_nll", "mlm_hits", "nsp_nll", "nsp_hits"), 0.0)
    num_labels = 0
    for start in range(0, total, batch_size):
        rows = slice(start, min(start + batch_size, total))
        labels = data["mlm_labels"][rows]
        labelled = labels != IGNORE_INDEX  # (B, T)
        out = predict(params, config, data["input_ids"][rows], data["token_type_ids"][rows],
                      data["attention_mask"][rows], mlm_positions=labelled)
        mlm_targets = labels[labelled]  # (M,)
        nsp_targets = data["nsp_labels"][rows]  # (B,)
        mlm_loss, _ = cross_entropy_forward(out["mlm_logits"], mlm_targets)
        nsp_loss, _ = cross_entropy_forward(out["nsp_logits"], nsp_targets)
        sums["mlm_nll"] += mlm_loss * len(mlm_targets)
        sums["mlm_hits"] += int(np.sum(out["mlm_logits"].argmax(-1) == mlm_targets))
        sums["nsp_nll"] += nsp_loss * len(nsp_targets)
        sums["nsp_hits"] += int(np.sum(out["nsp_logits"].argmax(-1) == nsp_targets))
        num_labels += len(mlm_targets)
        if advance is not None:
            advance(len(nsp_targets))
    return {
        "mlm_loss": sums["mlm_nll"] / max(num_labels, 1),
        "mlm_accuracy": sums["mlm_hits"] / max(num_labels, 1),
        "nsp_loss": sums["nsp_nll"] / total,
        "nsp_accuracy": sums["nsp_hits"] / total,
        "num_mlm_labels": num_labels,
        "num_examples": total,
    }


def evaluate_model(params: Params, layout: Layout) -> dict:
    """The evaluate stage: score ``artifacts/model.h5`` on the test set and the training set,
    beside the optimum stored with the test set; write ``artifacts/metrics.json`` and return
    it (the stage prints it as the table of ``bert.views.tables``)."""
    config = bert_config(params)
    _, weights = load_trained_model(params, layout, config)
    evaluation = params.evaluation
    test = load_dataset(layout.test_data, params.data)
    train = load_dataset(layout.train_data, params.data)
    available = len(train["nsp_labels"])
    if evaluation.train_examples > available:
        log.warning("evaluation.train_examples is %d but the training set has %d examples; "
                    "scoring all %d", evaluation.train_examples, available, available)
    scored = min(evaluation.train_examples or available, available)
    with progress_bar(params.logging.progress_bar, total=len(test["nsp_labels"]) + scored,
                      unit="example", desc="evaluate") as bar:
        metrics = {
            "test": score(weights, config, test, evaluation.batch_size, advance=bar.update),
            "train": score(weights, config, train, evaluation.batch_size,
                           evaluation.train_examples or None, advance=bar.update),
            "optimum": load_optimum(layout.test_data),
            "model": model_id(params, layout),
        }
    write_json(layout.metrics, metrics)
    return metrics
