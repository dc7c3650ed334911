"""Text as users have it: special tokens written in the text, text without sentence ends, one
huge line, tiny documents, file names with glob characters, and paths that are not files. None
of it is silently thrown away, mistaken for something else, or read before it is known to fit."""

from __future__ import annotations

import logging
import os
import re

import numpy as np
import pytest

pytest.importorskip("tokenizers", reason="text data needs pip install -e '.[text]'")

from bert.data import text as text_module  # noqa: E402
from bert.data.corpus import text_paths  # noqa: E402
from bert.data.datasets import load_dataset, load_optimum, load_vocab, make_datasets  # noqa: E402
from bert.data.text import cut  # noqa: E402
from bert.data.tokens import CLS, MASK, PAD, SEP  # noqa: E402
from bert.errors import ParamsError, ResourceError  # noqa: E402
from tests.textcorpus import text_params, write_corpus  # noqa: E402


def examples(tmp_path, files, **data):
    """The train and test arrays of the data stage on ``files`` ({name: text})."""
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    params = text_params(text_files=sorted(files), **data)
    train, test = make_datasets(params, tmp_path / "data", tmp_path)
    return load_dataset(train), load_dataset(test), load_vocab(train)


# --- 5: special tokens written in the text are text -------------------------------------------

def test_special_tokens_written_in_the_text_are_ordinary_pieces(tmp_path):
    rng = np.random.default_rng(0)
    words = "the [PAD] [SEP] [MASK] [CLS] [UNK] model reads a bert paper about masks".split()
    documents = ["\n".join(" ".join(rng.choice(words, size=9)) + "." for _ in range(6))
                 for _ in range(12)]
    train, test, vocab = examples(tmp_path, {"bert.txt": "\n\n".join(documents)},
                                  vocab_size=60, mask_probability=0.3)
    assert "mask" in vocab and "[" in vocab
    for data in (train, test):
        ids, attended = data["input_ids"].astype(int), data["attention_mask"] == 1
        labels = data["mlm_labels"]
        assert (ids[:, 0] == CLS).all() and ((ids == CLS) & attended).sum() == len(ids)
        assert (((ids == SEP) & attended).sum(axis=1) == 2).all()  # exactly the data stage's
        assert not ((ids == PAD) & attended).any()
        assert ((ids == MASK) <= (labels >= 0)).all()  # every [MASK] has its label
        assert (labels != MASK).all() and (labels[labels >= 0] >= 5).all()


# --- 6: text without sentence ends, one huge line, text larger than the memory ----------------

