"""The data stage on text: identical files from identical input, the split by document, the
vocabulary stored with the data, the baselines, and a one-line error for each bad input."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tokenizers", reason="text data needs pip install -e '.[text]'")

import bert  # noqa: E402
from bert.data.corpus import split_documents  # noqa: E402
from bert.data.datasets import (  # noqa: E402
    load_dataset,
    load_optimum,
    load_vocab,
    make_datasets,
)
from bert.data.text import context_free_loss  # noqa: E402
from bert.errors import DataFileError, ParamsError  # noqa: E402
from bert.storage import h5io  # noqa: E402
from bert.views.show import show, summarize  # noqa: E402
from tests.textcorpus import text_params, write_corpus  # noqa: E402


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("project")
    write_corpus(root / "corpus")
    return root


@pytest.fixture(scope="module")
def files(project):
    return make_datasets(text_params(), project / "data", project)


def test_two_runs_give_the_same_contents(project, files, tmp_path, monkeypatch):
    """The same arrays and attributes, when and with what they were made aside
    (h5io.ORIGIN_ATTRS)."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")  # made at another time than the first
    again = make_datasets(text_params(), tmp_path / "again", project)
    for first, second in zip(files, again, strict=True):
        assert h5io.content_digest(first, "") == h5io.content_digest(second, "")
    other = make_datasets(text_params(random_seed=1), tmp_path / "other", project)
    assert h5io.content_digest(other[0], "") != h5io.content_digest(files[0], "")


def test_the_files_describe_themselves(files):
    vocab = load_vocab(files[0])
    assert vocab == load_vocab(files[1]) and len(vocab) == 120
    assert vocab[:5] == ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]"]
    assert "dog" in vocab and "unbelievable" in vocab
    train, test = load_dataset(files[0], text_params()), load_dataset(files[1])
    assert train["input_ids"].shape[1] == 24 and len(train["nsp_labels"]) >= 8
    assert len(test["nsp_labels"]) < len(train["nsp_labels"])
    tokenizer = bert.load_tokenizer(files[1])
    assert tokenizer.vocab == vocab
    assert tokenizer.decode(tokenizer.encode("The cat sat.")) == "the cat sat."


def test_text_has_baselines_and_no_optimum(files):
    optimum = load_optimum(files[1])
    assert "bayes_mlm_loss" not in optimum
    assert optimum["unigram_mlm_loss"] < optimum["uniform_mlm_loss"]
    assert optimum["chance_nsp_accuracy"] == 0.5


def test_the_closed_form_baseline_is_the_posterior_of_the_synthetic_one():
    from bert.data.examples import observation_model
    from bert.data.inference import context_free_posterior

    rng = np.random.default_rng(0)
    c = 7
    q = rng.dirichlet(np.ones(c))
    target = rng.integers(c, size=50)
    seen = np.where(rng.random(50) < 0.5, -1, rng.integers(c, size=50))
    _, emission_selected = observation_model(0.15, c)
    posterior = context_free_posterior(q, np.where(seen < 0, c, seen), emission_selected)
    expected = -np.log(posterior[np.arange(50), target]).mean()
    assert context_free_loss(q, seen, target) == pytest.approx(expected, rel=1e-12)


def test_a_text_file_is_summarised_with_its_vocabulary_and_baselines(files):
    text = summarize(files[1])
    assert "split test: " in text and "sentence task nsp" in text
    assert "baselines (losses in nats, accuracies as fractions):" in text
    assert "optimum (" not in text and "unigram_mlm_loss" in text
    row = next(line for line in text.splitlines() if line.startswith("  vocab "))
    assert "WordPiece pieces learnt from the text (## starts a piece" in row


def test_show_prints_words(files):
    text = show(files[1], 0)
    assert text.splitlines()[1].startswith("[CLS] ") and "t5" not in text
    assert text.splitlines()[-2].startswith("A: ") and text.splitlines()[-1].startswith("B: ")
    assert " ##" not in text.splitlines()[-2][3:] + text.splitlines()[-1][3:]  # pieces joined


