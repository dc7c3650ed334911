"""The architecture of a BERT model, its conversion from/to transformers' config dicts, and the
names and shapes of the parameters it defines."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bert.errors import ConfigError

# transformers' BertConfig keys that do not change what BertForPreTraining computes in training
# or inference without a cache; ``from_hf`` accepts and ignores them.
_IGNORED_HF_KEYS = frozenset(
    {
        "_name_or_path", "architectures", "transformers_version", "model_type", "dtype",
        "torch_dtype", "return_dict", "output_hidden_states", "output_attentions", "use_cache",
        "chunk_size_feed_forward", "id2label", "label2id", "problem_type", "classifier_dropout",
        "bos_token_id", "eos_token_id", "sep_token_id", "cls_token_id", "mask_token_id",
        "gradient_checkpointing", "tokenizer_class", "finetuning_task", "prefix",
        "task_specific_params", "directionality", "torchscript", "tf_legacy_loss",
        "use_bfloat16", "num_labels", "attn_implementation", "_attn_implementation",
        "_attn_implementation_autoset", "transformers_weights", "pooler_fc_size",
        "pooler_num_attention_heads", "pooler_num_fc_layers", "pooler_size_per_head",
        "pooler_type", "tie_encoder_decoder", "cross_attention_hidden_size",
        "decoder_start_token_id", "output_scores", "return_dict_in_generate",
        # text-generation settings of older transformers versions
        "max_length", "min_length", "do_sample", "early_stopping", "num_beams",
        "num_beam_groups", "diversity_penalty", "temperature", "top_k", "top_p", "typical_p",
        "repetition_penalty", "length_penalty", "no_repeat_ngram_size",
        "encoder_no_repeat_ngram_size", "bad_words_ids", "num_return_sequences",
        "forced_bos_token_id", "forced_eos_token_id", "remove_invalid_values",
        "exponential_decay_length_penalty", "suppress_tokens", "begin_suppress_tokens",
    }
)

# Keys whose value must be the one given here, because it is the only one implemented.
_REQUIRED_HF_VALUES = {
    "hidden_act": "gelu",
    "position_embedding_type": "absolute",
    "is_decoder": False,
    "is_encoder_decoder": False,
    "add_cross_attention": False,
    "pruned_heads": {},
    "tie_word_embeddings": True,
}


def documented(default: Any, doc: str) -> Any:
    """A field of ``BertConfig`` with its documentation (``field_doc``) kept as data."""
    return dataclasses.field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class BertConfig:
    """The hyper-parameters that define a ``BertForPreTraining``; names as in transformers."""

    vocab_size: int = documented(
        30522, "V: rows of the word embedding and columns of the MLM decoder")
    hidden_size: int = documented(768, "H: width of every token representation")
    num_hidden_layers: int = documented(12, "L: number of post-LayerNorm encoder layers")
    num_attention_heads: int = documented(
        12, "NH: heads per self-attention; H must be a multiple of NH")
    intermediate_size: int = documented(
        3072, "F: width of the feed-forward block inside each layer")
    max_position_embeddings: int = documented(
        512, "longest sequence T the position embeddings cover")
    type_vocab_size: int = documented(2, "number of segment (token type) ids")
    layer_norm_eps: float = documented(1e-12, "added to the variance in every LayerNorm")
    hidden_dropout_prob: float = documented(
        0.1, "dropout on embeddings and on every residual branch")
    attention_probs_dropout_prob: float = documented(
        0.1, "dropout on the attention probabilities")
    initializer_range: float = documented(
        0.02, "std of the normal init of matrices and embeddings")
    pad_token_id: int = documented(
        0, "id of [PAD]: its embedding row starts at 0 and gets no lookup gradient")

    def __post_init__(self) -> None:
        positive = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                    "intermediate_size", "max_position_embeddings", "type_vocab_size")
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"BertConfig.{name} must be a positive integer, got {value!r}")
        for name in ("layer_norm_eps", "initializer_range"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigError(f"BertConfig.{name} must be a positive number, got {value!r}")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise ConfigError(f"BertConfig.{name} must be in [0, 1), got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f"BertConfig.hidden_size ({self.hidden_size}) must be a multiple of "
                f"num_attention_heads ({self.num_attention_heads})"
            )
        if not 0 <= self.pad_token_id < self.vocab_size:
            raise ConfigError(
                f"BertConfig.pad_token_id ({self.pad_token_id}) must be a valid token id "
                f"below vocab_size ({self.vocab_size})"
            )

    @property
    def head_size(self) -> int:
        """D: the width of one attention head."""
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_hf(cls, hf: dict[str, Any] | str | Path) -> BertConfig:
        """Build from transformers' ``BertConfig.to_dict()``, or the path of a ``config.json``.

        Keys that do not change the computation are ignored; anything this implementation does
        not compute (another activation, relative positions, a decoder, untied embeddings,
        unknown keys) raises ``ConfigError``.
        """
        if isinstance(hf, (str, Path)):
            path = Path(hf)
            try:
                hf = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                message = f"{path}: cannot read a transformers config.json ({exc})"
                raise ConfigError(message) from exc
        if not isinstance(hf, dict):
            raise ConfigError(f"a transformers config must be a dict, got {type(hf).__name__}")
        model_type = hf.get("model_type", "bert")
        if model_type != "bert":
            raise ConfigError(f"model_type {model_type!r} is not supported: only 'bert' is")
        for key, required in _REQUIRED_HF_VALUES.items():
            if key in hf and hf[key] != required:
                raise ConfigError(
                    f"{key}={hf[key]!r} is not implemented: only {key}={required!r} is supported"
                )
        own = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(hf) - own - _IGNORED_HF_KEYS - set(_REQUIRED_HF_VALUES))
        if unknown:
            raise ConfigError(
                f"unsupported transformers config keys {unknown}: this implementation does not "
                "know whether they change the computation"
            )
        return cls(**{key: hf[key] for key in own if key in hf})

    def to_hf(self) -> dict[str, Any]:
        """The dict of transformers' ``BertConfig`` keys that this configuration defines."""
        return dataclasses.asdict(self) | {
            "hidden_act": "gelu",
            "position_embedding_type": "absolute",
            "model_type": "bert",
        }


