"""Export to and import from transformers directories (config.json + model.safetensors)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bert import BertConfig, BertForPreTraining
from bert.api import from_pretrained
from bert.errors import ConfigError, DataFileError
from bert.storage.checkpoint import save_weights
from bert.storage.interop import save_pretrained
from tests.numgrad import relative_error
from tests.test_model import make_batch

safetensors = pytest.importorskip("safetensors.numpy", reason="needs pip install -e '.[interop]'")

OURS = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=24, max_position_embeddings=16, hidden_dropout_prob=0.0,
                  attention_probs_dropout_prob=0.0)
# unlike ours in every dimension, and in layer_norm_eps and type_vocab_size
THEIRS = {"vocab_size": 50, "hidden_size": 24, "num_hidden_layers": 3, "num_attention_heads": 3,
          "intermediate_size": 40, "max_position_embeddings": 20, "type_vocab_size": 3,
          "layer_norm_eps": 1e-7, "initializer_range": 0.2, "hidden_dropout_prob": 0.0,
          "attention_probs_dropout_prob": 0.0}


def trained_like(config: BertConfig, seed: int = 0) -> BertForPreTraining:
    """A model whose biases and LayerNorm parameters are not at their initial values."""
    model = BertForPreTraining(config, seed=seed)
    rng = np.random.default_rng(seed)
    for value in model.params.values():
        value += rng.normal(scale=0.05, size=value.shape).astype(value.dtype)
    return model


def test_round_trip_is_bit_exact(tmp_path):
    model = trained_like(OURS)
    model.save_pretrained(tmp_path / "export")
    assert json.loads((tmp_path / "export/config.json").read_text())["architectures"] == [
        "BertForPreTraining"]
    stored = safetensors.load_file(tmp_path / "export/model.safetensors")
    np.testing.assert_array_equal(stored["cls.predictions.decoder.weight"],
                                  model.params["bert.embeddings.word_embeddings.weight"])
    again = from_pretrained(tmp_path / "export")
    assert again.config == OURS and again.params.keys() == model.params.keys()
    for name, value in model.params.items():
        assert again.params[name].dtype == value.dtype
        np.testing.assert_array_equal(again.params[name], value, err_msg=name)


def test_our_weight_files_load_too(tmp_path):
    model = trained_like(OURS)
    save_weights(tmp_path / "model.h5", OURS, model.params, {})
    again = from_pretrained(tmp_path / "model.h5")
    for name, value in model.params.items():
        np.testing.assert_array_equal(again.params[name], value)


def write_checkpoint(directory, config: dict, tensors: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))
    safetensors.save_file(tensors, directory / "model.safetensors", metadata={"format": "pt"})


def test_a_bare_encoder_checkpoint_gets_fresh_heads_reported(tmp_path, caplog):
    model = trained_like(OURS)
    bare = {name.removeprefix("bert."): value for name, value in model.params.items()
            if name.startswith("bert.") and not name.startswith("bert.pooler.")}
    bare["embeddings.position_ids"] = np.arange(16)[None]  # a buffer some versions saved
    write_checkpoint(tmp_path / "bare", OURS.to_hf(), bare)
    loaded = from_pretrained(tmp_path / "bare")
    for name, value in bare.items():
        if name != "embeddings.position_ids":
            np.testing.assert_array_equal(loaded.params[f"bert.{name}"], value)
    assert "cls.seq_relationship.weight" in caplog.text and "bert.pooler.dense.weight" in (
        caplog.text)
    assert np.all(loaded.params["cls.predictions.bias"] == 0)  # freshly initialized


@pytest.mark.parametrize(("change", "message"), [
    ("wrong shape", "has shape"),
    ("missing encoder weight", "missing encoder weights"),
    ("foreign", "unexpected weights"),
    ("pickle only", "pickled"),
    ("not safetensors", "not a readable safetensors file"),
])
def test_bad_checkpoints_give_a_clear_error(tmp_path, change, message):
    tensors = {name: np.ascontiguousarray(v) for name, v in trained_like(OURS).params.items()}
    folder = tmp_path / "checkpoint"
    if change == "wrong shape":
        tensors["bert.encoder.layer.1.output.dense.weight"] = np.zeros((16, 23), np.float32)
    elif change == "missing encoder weight":
        del tensors["bert.encoder.layer.0.attention.self.key.weight"]
    elif change == "foreign":
        tensors = {"model.layers.0.mlp.weight": np.zeros((2, 2), np.float32)}
    write_checkpoint(folder, OURS.to_hf(), tensors)
    if change == "pickle only":
        (folder / "model.safetensors").unlink()
        (folder / "pytorch_model.bin").write_bytes(b"\x80\x04")
    elif change == "not safetensors":
        (folder / "model.safetensors").write_bytes(b"not a safetensors file at all")
    with pytest.raises(DataFileError, match=message):
        from_pretrained(folder)


def test_an_unknown_architecture_is_refused(tmp_path):
    write_checkpoint(tmp_path / "gpt", {**OURS.to_hf(), "model_type": "gpt2"}, {})
    with pytest.raises(ConfigError, match="gpt2"):
        from_pretrained(tmp_path / "gpt")


@pytest.fixture
def transformers():
    pytest.importorskip("torch", reason="needs pip install -e '.[reference]'")
    return pytest.importorskip("transformers", reason="needs pip install -e '.[reference]'")


def test_transformers_loads_the_export_and_computes_the_same_logits(tmp_path, transformers):
    import torch

    model = trained_like(OURS)
    save_pretrained(model, tmp_path / "export")
    theirs, info = transformers.BertForPreTraining.from_pretrained(
        tmp_path / "export", output_loading_info=True, attn_implementation="eager")
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    theirs.eval()
    batch = make_batch(np.random.default_rng(1), OURS, B=3, T=12)
    with torch.no_grad():
        out = theirs(**{k: torch.tensor(batch[k]) for k in ("input_ids", "token_type_ids",
                                                            "attention_mask")})
    ours = model.forward(batch)
    assert relative_error(ours["mlm_logits"], out.prediction_logits.numpy()) <= 1e-5
    assert relative_error(ours["nsp_logits"], out.seq_relationship_logits.numpy()) <= 1e-5


@pytest.mark.parametrize("bare", [False, True], ids=["BertForPreTraining", "BertModel"])
def test_a_transformers_checkpoint_imports_and_matches(tmp_path, transformers, bare, caplog):
    import torch

    torch.manual_seed(0)
    config = transformers.BertConfig(**THEIRS, attn_implementation="eager")
    cls = transformers.BertModel if bare else transformers.BertForPreTraining
    theirs = cls(config).eval()
    theirs.save_pretrained(tmp_path / "saved")
    ours = from_pretrained(tmp_path / "saved", dtype=np.float64)
    assert ours.config == BertConfig.from_hf(THEIRS)
    batch = make_batch(np.random.default_rng(2), ours.config, B=3, T=14)
    batch["token_type_ids"][0, 5:9] = 2  # the third token type exists in this config
    inputs = {k: torch.tensor(batch[k]) for k in ("input_ids", "token_type_ids",
                                                  "attention_mask")}
    with torch.no_grad():
        out = theirs(**inputs, output_hidden_states=True)
    mine = ours.forward(batch)
    for i, hidden in enumerate(out.hidden_states):
        assert relative_error(mine["hidden_states"][i], hidden.double().numpy()) <= 1e-5, i
    if bare:
        assert "cls.predictions.bias" in caplog.text
    else:
        assert relative_error(mine["mlm_logits"], out.prediction_logits.double().numpy()) <= 1e-5
        assert relative_error(mine["nsp_logits"],
                              out.seq_relationship_logits.double().numpy()) <= 1e-5


def test_training_can_start_from_a_transformers_checkpoint(tmp_path):
    from bert.errors import ParamsError
    from bert.storage.checkpoint import load_weights
    from bert.workflow.init import initialize
    from bert.workflow.layout import Layout
    from bert.workflow.params import bert_config
    from tests.workflow import tiny_params

    source = trained_like(bert_config(tiny_params()), seed=3)
    save_pretrained(source, tmp_path / "pretrained")
    layout = Layout(tmp_path)
    initialize(tiny_params(model={"init_from": "pretrained"}), layout)
    _, weights = load_weights(layout.init_weights, "fix")
    for name, value in source.params.items():
        np.testing.assert_array_equal(weights[name], value)
    with pytest.raises(ParamsError, match=r"another architecture: hidden_size 16 \(params: 32\)"):
        initialize(tiny_params(model={"init_from": "pretrained", "dim_model": 32}), layout)
    with pytest.raises(ParamsError, match="does not exist"):
        initialize(tiny_params(model={"init_from": "nowhere"}), layout)


@pytest.mark.parametrize("task", ["sop", "none"])
def test_runs_of_every_sentence_task_export_and_load_in_transformers(tmp_path, transformers,
                                                                     task):
    """The sentence head is cls.seq_relationship under SOP as under NSP; without a sentence task
    it is exported as initialized. transformers' BertForPreTraining loads either with no
    missing or unexpected key and computes the same logits."""
    import torch

    from bert.data.datasets import load_dataset, make_datasets
    from bert.storage.checkpoint import load_weights
    from bert.workflow.export import export
    from bert.workflow.init import initialize
    from bert.workflow.layout import Layout
    from bert.workflow.params import bert_config
    from bert.workflow.train import train
    from tests.workflow import tiny_params

    params = tiny_params(data={"sentence_task": task, "masking": "dynamic"},
                         training={"epochs": 1})
    layout = Layout(tmp_path)
    make_datasets(params.data, layout.data_dir)
    initialize(params, layout)
    train(params, layout, progress=False)
    export(params, layout)
    theirs, info = transformers.BertForPreTraining.from_pretrained(
        layout.export_dir, output_loading_info=True, attn_implementation="eager")
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    theirs.eval()
    config, weights = load_weights(layout.model_weights, "fix", bert_config(params))
    ours = BertForPreTraining(config, params=weights)
    batch = {name: values[:8].astype(np.int64)
             for name, values in load_dataset(layout.test_data).items()}
    with torch.no_grad():
        out = theirs(**{k: torch.tensor(batch[k]) for k in ("input_ids", "token_type_ids",
                                                            "attention_mask")})
    mine = ours.forward(batch)
    assert relative_error(mine["mlm_logits"], out.prediction_logits.numpy()) <= 1e-5
    assert relative_error(mine["nsp_logits"], out.seq_relationship_logits.numpy()) <= 1e-5
    if task == "none":
        _, initial = load_weights(layout.init_weights, "fix")
        np.testing.assert_array_equal(theirs.cls.seq_relationship.weight.detach().numpy(),
                                      initial["cls.seq_relationship.weight"])
