"""End to end on text: ``doit`` on a small corpus the test writes, then ``doit export``, then
transformers' fill-mask pipeline on the export and our own ``python -m bert fill-mask``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("tokenizers", reason="text data needs pip install -e '.[text]'")

import bert  # noqa: E402
from tests.test_workflow import FIRST_RUN, doit, make_project, ran  # noqa: E402
from tests.textcorpus import TEXT_DATA, write_corpus  # noqa: E402
from tests.workflow import tiny  # noqa: E402

TEXT = tiny(data=TEXT_DATA, training={"epochs": 1})
pytestmark = pytest.mark.slow  # doit end to end


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    folder = make_project(tmp_path_factory.mktemp("text"), TEXT)
    write_corpus(folder / "corpus")
    assert ran(doit(folder)) == list(FIRST_RUN)
    return folder


def test_the_run_reports_baselines_and_no_optimum(project):
    results = json.loads((project / "artifacts/results.json").read_text())
    assert "optimum" not in results and "gap_to_optimum" not in results
    assert results["baselines"]["unigram_mlm_loss"] < results["baselines"]["uniform_mlm_loss"]
    assert results["test_mlm_loss"] > 0 and results["params"]["data"]["source"] == "text"
    shown = subprocess.run([sys.executable, "-m", "bert", "curves"], cwd=project,
                           capture_output=True, text=True, check=True).stdout
    assert "no optimum" in shown


def test_a_changed_text_file_reruns_the_data(project):
    corpus = project / "corpus/part1.txt"
    before = corpus.read_text()
    corpus.write_text(before.replace("cat", "cow"))
    try:
        assert ran(doit(project, "data")) == ["data"]
        # the same parameters on other text are another run, with its own checkpoints
        assert "training from the initial weights" in doit(project, "train").stderr
        assert len(list((project / "artifacts/checkpoints").iterdir())) == 2
    finally:
        corpus.write_text(before)
    assert ran(doit(project, "data")) == ["data"]
    assert ran(doit(project, "data")) == []


def test_export_loads_in_transformers_fill_mask(project):
    pytest.importorskip("transformers", reason="needs pip install -e '.[reference]'")
    pytest.importorskip("safetensors", reason="needs pip install -e '.[interop]'")
    from transformers import AutoTokenizer, pipeline

    assert ran(doit(project, "export"))[-1] == "export"  # after retraining on the text
    export = project / "artifacts/export"
    assert {path.name for path in export.iterdir()} == {
        "README.md", "config.json", "model.safetensors", "tokenizer.json",
        "tokenizer_config.json", "vocab.txt"}
    card = (export / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\nlibrary_name: transformers\npipeline_tag: fill-mask\n")
    results = json.loads((project / "artifacts/results.json").read_text())
    assert f"| test MLM loss | {results['test_mlm_loss']:.4f} | – |" in card  # no optimum
    theirs = AutoTokenizer.from_pretrained(export)
    sentence = "The quick cat jumped over the red house, naïvely!"
    ids = theirs(sentence)["input_ids"]
    assert ids == [1, *bert.load_tokenizer(export).encode(sentence), 2]
    assert ids == [1, *bert.load_tokenizer(project / "data/test.h5").encode(sentence), 2]
    fill = pipeline("fill-mask", model=str(export))
    guesses = fill("the cat [MASK] over the river.")
    assert len(guesses) == 5 and abs(sum(g["score"] for g in guesses)) <= 1.0

    ours = subprocess.run([sys.executable, "-m", "bert", "fill-mask",
                           "the cat [MASK] over the river.", "--model", str(export)],
                          cwd=project, capture_output=True, text=True, check=True).stdout
    lines = ours.splitlines()[2:]
    assert [line.split()[1] for line in lines] == [g["token_str"] for g in guesses]
    for line, guess in zip(lines, guesses, strict=True):
        assert float(line.split()[2]) == pytest.approx(guess["score"], abs=2e-3)
    from_weights = subprocess.run([sys.executable, "-m", "bert", "fill-mask",
                                   "the cat [MASK] over the river."], cwd=project,
                                  capture_output=True, text=True, check=True).stdout
    assert from_weights.splitlines()[2:] == lines  # our weights file and the data's tokenizer