def field_doc(name: str) -> str:
    """The documentation of the field ``name`` of ``BertConfig``."""
    return next(f.metadata["doc"] for f in dataclasses.fields(BertConfig) if f.name == name)


# --- the parameters a config defines -----------------------------------------------------------

WORD_EMBEDDINGS = "bert.embeddings.word_embeddings.weight"  # also the tied MLM decoder


def layer_prefix(index: int) -> str:
    """The name prefix of encoder layer ``index``."""
    return f"bert.encoder.layer.{index}"


def param_shapes(config: BertConfig) -> dict[str, tuple[int, ...]]:
    """Each parameter's name and shape, in transformers' state-dict order (no tied aliases)."""
    V, H, F = config.vocab_size, config.hidden_size, config.intermediate_size

    def linear(name: str, n_out: int, n_in: int) -> dict[str, tuple[int, ...]]:
        return {f"{name}.weight": (n_out, n_in), f"{name}.bias": (n_out,)}

    def layernorm(name: str) -> dict[str, tuple[int, ...]]:
        return {f"{name}.LayerNorm.weight": (H,), f"{name}.LayerNorm.bias": (H,)}

    shapes = {
        WORD_EMBEDDINGS: (V, H),
        "bert.embeddings.position_embeddings.weight": (config.max_position_embeddings, H),
        "bert.embeddings.token_type_embeddings.weight": (config.type_vocab_size, H),
        **layernorm("bert.embeddings"),
    }
    for i in range(config.num_hidden_layers):
        prefix = layer_prefix(i)
        for projection in ("query", "key", "value"):
            shapes |= linear(f"{prefix}.attention.self.{projection}", H, H)
        shapes |= linear(f"{prefix}.attention.output.dense", H, H)
        shapes |= layernorm(f"{prefix}.attention.output")
        shapes |= linear(f"{prefix}.intermediate.dense", F, H)
        shapes |= linear(f"{prefix}.output.dense", H, F)
        shapes |= layernorm(f"{prefix}.output")
    shapes |= linear("bert.pooler.dense", H, H)
    shapes["cls.predictions.bias"] = (V,)
    shapes |= linear("cls.predictions.transform.dense", H, H)
    shapes |= layernorm("cls.predictions.transform")
    shapes |= linear("cls.seq_relationship", 2, H)
    return shapes
