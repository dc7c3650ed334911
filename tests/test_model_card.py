"""The export is complete for the Hub as it stands: the model, a tokenizer of the synthetic
language too, and a ``README.md`` model card with front matter, results, params and how the model
was trained."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

pytest.importorskip("safetensors", reason="the export needs pip install -e '.[interop]'")
pytest.importorskip("tokenizers", reason="the export's tokenizer needs pip install -e '.[text]'")

import bert  # noqa: E402
from bert.storage import h5io  # noqa: E402
from bert.workflow.evaluate import evaluate_model  # noqa: E402
from bert.workflow.export import export  # noqa: E402
from bert.workflow.layout import Layout  # noqa: E402
from bert.workflow.report import read_metrics  # noqa: E402
from bert.workflow.stages import stage  # noqa: E402
from tests.workflow import tiny_params, tiny_project  # noqa: E402

EXPORT_FILES = {"README.md", "config.json", "model.safetensors", "tokenizer.json",
                "tokenizer_config.json", "vocab.txt"}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("project")
    tiny_project(folder)
    layout, params = Layout(folder), tiny_params()
    evaluate_model(params, layout)
    export(params, layout)
    return layout.export_dir


def card(exported: Path) -> tuple[dict, str]:
    text = (exported / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    front, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(front), body


def test_the_export_holds_every_file_the_hub_needs(exported):
    assert {path.name for path in exported.iterdir()} == EXPORT_FILES
    _, body = card(exported)
    for name in EXPORT_FILES:
        assert f"- `{name}`" in body


def test_the_front_matter_is_what_the_hub_reads(exported):
    meta, _ = card(exported)
    assert meta["library_name"] == "transformers" and meta["pipeline_tag"] == "fill-mask"
    assert {"bert", "fill-mask", "bert-from-scratch", "synthetic-data", "nsp"} <= set(meta["tags"])
    widget = meta["widget"][0]["text"]
    assert widget.count("[MASK]") == 1
    vocab = set(bert.load_tokenizer(exported).vocab)
    assert all(word in vocab for word in widget.split()), widget


def test_the_card_gives_the_results_the_params_and_the_origin(exported):
    _, body = card(exported)
    layout, params = Layout(exported.parents[1]), tiny_params()
    metrics = read_metrics(layout.metrics)
    row = next(line for line in body.splitlines() if line.startswith("| test MLM loss |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[1] == f"{metrics['test']['mlm_loss']:.4f}"
    assert cells[2] == f"{metrics['optimum']['bayes_mlm_loss']:.4f}"
    assert cells[3] == f"{metrics['optimum']['unigram_mlm_loss']:.4f}"
    assert "| test NSP accuracy |" in body and "| train MLM loss |" in body
    block = body.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert yaml.safe_load(block) == params.subset(stage("report").reads)
    created = h5io.read(layout.model_weights, schema=tuple(h5io.KINDS),
                        schema_version=None, specs={}, fix="", names=()).attrs["created"]
    assert f"Weights written {created} by bert-from-scratch" in body
    assert "12 optimizer steps in 2 epochs of 8 examples of 16 tokens per step" in body
    assert "AdamW: learning rate 0.01 (linear schedule, 2 warmup steps)" in body


def test_transformers_reads_the_synthetic_tokenizer_and_fills_the_widget(exported):
    pytest.importorskip("transformers", reason="needs pip install -e '.[reference]'")
    from transformers import AutoTokenizer, pipeline

    theirs = AutoTokenizer.from_pretrained(exported)
    ours = bert.load_tokenizer(exported.parents[1] / "data/test.h5")
    assert theirs("t4 t5")["input_ids"] == [1, *ours.encode("t4 t5"), 2] == [1, 4, 5, 2]
    meta, _ = card(exported)
    guesses = pipeline("fill-mask", model=str(exported))(meta["widget"][0]["text"])
    assert len(guesses) == 5 and all(g["token_str"] in ours.vocab for g in guesses)
