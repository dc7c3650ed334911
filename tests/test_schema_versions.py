"""Files of the previous schema version still read; a file of a newer one is refused in one line
that says what to rerun.

tests/fixtures/v1/ holds files of schema version 1 (fixed-length string attributes, no
descriptions, the text vocabulary as newline-joined bytes), made by bert-from-scratch 0.1.0 at
that version from the parameters ``V1`` below: data/train.h5 and data/test.h5 as train.h5 and
test.h5, artifacts/model.h5 and its run's checkpoint step-000000002.h5; text_test.h5 is the test
set of tests/textcorpus.py's ``write_corpus(folder, docs_per_file=3, sentences=4)`` under
``text_params(vocab_size=60, sequence_length=12)``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from bert.__main__ import main
from bert.data.datasets import load_dataset, load_optimum, load_vocab, make_datasets
from bert.data.tokens import TEXT_SPECIAL_TOKENS
from bert.errors import DataFileError
from bert.storage import checkpoint as ckpt
from bert.workflow.loader import params_from_mapping
from bert.workflow.params import bert_config
from bert.workflow.run import run_params

V1_FILES = Path(__file__).parent / "fixtures" / "v1"
V1 = {"data": {"vocab_size": 16, "sequence_length": 12, "batch_size": 4, "num_train_batches": 2,
               "num_test_batches": 1, "num_topics": 2, "successors": 2},
      "model": {"dim_model": 8, "num_heads": 2, "dim_ff": 8, "num_layers": 1},
      "training": {"epochs": 1, "warmup_steps": 1, "decay_steps": 10,
                   "checkpoint_every_steps": 1, "keep_checkpoints": 5}}
PARAMS = params_from_mapping(V1)


def test_the_fixtures_are_of_version_1():
    for path in V1_FILES.glob("*.h5"):
        with h5py.File(path) as f:
            assert f.attrs["schema_version"] == 1 and "global_heap" not in f.attrs, path.name


def test_version_1_datasets_read_and_hold_what_this_code_makes(tmp_path):
    make_datasets(PARAMS.data, tmp_path)
    for split in ("train", "test"):
        old = load_dataset(V1_FILES / f"{split}.h5", PARAMS.data)
        new = load_dataset(tmp_path / f"{split}.h5", PARAMS.data)
        assert old.keys() == new.keys()
        for name in old:
            np.testing.assert_array_equal(old[name], new[name], err_msg=f"{split} {name}")
    old, new = load_optimum(V1_FILES / "test.h5"), load_optimum(tmp_path / "test.h5")
    assert old.keys() == new.keys()
    for key in old:
        assert old[key] == pytest.approx(new[key], rel=1e-12), key


def test_a_version_1_text_vocabulary_reads():
    vocab = load_vocab(V1_FILES / "text_test.h5")
    assert len(vocab) == 60 and tuple(vocab[:5]) == TEXT_SPECIAL_TOKENS
    assert all(piece and "\n" not in piece for piece in vocab)


def test_version_1_weights_and_checkpoints_read():
    config, weights = ckpt.load_weights(V1_FILES / "model.h5", "fix")
    assert config == bert_config(PARAMS)
    state = ckpt.load_checkpoint(V1_FILES / "step-000000002.h5", config, run_params(PARAMS))
    assert state.step == 2 and len(state.history["loss_total"]) == 2
    for name, value in state.params.items():  # the last checkpoint is the trained model
        np.testing.assert_array_equal(value, weights[name], err_msg=name)


@pytest.mark.parametrize("name", ["train.h5", "test.h5", "text_test.h5", "model.h5",
                                  "step-000000002.h5"])
def test_version_1_files_are_summarised(capsys, name):
    assert main(["show", str(V1_FILES / name)]) == 0
    text = capsys.readouterr().out
    assert "schema version 1)" in text.splitlines()[0]
    assert "a file of schema version 1 records no more" in text
    assert "(no description)" in text


def test_a_file_of_a_newer_version_is_refused_with_what_to_rerun(tmp_path):
    make_datasets(PARAMS.data, tmp_path)
    path = tmp_path / "train.h5"
    with h5py.File(path, "r+") as f:
        f.attrs["schema_version"] = 3
    with pytest.raises(DataFileError) as info:
        load_dataset(path)
    assert str(info.value) == (f"{path}: schema version 3, this code reads version 1 or 2 (the "
                               "file was written by a newer bert-from-scratch); delete it and "
                               "run `doit data` to make it again")


def test_a_checkpoint_of_a_newer_version_is_skipped_not_used(tmp_path):
    copy = tmp_path / "step-000000002.h5"
    shutil.copy(V1_FILES / copy.name, copy)
    with h5py.File(copy, "r+") as f:
        f.attrs["schema_version"] = 3
    with pytest.raises(DataFileError, match="schema version 3, this code reads version 1 or 2"):
        ckpt.load_checkpoint(copy, bert_config(PARAMS), run_params(PARAMS))
