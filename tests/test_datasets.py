"""The data stage end to end: files, their contents, reproducibility, and `python -m bert show`."""

from __future__ import annotations

import hashlib
import math

import h5py
import numpy as np
import pytest

from bert.__main__ import main
from bert.data.datasets import (
    EXAMPLE_SPECS,
    SPLITS,
    build_language,
    build_split,
    dataset_attrs,
    load_dataset,
    load_optimum,
    load_vocab,
    make_datasets,
    masking_spec,
)
from bert.data.examples import num_examples, optimum
from bert.data.masking import MaskingSpec, masked_epoch, unmasked
from bert.data.params import DataParams
from bert.data.tokens import SEP
from bert.errors import DataFileError
from bert.storage import h5io

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


def test_same_params_same_contents_other_seed_different(files, tmp_path, monkeypatch):
    """Every file of the same params holds the same arrays and attributes (when and with what
    it was made aside: h5io.ORIGIN_ATTRS); with SOURCE_DATE_EPOCH fixed, the same bytes."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")  # made at another time than the first
    again = make_datasets(PARAMS, tmp_path / "again")
    for split in SPLITS:
        first, second = files[0].parent / f"{split}.h5", again[0].parent / f"{split}.h5"
        assert h5io.content_digest(first, "") == h5io.content_digest(second, ""), split
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    fixed = make_datasets(PARAMS, tmp_path / "fixed")
    assert make_datasets(PARAMS, tmp_path / "fixed2")[0].read_bytes() == fixed[0].read_bytes()
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


def task_params(**changes) -> DataParams:
    return DataParams(**{**PARAMS.to_dict(), **changes})


@pytest.fixture(scope="module")
def task_files(tmp_path_factory):
    """The data stage's folder for each of: sop, none, dynamic masking."""
    made = {}
    for name, changes in (("sop", {"sentence_task": "sop"}), ("none", {"sentence_task": "none"}),
                          ("dynamic", {"masking": "dynamic"})):
        folder = tmp_path_factory.mktemp(name)
        make_datasets(task_params(**changes), folder)
        made[name] = folder
    return made


NSP_KEYS = ["bayes_mlm_loss", "bayes_nsp_loss", "bayes_nsp_accuracy", "topic_only_nsp_accuracy",
            "uniform_mlm_loss", "unigram_mlm_loss", "chance_nsp_loss", "chance_nsp_accuracy",
            "num_mlm_labels", "num_examples"]
SOP_KEYS = [key.replace("nsp", "sop") for key in NSP_KEYS]


def test_writes_the_probe_sets_with_their_optima(files):
    folder = files[0].parent
    test = load_dataset(files[1])
    language = build_language(PARAMS)
    for task, keys in (("nsp", NSP_KEYS), ("sop", SOP_KEYS)):
        path = folder / f"probe_{task}.h5"
        probe = load_dataset(path, PARAMS)
        assert probe["input_ids"].shape == test["input_ids"].shape
        assert not np.array_equal(probe["input_ids"], test["input_ids"])  # its own draws
        attrs = dataset_attrs(path)
        assert (attrs["split"], attrs["sentence_task"], attrs["masking"]) == (
            f"probe_{task}", task, "static")
        assert attrs["nsp_labels"].startswith("0: ")
        stored = load_optimum(path)
        assert sorted(stored) == sorted(keys)
        recomputed = optimum(language, probe, PARAMS.mask_probability, sentence_task=task)
        assert stored == pytest.approx(recomputed, rel=1e-12)
    assert dataset_attrs(files[0])["nsp_labels"] == ("0: B follows A, 1: B is a segment of "
                                                     "another document")


def test_the_probes_are_the_same_whatever_the_task(files, task_files):
    for name in ("sop", "none", "dynamic"):
        for task in ("nsp", "sop"):
            ours = load_dataset(task_files[name] / f"probe_{task}.h5")
            shipped = load_dataset(files[0].parent / f"probe_{task}.h5")
            assert ours.keys() == shipped.keys()
            for key, array in ours.items():
                np.testing.assert_array_equal(array, shipped[key])


def test_sentence_order_files(task_files):
    params = task_params(sentence_task="sop")
    train = load_dataset(task_files["sop"] / "train.h5", params)
    assert sorted(train) == sorted(EXAMPLE_SPECS)
    assert dataset_attrs(task_files["sop"] / "train.h5")["nsp_labels"] == (
        "0: A and B in the document's order, 1: swapped: B comes first in the document")
    stored = load_optimum(task_files["sop"] / "test.h5")
    assert sorted(stored) == sorted(SOP_KEYS) and stored["topic_only_sop_accuracy"] == 0.5
    recomputed = optimum(build_language(params), load_dataset(task_files["sop"] / "test.h5"),
                         params.mask_probability, sentence_task="sop")
    assert stored == pytest.approx(recomputed, rel=1e-12)


