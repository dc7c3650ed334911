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
def project(tmp_path_factory) -> Layout:
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


def test_scores_are_set_means_whatever_the_batch_size(project):
    _, weights = ckpt.load_weights(project.model_weights, "fix")
    config, data = bert_config(PARAMS), load_dataset(project.test_data)
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


def test_the_first_examples_only(project):
    _, weights = ckpt.load_weights(project.model_weights, "fix")
    config, data = bert_config(PARAMS), load_dataset(project.train_data)
    first = score(weights, config, data, batch_size=4, num_examples=5)
    alone = score(weights, config, {n: a[:5] for n, a in data.items()}, batch_size=5)
    assert first["num_examples"] == 5
    for key in SCORE_KEYS:
        assert first[key] == pytest.approx(alone[key], rel=1e-6)


def test_the_stage_writes_the_metrics_and_shows_nothing_itself(project, capsys):
    metrics = evaluate_model(PARAMS, project)
    assert capsys.readouterr().out == ""  # the stage's record prints the table
    assert json.loads(project.metrics.read_text()) == metrics
    assert set(metrics) == {"sentence_task", "test", "train", "optimum", "probes", "model"}
    assert metrics["model"] == model_id(PARAMS, project)
    assert metrics["optimum"] == load_optimum(project.test_data)
    assert metrics["train"]["num_examples"] == min(PARAMS.evaluation.train_examples,
                                                   len(load_dataset(project.train_data)
                                                       ["nsp_labels"]))


RECIPES = {"sop static": {"sentence_task": "sop"},
           "none dynamic": {"sentence_task": "none", "masking": "dynamic"},
           "nsp dynamic": {"masking": "dynamic"}}


@pytest.fixture(scope="module")
def recipes(tmp_path_factory):
    """name -> (params, layout, metrics) of a tiny run of the recipe ``name`` of RECIPES,
    trained and evaluated on first use."""
    from bert.workflow.train import train

    made = {}

    def run(name: str) -> tuple:
        if name not in made:
            params = tiny_params(data=RECIPES[name])
            layout = Layout(tmp_path_factory.mktemp("recipe"))
            make_datasets(params.data, layout.data_dir)
            initialize(params, layout)
            train(params, layout, progress=False)
            made[name] = params, layout, evaluate_model(params, layout)
        return made[name]

    return run


@pytest.mark.parametrize("name", RECIPES)
def test_the_scores_are_the_tasks_and_the_probes_are_scored_on_both_tasks(recipes, name):
    from bert.workflow.sentence import score_keys

    params, layout, metrics = recipes(name)
    task = params.data.sentence_task
    assert metrics["sentence_task"] == task
    for name in ("test", "train"):
        assert set(metrics[name]) == {*score_keys(task), "num_mlm_labels", "num_examples"}
    assert metrics["optimum"] == load_optimum(layout.test_data)
    _, weights = ckpt.load_weights(layout.model_weights, "fix")
    config = bert_config(params)
    assert set(metrics["probes"]) == {"nsp", "sop"}
    for probe, path in (("nsp", layout.probe_nsp_data), ("sop", layout.probe_sop_data)):
        data = load_dataset(path)
        expected = score(weights, config, data, 7, task=probe)
        assert set(expected) == {*score_keys(probe), "num_mlm_labels", "num_examples"}
        scores = metrics["probes"][probe]["scores"]
        assert scores.keys() == expected.keys()
        for key, value in expected.items():
            assert scores[key] == pytest.approx(value, rel=1e-5), key
        assert metrics["probes"][probe]["optimum"] == load_optimum(path)
        assert f"bayes_{probe}_accuracy" in load_optimum(path)


def test_the_untrained_sentence_head_of_a_model_without_a_task_is_near_chance(recipes):
    _, _, metrics = recipes("none dynamic")
    for probe in ("nsp", "sop"):
        scores = metrics["probes"][probe]["scores"]
        # the initial weights (initializer_range 0.05) give logits near 0: about log 2
        assert scores[f"{probe}_loss"] == pytest.approx(np.log(2), abs=0.05)
        assert scores["num_examples"] == 16


@pytest.mark.parametrize("name", ["none dynamic", "nsp dynamic"])
def test_a_dynamically_masked_training_set_is_scored_with_masks_training_never_drew(recipes,
                                                                                     name):
    from bert.data.datasets import masking_spec
    from bert.data.masking import masked_epoch, masked_rows
    from bert.workflow.evaluate import scored_training_examples

    params, layout, metrics = recipes(name)
    train = load_dataset(layout.train_data)
    spec, seed = masking_spec(layout.train_data), params.training.random_seed
    scored = scored_training_examples(params, layout)
    rows = np.arange(len(train["input_ids"]))
    expected = masked_rows(train, rows, seed, params.training.epochs, spec)
    for name, values in expected.items():
        np.testing.assert_array_equal(scored[name], values, err_msg=name)
    for epoch in range(params.training.epochs):  # none of the masks of a trained epoch
        trained = masked_epoch(train, seed, epoch, spec)["mlm_labels"]
        assert not np.array_equal(trained, scored["mlm_labels"]), epoch
    _, weights = ckpt.load_weights(layout.model_weights, "fix")
    again = score(weights, bert_config(params), scored, 16, task=params.data.sentence_task)
    assert metrics["train"]["mlm_loss"] == pytest.approx(again["mlm_loss"], rel=1e-6)
    assert metrics["train"]["num_mlm_labels"] == int((scored["mlm_labels"] >= 0).sum())
