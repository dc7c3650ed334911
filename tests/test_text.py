"""The text views of a run: attention probabilities the model reports, the masked
predictions, the epoch table, and the commands ``predict``, ``attention`` and ``curves``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bert.__main__ import main
from bert.core.labels import IGNORE_INDEX
from bert.core.layers import attention_mask_bias, softmax
from bert.core.model import encode, layer_prefix, predict
from bert.data.datasets import load_dataset, load_optimum, make_datasets
from bert.data.tokens import PAD, token_name
from bert.errors import DataFileError
from bert.storage.checkpoint import load_weights
from bert.views.text import (
    attention_maps,
    attention_probabilities,
    first_masked_examples,
    format_epochs,
    load_examples,
    load_model,
    masked_predictions,
    moving_average,
)
from bert.workflow.evaluate import evaluate_model
from bert.workflow.init import initialize
from bert.workflow.layout import Layout
from bert.workflow.train import train
from tests.workflow import tiny_params

PARAMS = tiny_params(model={"num_layers": 2}, data={"short_sequence_probability": 0.5})


def make_tiny_run(folder: Path) -> Layout:
    """A whole run of PARAMS (2 layers of 2 heads, some examples padded) in ``folder``,
    through the Python API."""
    layout = Layout(folder)
    make_datasets(PARAMS.data, layout.data_dir)
    initialize(PARAMS, layout)
    train(PARAMS, layout, progress=False)
    evaluate_model(PARAMS, layout)
    return layout


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Layout:
    return make_tiny_run(tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="module")
def model(run):
    return load_weights(run.model_weights, "")


def padded_batch(run: Layout) -> dict[str, np.ndarray]:
    """Four test examples, the second cut to 9 tokens and padded."""
    batch = {name: a[:4].copy() for name, a in load_dataset(run.test_data).items()}
    batch["input_ids"][1, 9:] = PAD
    batch["token_type_ids"][1, 9:] = 0
    batch["attention_mask"][1, 9:] = 0
    return batch


def test_attention_rows_are_distributions_that_ignore_padding(run, model):
    config, weights = model
    batch = padded_batch(run)
    probs = attention_probabilities(weights, config, batch["input_ids"],
                                    batch["token_type_ids"], batch["attention_mask"])
    T = batch["input_ids"].shape[1]
    assert probs.shape == (2, 4, 2, T, T)  # (L, B, NH, T, T)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=1e-5)
    assert (probs >= 0).all()
    assert (probs[:, 1, :, :, 9:] == 0).all()  # padded keys get nothing
    assert (probs[:, 1, :, :, :9] > 0).all()
    assert (probs[:, 0] > 0).all()  # an unpadded example attends everywhere a little


def test_attention_is_softmax_of_the_scaled_scores(run, model):
    """Recomputed from each layer's input: the right cache entry, of the right layer."""
    config, weights = model
    batch = padded_batch(run)
    probs = attention_probabilities(weights, config, batch["input_ids"],
                                    batch["token_type_ids"], batch["attention_mask"])
    hidden, _ = encode(weights, config, batch["input_ids"], batch["token_type_ids"],
                       batch["attention_mask"])
    B, T, H = hidden[0].shape
    NH = config.num_attention_heads
    D = H // NH
    bias = attention_mask_bias(batch["attention_mask"], np.float64)  # (B, 1, 1, T)
    for layer in range(config.num_hidden_layers):
        x = hidden[layer].astype(np.float64)  # the input of this layer

        def heads(name: str, layer=layer, x=x) -> np.ndarray:
            prefix = f"{layer_prefix(layer)}.attention.self.{name}"
            out = x @ weights[f"{prefix}.weight"].T + weights[f"{prefix}.bias"]
            return out.reshape(B, T, NH, D).transpose(0, 2, 1, 3)  # (B, NH, T, D)

        scores = heads("query") @ heads("key").transpose(0, 1, 3, 2) / np.sqrt(D)
        np.testing.assert_allclose(probs[layer], softmax(scores + bias), atol=2e-5,
                                   err_msg=f"layer {layer}")


def test_attention_maps_cut_the_padding(run, model):
    config, weights = model
    arrays = load_dataset(run.test_data)
    padded = int(np.flatnonzero(arrays["attention_mask"].sum(axis=1) < 16)[0])
    examples = load_examples(run.test_data, [padded])
    n = int(arrays["attention_mask"][padded].sum())
    maps = attention_maps(weights, config, examples)
    assert maps.shape == (2, 2, n, n)
    assert examples.tokens(0) == [token_name(int(t)) for t in arrays["input_ids"][padded, :n]]
    np.testing.assert_allclose(maps.sum(axis=-1), 1.0, rtol=1e-5)