def test_documents_and_sentences():
    text = "First one. Still\nthe first!  Yes?\n\n\n  \nSecond doc.\nAlso e.g. here"
    assert split_documents(text, False) == [["First one.", "Still the first!", "Yes?"],
                                            ["Second doc.", "Also e.g.", "here"]]
    assert split_documents("a b. c\nd e\n\nf", True) == [["a b. c", "d e"], ["f"]]


def test_the_split_is_by_document(project, files):
    # 12 documents, test_fraction 0.2: 2 test documents, and no test sentence in training
    from bert.data.corpus import read_corpus, split_train_test, text_paths

    docs = read_corpus(text_paths(["corpus/*.txt"], project), False)
    train, test = split_train_test(docs, 0.2, np.random.default_rng(0))
    assert len(docs) == 12 and len(test) == 2 and len(train) == 10
    assert not {s for d in test for s in d} & {s for d in train for s in d}


BAD = [
    ({"text_files": ["corpus/missing.txt"]}, ParamsError, "missing.txt does not exist"),
    ({"text_files": ["nowhere/*.txt"]}, ParamsError, "'nowhere/\\*.txt' matches no file"),
    ({"text_files": ["empty.txt"]}, DataFileError, "empty.txt: no text"),
    ({"text_files": ["one.txt"]}, DataFileError, "only 1 document"),
    ({"text_files": ["latin1.txt"]}, DataFileError, "latin1.txt: invalid UTF-8 at byte 10"),
    ({"test_fraction": 1.0}, ParamsError, "data.test_fraction is 1.0, which leaves no training"),
    ({"vocab_size": 20}, ParamsError, "data.vocab_size is 20, too small for the 5 special"),
    ({"vocab_size": 5000}, ParamsError, "data.vocab_size is 5000, but the training text gives"),
    ({"batch_size": 5000}, DataFileError, "fewer than data.batch_size"),
]


@pytest.mark.parametrize(("change", "error", "message"), BAD)
def test_bad_input_one_line_and_no_file(project, tmp_path, change, error, message):
    (project / "empty.txt").write_text("\n\n  \n")
    (project / "one.txt").write_text("Just one document.\nOf two lines.\n")
    (project / "latin1.txt").write_bytes("Naive, caf\u00e9.".encode("latin-1"))
    with pytest.raises(error, match=message) as caught:
        make_datasets(text_params(**change), tmp_path / "data", project)
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir())


def test_bad_params_are_refused_by_the_loader():
    with pytest.raises(ParamsError, match="data.sequence_length is 4, outside"):
        text_params(sequence_length=4)
    with pytest.raises(ParamsError, match="data.text_files is empty"):
        text_params(text_files=[])
    with pytest.raises(ParamsError, match="data.source is 'words'"):
        text_params(source="words")


def test_dupe_factor_passes_again_with_fresh_draws(project, files, tmp_path):
    twice = make_datasets(text_params(dupe_factor=2), tmp_path / "twice", project)
    once, again = load_dataset(files[0]), load_dataset(twice[0])
    assert 1.6 < len(again["nsp_labels"]) / len(once["nsp_labels"]) < 2.4
    assert load_vocab(twice[0]) == load_vocab(files[0])  # the same vocabulary


def test_whole_word_masking_keeps_words_whole(project, tmp_path):
    files = make_datasets(text_params(whole_word_masking=True, mask_probability=0.3),
                          tmp_path / "wwm", project)
    vocab, data = load_vocab(files[0]), load_dataset(files[0])
    labels = data["mlm_labels"].astype(int)
    original = np.where(labels >= 0, labels, data["input_ids"])
    inner = 0
    for row, t in zip(*np.nonzero(labels[:, 1:] >= 0), strict=True):
        if vocab[labels[row, t + 1]].startswith("##") and original[row, t] >= 5:
            assert labels[row, t] >= 0  # the word's previous piece is selected too
            inner += 1
    assert inner > 10
