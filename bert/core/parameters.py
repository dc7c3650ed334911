"""The parameters of a model: made, checked and packed into one flat buffer.

The parameters are a dict ``name -> ndarray`` with transformers' state-dict names and shapes
(``bert.core.config.param_shapes``), stored as views of one flat buffer (``bert.core.flat``)
whose order puts each layer's query, key and value projections side by side, so that the
stacked projection the attention multiplies by is a view too (``qkv``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from bert.core.config import WORD_EMBEDDINGS, BertConfig, param_shapes
from bert.core.flat import FlatParams
from bert.errors import ConfigError

_QKV = ("query", "key", "value")


def is_decayed(name: str) -> bool:
    """Whether weight decay applies: every parameter except biases and LayerNorm parameters."""
    return not (name.endswith("bias") or "LayerNorm" in name)


def qkv_names(prefix: str, kind: str) -> list[str]:
    """The query, key and value projections' ``kind`` ("weight" or "bias") of a layer."""
    return [f"{prefix}.attention.self.{projection}.{kind}" for projection in _QKV]


def buffer_order(config: BertConfig) -> list[str]:
    """The parameters in the order of their flat buffer: state-dict order, except that each
    layer's query, key and value weights follow each other, then their biases, so that the
    stacked projection (3H, H) is a view of the buffer."""
    order = []
    for name in param_shapes(config):
        prefix, _, rest = name.partition(".attention.self.")
        if not rest:
            order.append(name)
        elif rest == "query.weight":
            order += qkv_names(prefix, "weight") + qkv_names(prefix, "bias")
    return order


def qkv(params: FlatParams, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """The query, key and value projections of a layer stacked, as views of the buffer:
    weight (3H, H), bias (3H,)."""
    weight = params.span(qkv_names(prefix, "weight"))
    bias = params.span(qkv_names(prefix, "bias"))
    if weight is None or bias is None:
        raise ConfigError("the parameters are not laid out by buffer_order; pack them with "
                          "bert.core.parameters.pack_params")
    return weight.reshape(len(bias), -1), bias


def pack_params(
    config: BertConfig, arrays: Mapping[str, np.ndarray], dtype: np.dtype | None = None
) -> FlatParams:
    """A copy of ``arrays`` (the parameters of ``config``) in one flat buffer laid out by
    ``buffer_order``, keys in state-dict order."""
    check_params(config, arrays)
    return FlatParams.of({name: arrays[name] for name in param_shapes(config)}, dtype,
                         buffer_order(config))


def init_params(
    config: BertConfig, rng: np.random.Generator, dtype: np.dtype = np.float32
) -> FlatParams:
    """Initialize as transformers does, in one flat buffer (``pack_params``).

    Matrices and embeddings ~ normal(0, initializer_range), biases 0, LayerNorm weight 1 and
    bias 0, the [PAD] row of the word embeddings 0. Draws are made in float64 in state-dict
    order and then cast, so float32 and float64 models start from the same values.
    """
    params = FlatParams(param_shapes(config), dtype, buffer_order(config))
    for name, shape in param_shapes(config).items():
        if name.endswith("LayerNorm.weight"):
            value = np.ones(shape)
        elif len(shape) == 2:
            value = rng.normal(0.0, config.initializer_range, size=shape)
        else:
            value = np.zeros(shape)
        params[name] = value.astype(dtype)
    params[WORD_EMBEDDINGS][config.pad_token_id] = 0
    return params


def check_params(config: BertConfig, params: Mapping[str, np.ndarray]) -> None:
    """Raise ConfigError unless params has exactly the names and shapes of ``config``."""
    shapes = param_shapes(config)
    missing = sorted(set(shapes) - set(params))
    unexpected = sorted(set(params) - set(shapes))
    if missing or unexpected:
        raise ConfigError(f"parameters do not fit the config: missing {missing}, "
                          f"unexpected {unexpected}")
    for name, shape in shapes.items():
        if tuple(params[name].shape) != shape:
            raise ConfigError(f"parameter {name} has shape {tuple(params[name].shape)}, "
                              f"the config needs {shape}")
