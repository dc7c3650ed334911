"""The pretraining recipes end to end through ``doit``: each sentence task (nsp, sop, none) and
dynamic masking, from the data to the results, the export and transformers loading it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.test_workflow import assert_same_run, doit, make_project, ran, weights
from tests.workflow import tiny, write_params

RECIPES = {"nsp dynamic": {"masking": "dynamic"},
           "sop static": {"sentence_task": "sop"},
           "sop dynamic": {"sentence_task": "sop", "masking": "dynamic"},
           "none dynamic": {"sentence_task": "none", "masking": "dynamic"}}
HEAD = ("bert.pooler.dense.weight", "bert.pooler.dense.bias", "cls.seq_relationship.weight",
        "cls.seq_relationship.bias")


@pytest.mark.slow
@pytest.mark.parametrize("data", RECIPES.values(), ids=RECIPES)
def test_a_recipe_runs_through_doit_and_exports(tmp_path, data):
    folder = make_project(tmp_path / "project", tiny(data=data))
    doit(folder)
    task = data.get("sentence_task", "nsp")
    results = json.loads((folder / "artifacts/results.json").read_text())
    assert results["sentence_task"] == task and results["params"]["data"] == {
        **results["params"]["data"], **data}
    sentence = {f"test_{task}_loss", f"test_{task}_accuracy", f"train_{task}_loss",
                f"train_{task}_accuracy"} if task != "none" else set()
    scores = {key for key in results if key.startswith(("test_", "train_"))}
    assert scores == {"train_mlm_loss", "test_mlm_loss", "test_mlm_accuracy",
                      "train_mlm_accuracy"} | sentence
    assert set(results["optimum"]) == {"test_mlm_loss"} | (
        {f"test_{task}_loss", f"test_{task}_accuracy", f"test_{task}_accuracy_topics_only"}
        if task != "none" else set())
    for probe in ("nsp", "sop"):
        part = results["probes"][probe]
        assert 0 <= part["accuracy"] <= 1 and part["optimum"]["accuracy"] > 0.5
    per_epoch = results["training"]["per_epoch"]
    assert all((f"test_{task}_accuracy" in record) == (task != "none") for record in per_epoch)
    if task == "none":  # the sentence head as initialized
        trained, initial = weights(folder / "artifacts/model.h5"), weights(
            folder / "artifacts/init.h5")
        for name in HEAD:
            np.testing.assert_array_equal(trained[name], initial[name], err_msg=name)
    assert ran(doit(folder)) == []

    pytest.importorskip("safetensors", reason="doit export needs pip install -e '.[interop]'")
    assert ran(doit(folder, "export")) == ["export"]
    pytest.importorskip("torch", reason="loading in transformers needs '.[reference]'")
    transformers = pytest.importorskip("transformers")
    _, info = transformers.BertForPreTraining.from_pretrained(
        folder / "artifacts/export", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info


@pytest.mark.slow
def test_dynamic_masks_one_epoch_then_two_equal_two_straight_through_doit(tmp_path):
    data = RECIPES["sop dynamic"]
    one_then_two = make_project(tmp_path / "a", tiny(data=data, training={"epochs": 1}))
    doit(one_then_two)
    write_params(one_then_two, tiny(data=data, training={"epochs": 2}))
    result = doit(one_then_two)
    assert "resuming from step 6 (epoch 1, batch 0)" in result.stderr
    straight = make_project(tmp_path / "b", tiny(data=data, training={"epochs": 2}))
    doit(straight)
    assert_same_run(one_then_two, straight)
