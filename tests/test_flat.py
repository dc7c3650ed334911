"""The flat layout (``bert.core.flat.FlatParams``): named views of one buffer, the one layout of
the parameters, their gradients and AdamW's moments."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from bert.core.config import BertConfig, param_shapes
from bert.core.flat import FlatParams
from bert.core.parameters import buffer_order, init_params, pack_params, qkv

SHAPES = {"w": (2, 3), "b": (3,), "s": ()}


def test_every_name_is_a_view_of_the_buffer_in_the_given_order():
    params = FlatParams(SHAPES, np.float32, order=("b", "w", "s"))
    assert list(params) == ["w", "b", "s"]  # keys in the order of the shapes
    assert params.flat.shape == (10,) and params.flat.dtype == np.float32
    assert params.offsets == {"b": (0, 3), "w": (3, 9), "s": (9, 10)}
    for name, value in params.items():
        assert value.shape == SHAPES[name] and np.shares_memory(value, params.flat)
    params.flat[:] = np.arange(10)
    np.testing.assert_array_equal(params["b"], [0, 1, 2])
    np.testing.assert_array_equal(params["w"], [[3, 4, 5], [6, 7, 8]])


def test_the_order_must_name_every_array_once():
    with pytest.raises(ValueError, match="every array exactly once"):
        FlatParams(SHAPES, np.float32, order=("w", "b"))
    with pytest.raises(ValueError, match="every array exactly once"):
        FlatParams(SHAPES, np.float32, order=("w", "b", "s", "s"))


def test_assigning_copies_into_the_view_and_unknown_names_are_refused():
    params = FlatParams(SHAPES, np.float64)
    view = params["w"]
    params["w"] = np.ones((2, 3))
    assert params["w"] is view and np.all(params.flat[:6] == 1)
    params.update({"b": [5.0, 6.0, 7.0]})
    np.testing.assert_array_equal(params.flat[6:9], [5, 6, 7])
    with pytest.raises(KeyError, match="not one of the arrays"):
        params["x"] = np.zeros(1)


def test_of_copies_and_converts_and_zeros_like_keeps_the_layout():
    source = {"w": np.arange(6.0).reshape(2, 3), "b": np.ones(3), "s": np.float64(2.0)}
    params = FlatParams.of(source, np.float32, order=("s", "b", "w"))
    source["w"][0, 0] = 99  # a copy: the source does not reach the buffer
    assert params["w"][0, 0] == 0 and params.flat.dtype == np.float32
    zeros = params.zeros_like()
    assert zeros.same_layout(params) and not np.shares_memory(zeros.flat, params.flat)
    assert not np.any(zeros.flat) and zeros.flat.dtype == np.float32
    assert not params.same_layout(FlatParams.of(source, np.float32))  # another order
    assert not params.same_layout(dict(params))


def test_span_is_a_view_only_of_neighbours_in_order():
    params = FlatParams(SHAPES, np.float32, order=("b", "w", "s"))
    span = params.span(["b", "w"])
    assert span.shape == (9,) and np.shares_memory(span, params["w"])
    assert params.span(["w", "b"]) is None  # not in this order in the buffer
    assert params.span(["b", "s"]) is None  # not neighbours


def test_pickling_keeps_values_and_layout():
    params = FlatParams.of({"w": np.arange(6.0).reshape(2, 3), "b": np.ones(3)}, order=("b", "w"))
    copy = pickle.loads(pickle.dumps(params))
    assert copy.same_layout(params) and np.array_equal(copy.flat, params.flat)


def test_the_models_layout_makes_the_stacked_projection_a_view():
    config = BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=12, max_position_embeddings=10)
    params = init_params(config, np.random.default_rng(0))
    assert list(params) == list(param_shapes(config))
    assert params.order == tuple(buffer_order(config))
    prefix = "bert.encoder.layer.1.attention.self"
    weight, bias = qkv(params, "bert.encoder.layer.1")
    assert weight.shape == (24, 8) and np.shares_memory(weight, params[f"{prefix}.key.weight"])
    np.testing.assert_array_equal(weight[8:16], params[f"{prefix}.key.weight"])
    np.testing.assert_array_equal(bias[16:], params[f"{prefix}.value.bias"])
    repacked = pack_params(config, dict(params), np.float64)
    assert repacked.same_layout(params) and repacked.flat.dtype == np.float64
    np.testing.assert_array_equal(repacked.flat, params.flat)
