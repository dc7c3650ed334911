"""``python -m bert fill-mask``: the [MASK] the user types is the mask token, and a model and a
tokenizer that do not belong together are refused in one line, never guesses in wrong words."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import pytest

pytest.importorskip("tokenizers", reason="text data needs pip install -e '.[text]'")
pytest.importorskip("safetensors", reason="the export needs pip install -e '.[interop]'")

from bert.__main__ import main  # noqa: E402
from bert.data.datasets import load_tokenizer, make_datasets  # noqa: E402
from bert.storage.checkpoint import VOCAB_DIGEST  # noqa: E402
from bert.views.fill_mask import fill_mask_text  # noqa: E402
from bert.workflow.export import export  # noqa: E402
from bert.workflow.init import initialize  # noqa: E402
from bert.workflow.layout import Layout  # noqa: E402
from bert.workflow.loader import params_from_mapping  # noqa: E402
from bert.workflow.train import train  # noqa: E402
from tests.textcorpus import TEXT_DATA, text_params, write_corpus  # noqa: E402
from tests.workflow import tiny  # noqa: E402

TEXT = tiny(data=TEXT_DATA, training={"epochs": 1})
SENTENCE = "the cat [MASK] over the river."


def trained_project(folder: Path, mapping: dict = TEXT) -> Path:
    params = params_from_mapping(mapping)
    layout = Layout(folder)
    make_datasets(params.data, layout.data_dir, folder)
    initialize(params, layout)
    train(params, layout, progress=False)
    export(params, layout)
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("text")
    write_corpus(folder / "corpus")
    return trained_project(folder)


@pytest.fixture
def project(trained, tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "project"
    shutil.copytree(trained, folder)
    monkeypatch.chdir(folder)
    return folder


def refused(capsys, *args: str) -> str:
    assert main(["fill-mask", SENTENCE, *args]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_the_typed_mask_is_the_mask_token(project):
    for model in ("artifacts/model.h5", "artifacts/export"):
        text = fill_mask_text(SENTENCE, model, None)
        assert text.splitlines()[1] == "[MASK] 1:" and len(text.splitlines()) == 7


def test_another_corpus_s_vocabulary_of_the_same_size_is_refused(project, tmp_path, capsys):
    other = tmp_path / "other"
    for path in (project / "corpus").iterdir():  # the same letters, other words
        (other / "corpus").mkdir(parents=True, exist_ok=True)
        words = path.read_text().split(" ")
        (other / "corpus" / path.name).write_text(" ".join(w[::-1] for w in words))
    _, test = make_datasets(text_params(), other / "data", other)
    assert len(load_tokenizer(test).vocab) == len(load_tokenizer("data/test.h5").vocab)
    assert load_tokenizer(test).vocab != load_tokenizer("data/test.h5").vocab
    line = refused(capsys, "--tokenizer", str(test))
    assert f"artifacts/model.h5 and {test} do not belong together: the model was trained with " \
           "another vocabulary" in line


def test_an_export_of_one_model_with_the_tokenizer_of_another_is_refused(project, tmp_path,
                                                                        capsys):
    other = tmp_path / "other"
    for path in (project / "corpus").iterdir():
        (other / "corpus").mkdir(parents=True, exist_ok=True)
        (other / "corpus" / path.name).write_text(path.read_text().replace("the", "a"))
    trained_project(other)
    shutil.copy(other / "artifacts/export/tokenizer.json", "artifacts/export/tokenizer.json")
    line = refused(capsys, "--model", "artifacts/export")
    assert "artifacts/export: its model and its tokenizer do not belong together" in line


def test_a_tokenizer_with_two_ids_swapped_is_refused(project, capsys):
    path = project / "artifacts/export/tokenizer.json"
    document = json.loads(path.read_text())
    vocab = document["model"]["vocab"]
    first, second = [piece for piece, i in vocab.items() if i in (10, 11)]
    vocab[first], vocab[second] = vocab[second], vocab[first]
    path.write_text(json.dumps(document))
    line = refused(capsys, "--model", "artifacts/export")
    assert "do not belong together: the model was trained with another vocabulary (or the " \
           "same pieces under other ids)" in line


@pytest.mark.parametrize(("change", "expected"), [
    (lambda v: {}, "its vocabulary is empty"),
    (lambda v: {**v, "extra": 500}, "its 121 ids are not 0 to 120, each once (id 120 is "
     "missing)"),
    (lambda v: {**v, "extra": 7}, "its 121 ids are not 0 to 120, each once (id 7 is given "
     "twice)"),
    (lambda v: {**v, "extra": "x"}, "its vocabulary gives 'extra' the id 'x'"),
    (lambda v: {("[MASQUE]" if p == "[MASK]" else p): i for p, i in v.items()},
     "its ids 0 to 4 are [PAD] [CLS] [SEP] [MASQUE] [UNK], not the special tokens"),
])
def test_a_tokenizer_json_that_is_not_ours_is_refused(project, capsys, change, expected):
    path = project / "artifacts/export/tokenizer.json"
    document = json.loads(path.read_text())
    document["model"]["vocab"] = change(document["model"]["vocab"])
    path.write_text(json.dumps(document))
    line = refused(capsys, "--model", "artifacts/export")
    assert f"tokenizer.json: {expected}" in line and "run `doit export`" in line


def test_a_model_of_the_synthetic_language_is_refused_with_a_text_tokenizer(project, tmp_path,
                                                                            capsys):
    from bert.workflow.data import make_data

    synthetic = tmp_path / "synthetic"
    params = params_from_mapping(tiny(training={"epochs": 1}))
    make_data(params, Layout(synthetic))
    initialize(params, Layout(synthetic))
    train(params, Layout(synthetic), progress=False)
    line = refused(capsys, "--model", str(synthetic / "artifacts/model.h5"))
    assert "was trained on the synthetic language, which has no words to fill in" in line


def test_a_model_that_records_no_vocabulary_is_checked_by_size_and_warned_about(project, capsys):
    with h5py.File("artifacts/model.h5", "r+") as f:
        del f.attrs[VOCAB_DIGEST]
    assert main(["fill-mask", SENTENCE]) == 0
    assert "records no vocabulary, so nothing checks that data/test.h5 is the tokenizer" in (
        capsys.readouterr().err)
    with h5py.File("artifacts/model.h5", "r+") as f:
        f.attrs["params"] = json.dumps({"data": {"source": "text"}})
    other = TEXT_DATA | {"vocab_size": 100}
    make_datasets(text_params(**other), project / "other", project)
    line = refused(capsys, "--tokenizer", "other/test.h5")
    assert "a vocabulary of 100 pieces for a model of 120 tokens" in line


@pytest.mark.parametrize(("top", "expected"), [("-3", "-3 is not 1 or more"),
                                               ("0", "0 is not 1 or more"),
                                               ("many", "'many' is not a whole number")])
def test_top_must_be_one_or_more(project, capsys, top, expected):
    with pytest.raises(SystemExit) as stop:
        main(["fill-mask", SENTENCE, "--top", top])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1
    assert err == (f"error: python -m bert fill-mask: argument --top: {expected}; see "
                   "`python -m bert fill-mask --help`\n")