def test_text_without_sentence_ends_becomes_examples_and_says_how_much(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    write_corpus(tmp_path / "corpus", sentences=12)
    with_ends = make_datasets(text_params(), tmp_path / "ends", tmp_path)
    ends_line = caplog.records[-1].getMessage()
    for path in (tmp_path / "corpus").iterdir():
        path.write_text(re.sub(r"[.!?]", "", path.read_text()))
    caplog.clear()
    without = make_datasets(text_params(), tmp_path / "no-ends", tmp_path)
    line = caplog.records[-1].getMessage()
    counts = [len(load_dataset(path)["nsp_labels"]) for path in (with_ends[0], without[0])]
    assert counts[1] > 0.6 * counts[0]  # was 1 in 100
    share = int(re.search(r"training examples hold (\d+)% of the", line).group(1))
    assert share >= 60 and re.search(r"^text: \d+ training examples hold \d+% of the [\d,]+ tokens "
                                     r"of \d+ documents; \d+ test examples hold", line)
    assert int(re.search(r"hold (\d+)% of", ends_line).group(1)) >= 75


def test_one_huge_line_is_cut_into_pieces_that_pair_up(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    rng = np.random.default_rng(1)
    words = "a chat log line of code with lists and words but never an end".split()
    lines = [" ".join(rng.choice(words, size=3000)) for _ in range(4)]
    train, test, _ = examples(tmp_path, {"log.txt": "\n\n".join(lines)}, vocab_size=50)
    # 3 training documents of ~3000 tokens: ~100 pieces each of at most 10 (24 - 3, halved)
    assert len(train["nsp_labels"]) > 300 and len(test["nsp_labels"]) > 100
    assert (train["nsp_labels"] == 0).mean() > 0.35  # B follows A: pieces pair up
    share = int(re.search(r"training examples hold (\d+)% of", caplog.text).group(1))
    assert share >= 60


def test_cut_pieces_are_near_equal_and_at_most_half_an_example():
    ids = list(range(100))
    pieces = cut(ids, 21)  # 21 content tokens per example: pieces of at most 10
    assert [t for p in pieces for t in p] == ids
    assert max(len(p) for p in pieces) <= 10 and min(len(p) for p in pieces) >= 9
    assert cut(ids[:21], 21) == [ids[:21]]  # a sentence that fits is left whole


def test_text_that_cannot_fit_in_memory_is_refused_before_it_is_read(tmp_path, monkeypatch):
    write_corpus(tmp_path / "corpus")
    size = sum(p.stat().st_size for p in (tmp_path / "corpus").iterdir())

    def never(*args):
        raise AssertionError("the text was read")

    monkeypatch.setattr(text_module, "read_corpus", never)
    monkeypatch.setattr("bert.storage.memory.machine_bytes",
                        lambda: text_module.TEXT_MEMORY_PER_BYTE * size - 1)
    with pytest.raises(ResourceError, match=r"data.text_files: the text \(.* GiB\): this needs "
                       r"~.* GiB; the machine has .*; use fewer or smaller files"):
        make_datasets(text_params(), tmp_path / "data", tmp_path)
    assert not (tmp_path / "data").exists()


# --- 7: every example has a masked token ------------------------------------------------------

def test_tiny_documents_and_a_small_mask_probability_still_give_every_example_a_label(tmp_path):
    rng = np.random.default_rng(2)
    words = "odd tiny bits of text".split()
    documents = [" ".join(rng.choice(words, size=2)) + "." for _ in range(200)]
    for whole_words in (False, True):
        train, test, _ = examples(tmp_path, {"tiny.txt": "\n\n".join(documents)},
                                  vocab_size=30, mask_probability=0.001, batch_size=4,
                                  whole_word_masking=whole_words)
        for data in (train, test):
            assert ((data["mlm_labels"] >= 0).sum(axis=1) >= 1).all()
        baselines = load_optimum(tmp_path / "data/test.h5")
        assert baselines["num_mlm_labels"] >= len(test["nsp_labels"])
        assert np.isfinite(baselines["unigram_mlm_loss"])


# --- 11, 23: which files are read -------------------------------------------------------------

def test_a_name_with_glob_characters_is_that_file_when_it_exists(tmp_path):
    for name in ("notes[1].txt", "notes1.txt", "notes2.txt"):
        (tmp_path / name).write_text(name)
    assert text_paths(["notes[1].txt"], tmp_path) == [tmp_path / "notes[1].txt"]
    assert text_paths(["notes[12].txt"], tmp_path) == [tmp_path / "notes1.txt",
                                                       tmp_path / "notes2.txt"]  # a glob


@pytest.mark.parametrize(("make", "expected"), [
    (lambda d: (d / "corpus").mkdir(), "corpus is a folder, not a file; name text files, e.g. "
     "'corpus/*.txt'"),
    (lambda d: (d / "corpus").symlink_to("/dev/zero"), "corpus is a character device, not a "
     "file; name text files"),
    (lambda d: os.mkfifo(d / "corpus"), "corpus is a named pipe (FIFO), not a file"),
    (lambda d: None, "corpus does not exist; fix the path"),
])
def test_a_path_that_is_not_a_file_says_what_it_is(tmp_path, make, expected):
    make(tmp_path)
    with pytest.raises(ParamsError, match=re.escape(expected)):
        text_paths(["corpus"], tmp_path)
    with pytest.raises(ParamsError, match="/dev/zero is a character device, not a file"):
        text_paths(["/dev/zero"], tmp_path)


def test_a_test_set_with_no_masked_token_is_refused(tmp_path, monkeypatch):
    from bert.data import pairs

    def nothing_selected(rng, ids, first, vocab_size, continuation, probability):
        return ids, np.full(ids.shape, -100)

    write_corpus(tmp_path / "corpus")
    monkeypatch.setattr(pairs, "mask_text", nothing_selected)
    with pytest.raises(ParamsError, match="the test set has no masked token to score"):
        make_datasets(text_params(), tmp_path / "data", tmp_path)
    assert not (tmp_path / "data").exists()