def test_masked_predictions_are_the_models_top_guesses(run, model):
    config, weights = model
    examples = first_masked_examples(run.test_data, 3)
    results = masked_predictions(weights, config, examples)
    arrays = load_dataset(run.test_data)
    assert [r.index for r in results] == list(examples.indices)
    for row, result in enumerate(results):
        i = result.index
        labels = arrays["mlm_labels"][i]
        positions = np.flatnonzero(labels != IGNORE_INDEX)
        assert [g.position for g in result.guesses] == positions.tolist()
        assert [g.true for g in result.guesses] == [token_name(int(t)) for t in labels[positions]]
        assert [g.shown for g in result.guesses] == [
            token_name(int(t)) for t in arrays["input_ids"][i, positions]]
        out = predict(weights, config, *(arrays[k][i:i + 1] for k in (
            "input_ids", "token_type_ids", "attention_mask")))
        probs = softmax(out["mlm_logits"][0].astype(np.float64))  # (T, V)
        for guess in result.guesses:
            expected = np.sort(probs[guess.position])[::-1][:3]
            np.testing.assert_allclose([p for _, p in guess.top], expected, rtol=1e-4)
            best = token_name(int(probs[guess.position].argmax()))
            assert guess.top[0][0] == best and guess.hit == (best == guess.true)
        assert result.is_next == pytest.approx(
            softmax(out["nsp_logits"][0].astype(np.float64))[0], rel=1e-4)
        assert result.nsp_label == arrays["nsp_labels"][i]
        assert result.tokens == examples.tokens(row)


def test_predict_prints_the_table(run, capsys):
    assert main(["predict", str(run.test_data), "3", "--model", str(run.model_weights)]) == 0
    lines = capsys.readouterr().out.splitlines()
    arrays = load_dataset(run.test_data)
    assert lines[0] == f"{run.test_data}, example 3 of 16; model {run.model_weights}"
    n = int(arrays["attention_mask"][3].sum())
    assert lines[1] == "input: " + " ".join(token_name(int(t))
                                            for t in arrays["input_ids"][3, :n])
    nsp = "B is random (label 1)" if arrays["nsp_labels"][3] else "B follows A (label 0)"
    assert lines[2].startswith(f"NSP: {nsp}; the model's probability that B follows A: 0.")
    positions = np.flatnonzero(arrays["mlm_labels"][3] != IGNORE_INDEX)
    assert lines[3].startswith("MLM: ") and f"of {len(positions)} positions" in lines[3]
    assert lines[4].split() == ["pos", "input", "true", "guess", "1", "guess", "2", "guess", "3"]
    rows = lines[5:]
    assert len(rows) == len(positions)
    for row, position in zip(rows, positions, strict=True):
        cells = row.split()
        assert cells[0] == str(position)
        assert cells[2] == token_name(int(arrays["mlm_labels"][3, position]))
        probabilities = [float(c.rstrip("*")) for c in cells[4::2]]
        assert len(probabilities) == 3 and probabilities == sorted(probabilities, reverse=True)


