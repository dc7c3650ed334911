"""``python -m bert show FILE``: every kind of the workflow's files summarised from what it says
of itself; with an index, one example (see also tests/test_datasets.py)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from bert.__main__ import main
from bert.data.datasets import SPLITS, make_datasets
from bert.data.examples import LABEL_MEANINGS
from tests.workflow import FILE_KINDS, tiny_params, tiny_project


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> dict[str, Path]:
    return tiny_project(tmp_path_factory.mktemp("project"))


def summary(path, capsys) -> str:
    assert main(["show", str(path)]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("kind", FILE_KINDS)
def test_every_file_kind_says_what_it_is_and_holds(project, capsys, kind):
    path = project[kind]
    text = summary(path, capsys)
    lines = text.splitlines()
    schema = "dataset" if kind in SPLITS else "checkpoint" if kind == "checkpoint" else "weights"
    assert lines[0].startswith(f"{path}: a")
    assert lines[0].endswith(f"(bert-from-scratch/{schema}, schema version 2)")
    assert lines[2].startswith("made ") and "by bert-from-scratch" in lines[2]
    assert "params (as the file records them):" in lines
    table = lines[lines.index("datasets:") + 1:]
    with h5py.File(path) as f:
        names = []
        f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset)
                     else None)
        for name in names:
            if name.startswith("optimizer/"):
                continue  # one line per kind of moment
            row = next(line for line in table if line.split()[0] == name)
            assert str(f[name].shape) in row and f[name].attrs["description"] in row, name
            dtype = f[name].dtype
            assert (f"utf-8 string ({dtype.itemsize} bytes)" if dtype.kind == "S"
                    else str(dtype)) in row, name


@pytest.mark.parametrize("kind", ("train", "test", "probe_nsp", "probe_sop"))
def test_a_dataset_summary_states_its_labels_and_scores(project, capsys, kind):
    text = summary(project[kind], capsys)
    task = {"probe_nsp": "nsp", "probe_sop": "sop"}.get(kind, "nsp")
    assert f"split {kind}: " in text and f"sentence task {task}" in text
    assert "mlm_labels: the original token id where a token is predicted, -100 elsewhere" in text
    assert f"nsp_labels ({task.upper()}): 0 = {LABEL_MEANINGS[task][0]}, 1 = " in text
    assert ("optimum (losses in nats, accuracies as fractions):" in text) == (kind != "train")
    if kind != "train":
        assert f"bayes_{task}_accuracy" in text


def test_a_weights_summary_gives_the_architecture_the_count_the_run_and_the_step(project,
                                                                                 capsys):
    paths = project
    with h5py.File(paths["model"]) as f:
        count = sum(f[name].size for name in f)
        run, step = f.attrs["fingerprint"], f.attrs["step"]
    model = summary(paths["model"], capsys)
    assert "architecture: 1 layers, hidden size 16, 2 heads, feed-forward 24, vocabulary 16" in (
        model)
    assert f"parameters: {count:,} (float32)" in model
    assert f"run: {run}" in model and f"step: {step:,} (the end of 2 epochs)" in model
    init = summary(paths["init"], capsys)
    assert f"parameters: {count:,}" in init and "step: none (initial weights" in init
    assert "run:" not in init


def test_a_checkpoint_summary_gives_its_step_and_history(project, capsys):
    path = project["checkpoint"]
    with h5py.File(path) as f:
        step, epoch, batch = (int(f.attrs[k]) for k in ("step", "epoch", "batch_in_epoch"))
    text = summary(path, capsys)
    assert f"step: {step:,} ({epoch} epochs and {batch} batches done)" in text
    assert f"history: {step} steps of loss_total, loss_mlm, loss_nsp" in text
    assert "optimizer/exp_avg/<parameter>" in text and "optimizer/exp_avg_sq/<parameter>" in text


@pytest.mark.parametrize(("change", "expected"), [
    ({"sentence_task": "sop"}, "nsp_labels (SOP): 0 = A and B in the document's order"),
    ({"sentence_task": "none"}, "nsp_labels: none (no sentence task)"),
    ({"masking": "dynamic"}, "mlm_labels: none stored (dynamic masking"),
])
def test_the_other_recipes_say_what_their_labels_are(tmp_path, capsys, change, expected):
    params = tiny_params(data=change)
    make_datasets(params.data, tmp_path)
    text = summary(tmp_path / "train.h5", capsys)
    assert expected in text
    with h5py.File(tmp_path / "train.h5") as f:
        descriptions = {name: f[name].attrs["description"] for name in f
                        if isinstance(f[name], h5py.Dataset)}
    assert ("nsp_labels" in descriptions) == (change.get("sentence_task") != "none")
    if change.get("sentence_task") == "sop":
        assert "0 = A and B in the document's order, 1 = swapped" in descriptions["nsp_labels"]
    if change.get("sentence_task") == "none":
        assert "0 everywhere (one segment)" in descriptions["token_type_ids"]
    if "masking" in change:
        assert "mlm_labels" not in descriptions and "unmasked" in descriptions["input_ids"]


def test_an_index_still_shows_one_example(project, capsys):
    assert main(["show", str(project["test"]), "0"]) == 0
    assert capsys.readouterr().out.startswith(f"{project['test']}, example 0 of 16")


def test_a_foreign_file_is_one_line(tmp_path, capsys):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.zeros(3)
    assert main(["show", str(other)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {other}: not a bert-from-scratch/")
    assert "check that you named the right file" in err
