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
from bert.data.datasets import make_datasets  # noqa: E402
from bert.data.loading import load_tokenizer  # noqa: E402
from bert.storage.checkpoint import VOCAB_DIGEST  # noqa: E402
from bert.views.fill_mask import fill_mask_text  # noqa: E402
from tests.textcorpus import TEXT_DATA, TEXT_RUN, text_params  # noqa: E402
from tests.workflow import API_STAGES, layout_of, make_run, tiny  # noqa: E402

SENTENCE = "the cat [MASK] over the river."
MODEL = "artifacts/runs/params/model.h5"
EXPORT = "artifacts/runs/params/export"


@pytest.fixture
def project(text_project, tmp_path, monkeypatch) -> Path:
    """A copy of the trained and exported text run (conftest.text_project), the current
    folder for the duration of the test."""
    folder = tmp_path / "project"
    shutil.copytree(text_project, folder)
    monkeypatch.chdir(folder)
    return folder


def text_test_set(folder: Path) -> Path:
    """The test set of the text run in ``folder``."""
    return layout_of(folder, TEXT_RUN).test_data


def refused(capsys, *args: str) -> str:
    assert main(["fill-mask", SENTENCE, *args]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_the_typed_mask_is_the_mask_token(project):
    for model in (MODEL, EXPORT):
        text = fill_mask_text(SENTENCE, model, None)
        assert text.splitlines()[1] == "[MASK] 1:" and len(text.splitlines()) == 7


def test_another_corpus_s_vocabulary_of_the_same_size_is_refused(project, tmp_path, capsys):
    other = tmp_path / "other"
    for path in (project / "corpus").iterdir():  # the same letters, other words
        (other / "corpus").mkdir(parents=True, exist_ok=True)
        words = path.read_text().split(" ")
        (other / "corpus" / path.name).write_text(" ".join(w[::-1] for w in words))
    _, test = make_datasets(text_params(), other / "data", other)
    ours = text_test_set(project)
    assert len(load_tokenizer(test).vocab) == len(load_tokenizer(ours).vocab)
    assert load_tokenizer(test).vocab != load_tokenizer(ours).vocab
    line = refused(capsys, "--tokenizer", str(test))
    assert f"{MODEL} and {test} do not belong together: the model was trained with " \
           "another vocabulary" in line


def test_an_export_of_one_model_with_the_tokenizer_of_another_is_refused(project, tmp_path,
                                                                        capsys):
    other = tmp_path / "other"
    for path in (project / "corpus").iterdir():
        (other / "corpus").mkdir(parents=True, exist_ok=True)
        (other / "corpus" / path.name).write_text(path.read_text().replace("the", "a"))
    make_run(other, TEXT_RUN, (*API_STAGES, "export"))
    shutil.copy(other / EXPORT / "tokenizer.json", f"{EXPORT}/tokenizer.json")
    line = refused(capsys, "--model", EXPORT)
    assert f"{EXPORT}: its model and its tokenizer do not belong together" in line


def test_a_tokenizer_with_two_ids_swapped_is_refused(project, capsys):
    path = project / EXPORT / "tokenizer.json"
    document = json.loads(path.read_text())
    vocab = document["model"]["vocab"]
    first, second = [piece for piece, i in vocab.items() if i in (10, 11)]
    vocab[first], vocab[second] = vocab[second], vocab[first]
    path.write_text(json.dumps(document))
    line = refused(capsys, "--model", EXPORT)
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
    path = project / EXPORT / "tokenizer.json"
    document = json.loads(path.read_text())
    document["model"]["vocab"] = change(document["model"]["vocab"])
    path.write_text(json.dumps(document))
    line = refused(capsys, "--model", EXPORT)
    assert f"tokenizer.json: {expected}" in line and "run `doit export`" in line


def test_a_model_of_the_synthetic_language_is_refused_with_a_text_tokenizer(project, tmp_path,
                                                                            capsys):
    synthetic = make_run(tmp_path / "synthetic", tiny(training={"epochs": 1}),
                         ("data", "init", "train"))
    line = refused(capsys, "--model", str(synthetic.model_weights))
    assert "was trained on the synthetic language, which has no words to fill in" in line


def test_a_model_that_records_no_vocabulary_is_checked_by_size_and_warned_about(project, capsys):
    with h5py.File(MODEL, "r+") as f:
        del f.attrs[VOCAB_DIGEST]
    assert main(["fill-mask", SENTENCE]) == 0  # the tokenizer of the run's test set
    test = text_test_set(project).relative_to(project)
    assert f"records no vocabulary, so nothing checks that {test} is the tokenizer" in (
        capsys.readouterr().err)
    with h5py.File(MODEL, "r+") as f:
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


def test_a_model_in_a_run_s_folder_reads_that_run_s_tokenizer(project, tmp_path, monkeypatch):
    """From another folder, and for a run not named params: the test set its record names."""
    renamed = project / "artifacts/runs/text"
    (project / "artifacts/runs/params").rename(renamed)
    record = json.loads((renamed / "run.json").read_text())
    (renamed / "run.json").write_text(json.dumps({**record, "name": "text"}))
    monkeypatch.chdir(tmp_path)
    first = fill_mask_text("the [MASK] of it", renamed / "model.h5", None).splitlines()[0]
    assert first.endswith(f"tokenizer {layout_of(project, TEXT_RUN).test_data})")
