"""BertConfig: validation and conversion from/to transformers' config dicts."""

from __future__ import annotations

import json

import pytest

from bert import BertConfig
from bert.errors import ConfigError

# bert-base-uncased's config.json, as published
BERT_BASE_JSON = {
    "architectures": ["BertForMaskedLM"], "attention_probs_dropout_prob": 0.1,
    "gradient_checkpointing": False, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
    "hidden_size": 768, "initializer_range": 0.02, "intermediate_size": 3072,
    "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "model_type": "bert",
    "num_attention_heads": 12, "num_hidden_layers": 12, "pad_token_id": 0,
    "position_embedding_type": "absolute", "transformers_version": "4.6.0.dev0",
    "type_vocab_size": 2, "use_cache": True, "vocab_size": 30522,
}


def test_defaults_are_bert_base():
    assert BertConfig.from_hf(BERT_BASE_JSON) == BertConfig()


def test_round_trip_and_config_json(tmp_path):
    config = BertConfig(vocab_size=99, hidden_size=12, num_hidden_layers=3,
                        num_attention_heads=3, intermediate_size=20, hidden_dropout_prob=0.0)
    assert BertConfig.from_hf(config.to_hf()) == config
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config.to_hf()))
    assert BertConfig.from_hf(path) == config


@pytest.mark.parametrize(("key", "value"), [
    ("hidden_act", "relu"), ("position_embedding_type", "relative_key"),
    ("is_decoder", True), ("tie_word_embeddings", False), ("model_type", "roberta"),
    ("some_new_option", 1),
])
def test_unimplemented_values_are_refused(key, value):
    with pytest.raises(ConfigError, match=key):
        BertConfig.from_hf({**BERT_BASE_JSON, key: value})


@pytest.mark.parametrize(("changes", "message"), [
    ({"hidden_size": 10, "num_attention_heads": 4}, "multiple of num_attention_heads"),
    ({"vocab_size": 0}, "vocab_size"),
    ({"hidden_dropout_prob": 1.0}, "hidden_dropout_prob"),
    ({"pad_token_id": 5, "vocab_size": 5}, "pad_token_id"),
    ({"num_hidden_layers": True}, "num_hidden_layers"),
])
def test_invalid_values_are_refused(changes, message):
    with pytest.raises(ConfigError, match=message):
        BertConfig(**changes)


def test_unreadable_config_json(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="config.json"):
        BertConfig.from_hf(path)


def test_a_whole_transformers_config_is_accepted():
    transformers = pytest.importorskip("transformers")
    hf = transformers.BertConfig(vocab_size=64, hidden_size=16, num_attention_heads=4,
                                 num_hidden_layers=1, intermediate_size=24)
    config = BertConfig.from_hf(hf.to_dict())
    assert (config.vocab_size, config.intermediate_size) == (64, 24)
    assert transformers.BertConfig(**config.to_hf()).to_dict()["hidden_size"] == 16