def test_attention_prints_the_top_keys_of_each_token(run, capsys):
    args = ["attention", str(run.test_data), "2", "--model", str(run.model_weights)]
    assert main([*args, "--layer", "1", "--head", "0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    n = int(load_dataset(run.test_data)["attention_mask"][2].sum())
    assert lines[3] == "layer 1, head 0"
    assert lines[4].split()[:3] == ["pos", "token", "attends"]
    rows = lines[5:]
    assert len(rows) == n
    for i, row in enumerate(rows):
        cells = row.split()
        assert cells[0] == str(i)
        probabilities = [float(c) for c in cells[3::2]]
        assert len(probabilities) == 3 and probabilities == sorted(probabilities, reverse=True)
        assert all(0 <= int(c.rsplit("@", 1)[1]) < n for c in cells[2::2])
    assert main(args) == 0  # every head of every layer
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if line.startswith("layer ")] == [
        "layer 0, head 0", "layer 0, head 1", "layer 1, head 0", "layer 1, head 1"]


def test_curves_prints_every_epoch_against_the_optimum(run, capsys):
    assert main(["curves", "--history", str(run.history), "--test", str(run.test_data)]) == 0
    lines = capsys.readouterr().out.splitlines()
    history = json.loads(run.history.read_text())
    optimum = load_optimum(run.test_data)
    assert lines[0].startswith(f"{run.history}: 2 epochs, 12 steps of 128 tokens")
    assert lines[1].split()[:3] == ["epoch", "step", "lr"]
    for line, record in zip(lines[2:4], history["epochs"], strict=True):
        cells = line.split()
        assert cells[:2] == [str(record["epoch"]), str(record["step"])]
        assert float(cells[4]) == pytest.approx(record["test_mlm_loss"], abs=1e-4)
        assert float(cells[5]) == pytest.approx(
            record["test_mlm_loss"] - optimum["bayes_mlm_loss"], abs=1e-4)
    bayes = lines[4].split()
    assert bayes[0] == "Bayes-optimal"
    assert [float(c) for c in bayes[1:]] == pytest.approx(
        [optimum[k] for k in ("bayes_mlm_loss", "bayes_nsp_loss", "bayes_nsp_accuracy")],
        abs=1e-4)
    assert lines[5].split() == ["topics", "only", "(NSP)",
                                f"{optimum['topic_only_nsp_accuracy']:.4f}"]
    assert lines[6].split() == ["unigram", f"{optimum['unigram_mlm_loss']:.4f}"]
    assert len(lines) == 8


def test_epoch_table_without_epochs_has_only_the_references():
    optimum = dict.fromkeys(("bayes_mlm_loss", "unigram_mlm_loss", "uniform_mlm_loss",
                             "bayes_nsp_loss", "chance_nsp_loss", "bayes_nsp_accuracy",
                             "chance_nsp_accuracy"), 0.5)
    assert len(format_epochs({"epochs": []}, optimum)) == 4


def test_the_epoch_table_of_sop_shows_its_optimum_and_none_has_no_sentence_column():
    record = {"epoch": 1, "step": 6, "learning_rate": 0.01, "train_mlm_loss": 2.5,
              "test_mlm_loss": 2.25, "test_mlm_accuracy": 0.25, "train_sop_loss": 0.75,
              "test_sop_loss": 0.625, "test_sop_accuracy": 0.5}
    optimum = {"bayes_mlm_loss": 0.5, "unigram_mlm_loss": 3.0, "uniform_mlm_loss": 3.5,
               "bayes_sop_loss": 0.125, "bayes_sop_accuracy": 0.875,
               "topic_only_sop_accuracy": 0.5, "chance_sop_loss": 0.6931,
               "chance_sop_accuracy": 0.5}
    lines = format_epochs({"epochs": [record]}, optimum, "sop")
    assert lines[0].split() == ["epoch", "step", "lr", "MLM", "train", "MLM", "test", "MLM",
                                "gap", "SOP", "train", "SOP", "test", "SOP", "gap", "MLM", "acc",
                                "SOP", "acc", "acc", "gap"]
    assert [float(c) for c in lines[1].split()[3:]] == pytest.approx(
        [2.5, 2.25, 1.75, 0.75, 0.625, 0.5, 0.25, 0.5, 0.375])
    assert [float(c) for c in lines[2].split()[1:]] == [0.5, 0.125, 0.875]  # Bayes-optimal
    assert lines[3].split() == ["topics", "only", "(SOP)", "0.5000"]
    assert len(lines) == 6 and "NSP" not in "\n".join(lines)
    mlm = {key: value for key, value in optimum.items() if "sop" not in key}
    none = {key: value for key, value in record.items() if "sop" not in key}
    lines = format_epochs({"epochs": [none]}, mlm, "none")
    assert lines[0].split() == ["epoch", "step", "lr", "MLM", "train", "MLM", "test", "MLM",
                                "gap", "MLM", "acc"]
    assert [line.split()[0] for line in lines[2:]] == ["Bayes-optimal", "unigram",
                                                       "uniform/chance"]


def test_the_sentence_line_says_what_the_label_of_the_task_means():
    from bert.views.text import ExampleGuesses, nsp_line

    def line(label, task):
        return nsp_line(ExampleGuesses(0, ["[CLS]"], label, 0.25, [], task))

    assert line(1, "nsp") == ("NSP: B is random (label 1); the model's probability that B "
                              "follows A: 0.25")
    assert line(0, "sop") == ("SOP: A and B in order (label 0); the model's probability that A "
                              "and B are in order: 0.25")
    assert line(1, "sop").startswith("SOP: A and B swapped (label 1)")
    assert line(None, "none") == "no sentence label (data.sentence_task: none)"


def test_moving_average_is_a_trailing_mean():
    np.testing.assert_allclose(moving_average([1, 2, 3, 4, 5], 2), [1, 1.5, 2.5, 3.5, 4.5])
    np.testing.assert_allclose(moving_average([1, 2, 3], 10), [1, 1.5, 2])


def test_a_model_of_another_vocabulary_is_refused(run):
    examples = load_examples(run.test_data, [0])
    examples.arrays["input_ids"][0, 1] = 99
    with pytest.raises(DataFileError, match="made for 16 tokens and sequences of at most 16"):
        load_model(run.model_weights, examples)


@pytest.mark.parametrize(("args", "expected"), [
    (["predict", "TEST", "16"], "has 16 examples, no example 16; pick an index in 0..15"),
    (["predict", "TEST", "0", "--model", "missing.h5"], "missing.h5: file not found"),
    (["attention", "TEST", "0", "--head", "2"], "has 2 heads, no head 2; pick a head in 0..1"),
    (["attention", "TEST", "0", "--layer", "-1"], "has 2 layers, no layer -1"),
    # a file the user named is never theirs to delete on our advice
    (["curves", "--history", "missing.json"], "missing.json: file not found; check that you "
     "named the right file"),
])
def test_errors_are_one_line(run, capsys, args, expected):
    args = [str(run.test_data) if a == "TEST" else a for a in args]
    if args[0] != "curves" and "--model" not in args:
        args += ["--model", str(run.model_weights)]
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ") and expected in captured.err
    assert captured.err.count("\n") == 1
