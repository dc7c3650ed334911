"""The data stage end to end: files, their contents, reproducibility, and `python -m bert show`."""

from __future__ import annotations

import hashlib
import math

import h5py
import numpy as np
import pytest

from bert.__main__ import main
from bert.data.datasets import (
    build_language,
    build_split,
    load_dataset,
    load_optimum,
    make_datasets,
)
from bert.data.examples import optimum
from bert.data.tokens import SEP
from bert.errors import DataFileError
from bert.workflow.params import DataParams

PARAMS = DataParams(vocab_size=20, sequence_length=16, batch_size=8, num_train_batches=5,
                    num_test_batches=3, num_topics=2)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return make_datasets(PARAMS, tmp_path_factory.mktemp("data"))


def test_writes_both_files_with_the_examples(files):
    train_path, test_path = files
    assert (train_path.name, test_path.name) == ("train.h5", "test.h5")
    train, test = load_dataset(train_path, PARAMS), load_dataset(test_path, PARAMS)
    assert train["input_ids"].shape == (40, 16) and test["input_ids"].shape == (24, 16)
    assert train["nsp_labels"].shape == (40,)
    assert train["input_ids"].dtype == np.uint8 and train["mlm_labels"].dtype == np.int16
    assert ((train["input_ids"] == SEP).sum(axis=1) == 2).all()


def test_stores_the_language_and_the_optimum(files):
    _, test_path = files
    expected = build_language(PARAMS)
    with h5py.File(test_path, "r") as f:
        for name in ("topic_prior", "start", "transition"):
            np.testing.assert_array_equal(f[f"language/{name}"][()], getattr(expected, name))
    stored = load_optimum(test_path)
    recomputed = optimum(expected, load_dataset(test_path), PARAMS.mask_probability)
    assert stored == pytest.approx(recomputed, rel=1e-12)
    assert stored["chance_nsp_loss"] == pytest.approx(math.log(2))
    assert stored["bayes_mlm_loss"] < stored["unigram_mlm_loss"]


def test_train_file_has_no_optimum(files):
    with pytest.raises(DataFileError, match="has no optimum"):
        load_optimum(files[0])


def test_same_params_same_bytes_other_seed_different(files, tmp_path):
    again = make_datasets(PARAMS, tmp_path / "again")
    for first, second in zip(files, again, strict=True):
        assert first.read_bytes() == second.read_bytes()
    other = make_datasets(DataParams(**{**PARAMS.to_dict(), "random_seed": 1}), tmp_path / "other")
    assert not np.array_equal(load_dataset(other[0])["input_ids"],
                              load_dataset(files[0])["input_ids"])


def test_stale_file_is_refused(files):
    changed = DataParams(**{**PARAMS.to_dict(), "mask_probability": 0.2})
    with pytest.raises(DataFileError, match=r"other data parameters \(data.mask_probability\)"):
        load_dataset(files[0], changed)


def test_show_prints_an_example(files, capsys):
    assert main(["show", str(files[0]), "3"]) == 0
    out = capsys.readouterr().out
    arrays = load_dataset(files[0])
    lines = out.splitlines()
    assert lines[0] == f"{files[0]}, example 3 of 40"
    tokens = lines[1].split()
    assert len(tokens) == 16 and tokens[0] == "[CLS]" and tokens.count("[SEP]") == 2
    assert lines[2] == "token_type_ids  " + "".join(map(str, arrays["token_type_ids"][3]))
    assert lines[3] == "attention_mask  " + "".join(map(str, arrays["attention_mask"][3]))
    assert lines[4].startswith(f"NSP label {arrays['nsp_labels'][3]}")
    masked = np.flatnonzero(arrays["mlm_labels"][3] >= 0)
    assert lines[5].startswith(f"MLM labels at {len(masked)} position")
    for line, position in zip(lines[6:], masked, strict=True):
        assert line.split()[:2] == ["position", str(position)]
        assert f"original t{arrays['mlm_labels'][3][position]}" in line


@pytest.mark.parametrize(("args", "expected"), [
    (["show", "missing.h5", "0"],  # a file the user named, not the workflow's to remake
     "missing.h5: file not found; check that you named the right file"),
    (["show", "TRAIN", "40"], "has 40 examples, no example 40; pick an index in 0..39"),
])
def test_show_errors_are_one_line(files, capsys, args, expected):
    args = [str(files[0]) if a == "TRAIN" else a for a in args]
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ") and expected in captured.err
    assert captured.err.count("\n") == 1


def arrays_digest(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over every array's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name} {array.dtype.str} {array.shape}\n".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


# The example arrays of the shipped data: pinned, so that no new option changes them by a bit.
DEFAULT_DIGESTS = {
    "train": "c89fe12ac1c6ae60906f2c72cfa40b11dedf70b78213799041286af4fded1c49",
    "test": "76182d3551d13984da17c90a813d76dd25e92763823798e801235589ab79c59a",
}


@pytest.mark.parametrize("split", ["train", "test"])
def test_default_examples_are_bit_identical_to_the_pinned_ones(split):
    params = DataParams()
    arrays = build_split(params, build_language(params), split)
    assert sorted(arrays) == ["attention_mask", "input_ids", "mlm_labels", "nsp_labels",
                              "token_type_ids"]
    assert arrays_digest(arrays) == DEFAULT_DIGESTS[split]