def test_files_without_a_sentence_task_have_no_sentence_label(task_files, capsys):
    params = task_params(sentence_task="none")
    for split in ("train", "test"):
        arrays = load_dataset(task_files["none"] / f"{split}.h5", params)
        assert sorted(arrays) == ["attention_mask", "input_ids", "mlm_labels", "token_type_ids"]
        assert num_examples(arrays) == {"train": 40, "test": 24}[split]
        assert ((arrays["input_ids"] == SEP).sum(axis=1) == 1).all()
        assert "nsp_labels" not in dataset_attrs(task_files["none"] / f"{split}.h5")
    stored = load_optimum(task_files["none"] / "test.h5")
    assert sorted(stored) == ["bayes_mlm_loss", "num_examples", "num_mlm_labels",
                              "uniform_mlm_loss", "unigram_mlm_loss"]
    assert main(["show", str(task_files["none"] / "train.h5"), "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split().count("[SEP]") == 1
    assert lines[4] == "no sentence label (data.sentence_task: none)"
    assert lines[5].startswith("MLM labels at ")


def test_dynamic_masking_stores_the_training_set_unmasked(files, task_files, capsys):
    params = task_params(masking="dynamic")
    train = load_dataset(task_files["dynamic"] / "train.h5", params)
    static = load_dataset(files[0])
    assert "mlm_labels" not in train  # the masks are the training loop's, drawn each epoch
    np.testing.assert_array_equal(train["input_ids"], unmasked(static)["input_ids"])
    assert dataset_attrs(task_files["dynamic"] / "train.h5")["masking"] == "dynamic"
    for split in ("test", "probe_nsp", "probe_sop"):  # fixed masks: the optimum stands
        ours, shipped = (load_dataset(f.parent / f"{split}.h5")
                         for f in (task_files["dynamic"] / "x", files[0]))
        for key, array in shipped.items():
            np.testing.assert_array_equal(ours[key], array)
        assert dataset_attrs(task_files["dynamic"] / f"{split}.h5")["masking"] == "static"
    spec = masking_spec(task_files["dynamic"] / "train.h5")
    assert spec == MaskingSpec(PARAMS.mask_probability, 4, PARAMS.vocab_size)
    epoch = masked_epoch(train, 0, 0, spec)
    assert (epoch["mlm_labels"] >= 0).any(axis=1).all()
    assert main(["show", str(task_files["dynamic"] / "train.h5"), "3"]) == 0
    assert "no MLM labels: the masks are drawn afresh each epoch" in capsys.readouterr().out


@pytest.mark.parametrize(("split", "missing"), [("test", "nsp_labels"), ("train", "mlm_labels"),
                                                ("probe_sop", "nsp_labels")])
def test_a_file_without_an_array_it_should_hold_is_refused(files, tmp_path, split, missing):
    damaged = tmp_path / f"{split}.h5"
    damaged.write_bytes((files[0].parent / f"{split}.h5").read_bytes())
    with h5py.File(damaged, "a") as f:
        del f[missing]
    with pytest.raises(DataFileError, match=f"dataset '{missing}' is missing; "):
        load_dataset(damaged)


def test_text_files_of_each_task_and_masking(tmp_path):
    pytest.importorskip("tokenizers", reason="text data needs pip install -e '.[text]'")
    from tests.textcorpus import text_params, write_corpus

    write_corpus(tmp_path / "corpus")
    shipped = make_datasets(text_params(), tmp_path / "nsp", tmp_path)
    for task, keys in (("nsp", ["chance_nsp_loss", "chance_nsp_accuracy"]),
                       ("sop", ["chance_sop_loss", "chance_sop_accuracy"])):
        baselines = load_optimum(tmp_path / "nsp" / f"probe_{task}.h5")
        assert sorted(key for key in baselines if key.startswith("chance")) == sorted(keys)
        assert not any(key.startswith("bayes") for key in baselines)
    sop = make_datasets(text_params(sentence_task="sop"), tmp_path / "sop", tmp_path)
    assert "chance_sop_accuracy" in load_optimum(sop[1])
    assert 0.3 < load_dataset(sop[0])["nsp_labels"].mean() < 0.7
    none = make_datasets(text_params(sentence_task="none"), tmp_path / "none", tmp_path)
    arrays = load_dataset(none[0])
    assert "nsp_labels" not in arrays and not arrays["token_type_ids"].any()
    assert ((arrays["input_ids"] == SEP).sum(axis=1) >= 1).all()
    assert ((arrays["input_ids"] == SEP).sum(axis=1) > 1).any()  # runs on into other documents
    assert not any(key.startswith("chance") for key in load_optimum(none[1]))
    dynamic = make_datasets(text_params(masking="dynamic", whole_word_masking=True),
                            tmp_path / "dynamic", tmp_path)
    static = make_datasets(text_params(whole_word_masking=True), tmp_path / "wwm", tmp_path)
    np.testing.assert_array_equal(load_dataset(dynamic[0])["input_ids"],
                                  unmasked(load_dataset(static[0]))["input_ids"])
    assert load_dataset(dynamic[1]).keys() == load_dataset(shipped[1]).keys()
    spec = masking_spec(dynamic[0])
    vocab = load_vocab(dynamic[0])
    assert (spec.first_content, spec.vocab_size) == (5, len(vocab))
    assert spec.continuation.tolist() == [piece.startswith("##") for piece in vocab]
    assert masking_spec(shipped[0]).continuation is None
