"""The reference layers (``bert.core.layers``): each backward against centred finite differences
in float64, with a random upstream gradient (never all ones), and each forward against a direct
formula. ``tests/test_kernels.py`` holds the fast kernels equal to them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bert.core import layers
from tests.numgrad import check_gradient, relative_error

B, T, H, NH = 2, 5, 8, 2


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def probe(out_fn, dout):
    """The scalar sum(out * dout) whose gradient is what backward computes for upstream dout."""
    return lambda: float(np.sum(out_fn() * dout))


def test_embedding_backward_sums_repeated_rows_and_blocks_padding(rng):
    table = rng.normal(size=(7, H))
    ids = np.array([[0, 3, 3, 5, 0], [6, 3, 1, 0, 2]])  # repeats and the padding id 0
    out, cache = layers.embedding_forward(ids, table)
    np.testing.assert_array_equal(out, table[ids])
    dout = rng.normal(size=out.shape)
    f = probe(lambda: layers.embedding_forward(ids, table)[0], dout)
    check_gradient(f, table, layers.embedding_backward(dout, cache))
    blocked = layers.embedding_backward(dout, cache, padding_idx=0)
    assert np.all(blocked[0] == 0)
    np.testing.assert_array_equal(blocked[1:], layers.embedding_backward(dout, cache)[1:])
    assert np.all(layers.embedding_backward(dout, cache)[4] == 0)  # an id never looked up


def test_linear(rng):
    x, w, b = rng.normal(size=(B, T, 6)), rng.normal(size=(4, 6)), rng.normal(size=4)
    out, cache = layers.linear_forward(x, w, b)
    np.testing.assert_allclose(out, np.einsum("bti,oi->bto", x, w) + b, rtol=1e-13)
    dout = rng.normal(size=out.shape)
    dx, dw, db = layers.linear_backward(dout, cache)
    f = probe(lambda: layers.linear_forward(x, w, b)[0], dout)
    for value, grad in ((x, dx), (w, dw), (b, db)):
        check_gradient(f, value, grad)


def test_layernorm(rng):
    x = rng.normal(loc=0.5, scale=2.0, size=(B, T, H))
    w, b = rng.normal(size=H), rng.normal(size=H)
    out, cache = layers.layernorm_forward(x, w, b, 1e-12)
    expected = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-12) * w + b
    assert relative_error(out, expected) < 1e-13
    dout = rng.normal(size=out.shape)
    dx, dw, db = layers.layernorm_backward(dout, cache)
    f = probe(lambda: layers.layernorm_forward(x, w, b, 1e-12)[0], dout)
    for value, grad in ((x, dx), (w, dw), (b, db)):
        check_gradient(f, value, grad)


def test_gelu_is_exact_erf_gelu(rng):
    x = np.concatenate([rng.normal(scale=3.0, size=200), [-10.0, -5.0, 0.0, 1e-8, 5.0, 10.0]])
    out, cache = layers.gelu_forward(x)
    expected = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x])
    assert np.max(np.abs(out - expected)) <= 4 * np.finfo(np.float64).eps * np.max(np.abs(x))
    # the tanh approximation differs by ~1e-3 near |x| = 2: make sure it is not what we compute
    tanh_approx = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    assert np.max(np.abs(out - tanh_approx)) > 1e-5
    dout = rng.normal(size=x.shape)
    f = probe(lambda: layers.gelu_forward(x)[0], dout)
    check_gradient(f, x, layers.gelu_backward(dout, cache))


def test_gelu_keeps_float32(rng):
    x = rng.normal(size=(3, 4)).astype(np.float32)
    out, cache = layers.gelu_forward(x)
    assert out.dtype == np.float32
    assert layers.gelu_backward(np.ones_like(x), cache).dtype == np.float32


def test_tanh(rng):
    x = rng.normal(size=(B, H))
    out, cache = layers.tanh_forward(x)
    dout = rng.normal(size=x.shape)
    check_gradient(probe(lambda: layers.tanh_forward(x)[0], dout), x,
                   layers.tanh_backward(dout, cache))


def test_softmax_backward(rng):
    x = rng.normal(size=(B, T, T))
    dout = rng.normal(size=x.shape)
    probs = layers.softmax(x)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-14)
    check_gradient(probe(lambda: layers.softmax(x), dout), x,
                   layers.softmax_backward(dout, probs))


def test_dropout_gradient_uses_the_forward_mask(rng):
    x = rng.normal(size=(B, T, H))
    dout = rng.normal(size=x.shape)
    out, mask = layers.dropout_forward(x, 0.3, np.random.default_rng(7))
    f = probe(lambda: layers.dropout_forward(x, 0.3, np.random.default_rng(7))[0], dout)
    check_gradient(f, x, layers.dropout_backward(dout, mask))


def test_dropout_statistics_and_identity():
    x = np.ones((1000, 1000), dtype=np.float32)
    out, _ = layers.dropout_forward(x, 0.1, np.random.default_rng(0))
    assert out.dtype == np.float32
    dropped = np.mean(out == 0)
    assert abs(dropped - 0.1) < 5 * math.sqrt(0.1 * 0.9 / x.size)  # 5 sigma
    np.testing.assert_allclose(out[out != 0], 1 / 0.9, rtol=1e-6)
    assert layers.dropout_forward(x, 0.0, np.random.default_rng(0))[0] is x
    assert layers.dropout_forward(x, 0.5, None)[0] is x  # inference: no generator, no dropout
    a = layers.dropout_forward(x, 0.1, np.random.default_rng(3))[0]
    b = layers.dropout_forward(x, 0.1, np.random.default_rng(3))[0]
    np.testing.assert_array_equal(a, b)


def attention_inputs(rng):
    x = rng.normal(size=(B, T, H))
    qkv_weight, qkv_bias = rng.normal(size=(3 * H, H)) * 0.5, rng.normal(size=3 * H)
    attention_mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    return x, qkv_weight, qkv_bias, layers.attention_mask_bias(attention_mask, np.float64)


def naive_attention(x, qkv_weight, qkv_bias, attention_mask):
    """Head by head, position by position: the textbook definition."""
    q, k, v = np.split(x @ qkv_weight.T + qkv_bias, 3, axis=-1)
    D = H // NH
    out = np.zeros_like(x)
    for b in range(B):
        keys = np.flatnonzero(attention_mask[b])
        for h in range(NH):
            cols = slice(h * D, (h + 1) * D)
            scores = q[b, :, cols] @ k[b, keys, cols].T / math.sqrt(D)
            weights = np.exp(scores - scores.max(-1, keepdims=True))
            weights /= weights.sum(-1, keepdims=True)
            out[b, :, cols] = weights @ v[b, keys, cols]
    return out


def test_self_attention_forward_matches_the_definition(rng):
    x, w, bias, mask_bias = attention_inputs(rng)
    attention_mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    out, cache = layers.self_attention_forward(x, w, bias, mask_bias, NH, 0.0, None)
    assert relative_error(out, naive_attention(x, w, bias, attention_mask)) < 1e-13
    probs = cache.probs
    assert np.all(probs[1, :, :, 3:] == 0)  # padded keys get exactly zero attention


@pytest.mark.parametrize("dropout_p", [0.0, 0.2])
def test_self_attention_backward(rng, dropout_p):
    x, w, bias, mask_bias = attention_inputs(rng)

    def run():
        return layers.self_attention_forward(x, w, bias, mask_bias, NH, dropout_p,
                                             np.random.default_rng(11))

    out, cache = run()
    dout = rng.normal(size=out.shape)
    dx, dw, dbias = layers.self_attention_backward(dout, cache)
    f = probe(lambda: run()[0], dout)
    for value, grad in ((x, dx), (w, dw), (bias, dbias)):
        check_gradient(f, value, grad)


def test_cross_entropy_with_ignored_rows(rng):
    logits = rng.normal(scale=3.0, size=(6, 5))
    labels = np.array([1, -100, 4, 0, -100, 2])
    loss, cache = layers.cross_entropy_forward(logits, labels)
    valid = labels != -100
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -np.mean(log_probs[valid, labels[valid]])
    assert abs(loss - expected) < 1e-14
    dloss = 0.7  # a random upstream scalar, not 1
    dlogits = layers.cross_entropy_backward(dloss, cache)
    assert np.all(dlogits[~valid] == 0)
    f = lambda: dloss * layers.cross_entropy_forward(logits, labels)[0]  # noqa: E731
    check_gradient(f, logits, dlogits)


def test_cross_entropy_without_labels_is_zero():
    loss, cache = layers.cross_entropy_forward(np.ones((3, 4)), np.full(3, -100))
    assert loss == 0.0
    assert np.all(layers.cross_entropy_backward(1.0, cache) == 0)
