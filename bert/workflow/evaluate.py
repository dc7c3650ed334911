"""Scoring a model on a dataset, beside the Bayes-optimal scores and the baselines.

The MLM loss is the mean cross-entropy over every labelled position of the set (not a mean of
batch means), the sentence task's loss (NSP or SOP) the mean over examples; accuracies count
argmax hits. Scores are named after the task (``bert.workflow.sentence``).

The evaluate stage scores the test set and the first ``evaluation.train_examples`` training
examples, and the model's sentence head on both probe sets (``data/probe_nsp.h5``,
``data/probe_sop.h5``), whatever task it was trained on: an NSP model on SOP and the reverse,
and the untrained head of a model without a sentence task. Under dynamic masking the training
file holds no masks; its examples are scored with the masks of epoch ``training.epochs`` of the
run's mask stream (``bert.data.masking``): the masks a further epoch would draw, which training
never drew.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import numpy as np

from bert.core.config import BertConfig
from bert.core.labels import IGNORE_INDEX
from bert.core.layers import cross_entropy_forward
from bert.core.model import predict
from bert.data.datasets import load_dataset, load_optimum, masking_spec
from bert.data.examples import num_examples
from bert.data.masking import masked_rows
from bert.storage.atomic import write_json
from bert.workflow.layout import Layout
from bert.workflow.params import Params, bert_config
from bert.workflow.progress import progress_bar
from bert.workflow.provenance import load_trained_model, model_id
from bert.workflow.sentence import LABELLED_TASKS, score_keys

log = logging.getLogger(__name__)

SCORE_KEYS = score_keys("nsp")  # what ``score`` measures on NSP examples
PROBES = {task: f"probe_{task}_data" for task in LABELLED_TASKS}  # task -> Layout member


def score(
    params: Mapping[str, np.ndarray],
    config: BertConfig,
    data: Mapping[str, np.ndarray],
    batch_size: int,
    num_examples: int | None = None,
    advance: Callable[[int], object] | None = None,
    task: str = "nsp",
) -> dict[str, float]:
    """Losses and accuracies of the model over the first ``num_examples`` examples (all: None;
    all, too, when the set has fewer). ``num_examples`` in the result is the number scored.
    ``advance`` is called with the number of examples of each batch once it is scored.

    data: the example arrays (N, T) / (N,): input_ids, token_type_ids, attention_mask,
    mlm_labels and, for a sentence task, nsp_labels, the labels of ``task`` (nsp or sop), whose
    scores are ``<task>_loss`` and ``<task>_accuracy`` (``score_keys(task)``); without
    nsp_labels, the MLM scores alone. Runs in inference mode (no dropout).
    """
    total = len(data["input_ids"])
    if num_examples is not None:
        total = min(num_examples, total)
    sentence = "nsp_labels" in data
    if sentence and task not in LABELLED_TASKS:
        raise ValueError(f"sentence labels scored as task {task!r}; name one of "
                         f"{', '.join(LABELLED_TASKS)}")
    sums = dict.fromkeys(("mlm_nll", "mlm_hits", "sentence_nll", "sentence_hits"), 0.0)
    num_labels = 0
    for start in range(0, total, batch_size):
        rows = slice(start, min(start + batch_size, total))
        labels = data["mlm_labels"][rows]
        labelled = labels != IGNORE_INDEX  # (B, T)
        out = predict(params, config, data["input_ids"][rows], data["token_type_ids"][rows],
                      data["attention_mask"][rows], mlm_positions=labelled)
        mlm_targets = labels[labelled]  # (M,)
        mlm_loss, _ = cross_entropy_forward(out["mlm_logits"], mlm_targets)
        sums["mlm_nll"] += mlm_loss * len(mlm_targets)
        sums["mlm_hits"] += int(np.sum(out["mlm_logits"].argmax(-1) == mlm_targets))
        if sentence:
            targets = data["nsp_labels"][rows]  # (B,)
            loss, _ = cross_entropy_forward(out["nsp_logits"], targets)
            sums["sentence_nll"] += loss * len(targets)
            sums["sentence_hits"] += int(np.sum(out["nsp_logits"].argmax(-1) == targets))
        num_labels += len(mlm_targets)
        if advance is not None:
            advance(rows.stop - rows.start)
    scores = {
        "mlm_loss": sums["mlm_nll"] / max(num_labels, 1),
        "mlm_accuracy": sums["mlm_hits"] / max(num_labels, 1),
    }
    if sentence:
        scores[f"{task}_loss"] = sums["sentence_nll"] / total
        scores[f"{task}_accuracy"] = sums["sentence_hits"] / total
    return {**scores, "num_mlm_labels": num_labels, "num_examples": total}


def scored_training_examples(params: Params, layout: Layout) -> dict[str, np.ndarray]:
    """The training examples the evaluate stage scores: the first ``evaluation.train_examples``
    (0: all), with the masks the file holds or, under dynamic masking, the masks of epoch
    ``training.epochs`` of the run's stream (see the module docstring)."""
    train = load_dataset(layout.train_data, params.data)
    available = num_examples(train)
    wanted = params.evaluation.train_examples
    if wanted > available:
        log.warning("evaluation.train_examples is %d but the training set has %d examples; "
                    "scoring all %d", wanted, available, available)
    rows = np.arange(min(wanted or available, available))
    if "mlm_labels" in train:
        return {name: array[rows] for name, array in train.items()}
    return masked_rows(train, rows, params.training.random_seed, params.training.epochs,
                       masking_spec(layout.train_data))


def evaluate_model(params: Params, layout: Layout) -> dict:
    """The evaluate stage: score ``artifacts/model.h5`` on the test set and the training set,
    beside the optimum stored with the test set, and its sentence head on the NSP and SOP
    probe sets beside theirs; write ``artifacts/metrics.json`` and return it (the stage prints
    it as the table of ``bert.views.tables``).

    The metrics: ``sentence_task``; ``test`` and ``train``, the scores of ``score`` (named
    after the task); ``optimum``, the test set's; ``probes``, per probe task (nsp, sop) its
    ``scores`` and its ``optimum``; ``model``, the mark of the model scored.
    """
    config = bert_config(params)
    _, weights = load_trained_model(params, layout, config)
    task, batch_size = params.data.sentence_task, params.evaluation.batch_size
    sets = {"test": load_dataset(layout.test_data, params.data),
            "train": scored_training_examples(params, layout)}
    probes = {probe: load_dataset(getattr(layout, member), params.data)
              for probe, member in PROBES.items()}
    total = sum(num_examples(arrays) for arrays in (*sets.values(), *probes.values()))
    with progress_bar(params.logging.progress_bar, total=total, unit="example",
                      desc="evaluate") as bar:
        scores = {name: score(weights, config, arrays, batch_size, advance=bar.update, task=task)
                  for name, arrays in sets.items()}
        probe_scores = {probe: score(weights, config, arrays, batch_size, advance=bar.update,
                                     task=probe)
                        for probe, arrays in probes.items()}
    metrics = {
        "sentence_task": task,
        **scores,
        "optimum": load_optimum(layout.test_data),
        "probes": {probe: {"scores": probe_scores[probe],
                           "optimum": load_optimum(getattr(layout, PROBES[probe]))}
                   for probe in PROBES},
        "model": model_id(params, layout),
    }
    write_json(layout.metrics, metrics)
    return metrics
