"""Scoring: set-level means whatever the batch size, the training loss function's numbers, and
the evaluate stage's metrics file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bert.core.labels import IGNORE_INDEX
from bert.core.model import forward
from bert.data.datasets import load_dataset, load_optimum, make_datasets
from bert.storage import checkpoint as ckpt
from bert.workflow.evaluate import SCORE_KEYS, evaluate_model, score
from bert.workflow.init import initialize
from bert.workflow.layout import Layout
from bert.workflow.params import bert_config
from bert.workflow.provenance import model_id
from tests.workflow import tiny_params

PARAMS = tiny_params()


@pytest.fixture(scope="module")
def perturbed(tmp_path_factory) -> Layout:
    """Data and a model (the initial weights, perturbed) of the tiny parameters."""
    layout = Layout(tmp_path_factory.mktemp("evaluate"))
    make_datasets(PARAMS.data, layout.data_dir)
    initialize(PARAMS, layout)
    config, weights = ckpt.load_weights(layout.init_weights, "fix")
    rng = np.random.default_rng(0)
    weights = {n: w + rng.normal(scale=0.1, size=w.shape).astype(w.dtype)
               for n, w in weights.items()}
    mark = model_id(PARAMS, layout)  # as if trained by these parameters
    ckpt.save_weights(layout.model_weights, config, weights, {},
                      attrs={"fingerprint": mark["run"], "step": mark["step"]})
    return layout


def test_scores_are_set_means_whatever_the_batch_size(perturbed):
    _, weights = ckpt.load_weights(perturbed.model_weights, "fix")
    config, data = bert_config(PARAMS), load_dataset(perturbed.test_data)
    whole = score(weights, config, data, batch_size=len(data["nsp_labels"]))
    for batch_size in (3, 7):
        batched = score(weights, config, data, batch_size)
        assert batched["num_mlm_labels"] == whole["num_mlm_labels"]
        for key in SCORE_KEYS:
            assert batched[key] == pytest.approx(whole[key], rel=1e-5), key
    # the same losses as the training loss on the whole set, in one batch, without dropout
    losses, _ = forward(weights, config, data)
    assert whole["mlm_loss"] == pytest.approx(losses["mlm"], rel=1e-5)
    assert whole["nsp_loss"] == pytest.approx(losses["nsp"], rel=1e-5)
    assert whole["num_mlm_labels"] == int(np.sum(data["mlm_labels"] != IGNORE_INDEX))
    assert whole["num_examples"] == len(data["nsp_labels"])
    assert 0 <= whole["mlm_accuracy"] <= 1 and 0 <= whole["nsp_accuracy"] <= 1


def test_the_first_examples_only(perturbed):
    _, weights = ckpt.load_weights(perturbed.model_weights, "fix")
    config, data = bert_config(PARAMS), load_dataset(perturbed.train_data)
    first = score(weights, config, data, batch_size=4, num_examples=5)
    alone = score(weights, config, {n: a[:5] for n, a in data.items()}, batch_size=5)
    assert first["num_examples"] == 5
    for key in SCORE_KEYS:
        assert first[key] == pytest.approx(alone[key], rel=1e-6)


def test_the_stage_writes_the_metrics_and_shows_nothing_itself(perturbed, capsys):
    metrics = evaluate_model(PARAMS, perturbed)
    assert capsys.readouterr().out == ""  # the stage's record prints the table
    assert json.loads(perturbed.metrics.read_text()) == metrics
    assert set(metrics) == {"test", "train", "optimum", "model"}
    assert metrics["model"] == model_id(PARAMS, perturbed)
    assert metrics["optimum"] == load_optimum(perturbed.test_data)
    assert metrics["train"]["num_examples"] == min(PARAMS.evaluation.train_examples,
                                                   len(load_dataset(perturbed.train_data)
                                                       ["nsp_labels"]))


def test_train_examples_beyond_the_training_set_scores_what_exists(project, capsys):
    from bert.__main__ import main
    from tests.workflow import layout_of, tiny

    assert main(["evaluate"]) == 0
    assert "evaluation.train_examples is 4096 but the training set has 48 examples" in (
        capsys.readouterr().err)
    layout = layout_of(project, tiny())
    metrics = json.loads(layout.metrics.read_text())
    assert metrics["train"]["num_examples"] == 48
    all48 = tiny_params(evaluation={"train_examples": 0})
    assert evaluate_model(all48, layout)["train"] == metrics["train"]
