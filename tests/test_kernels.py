"""The fast kernels (``bert.core.kernels``) equal the reference layers (``bert.core.layers``):
every layer, forward and backward, in float64 to 1e-12 relative, on random shapes with odd sizes
and on shapes large enough to be cut into blocks and shared between compute threads."""

from __future__ import annotations

import numpy as np
import pytest

from bert.core import kernels, layers
from bert.engine.pool import set_threads, threads
from tests.numgrad import relative_error

TOLERANCE = 1e-12
# (B, T, H, NH, F): odd sizes (H at least 3: at H = 2 LayerNorm leaves no direction, its
# gradient is round-off), one large enough for several blocks of rows and the pool
SHAPES = [(1, 1, 3, 1, 2), (3, 7, 10, 2, 13), (5, 33, 24, 3, 40), (16, 64, 64, 4, 160)]


@pytest.fixture(params=[1, 2], ids=["1 thread", "2 threads"], autouse=True)
def compute_threads(request):
    before = threads()
    set_threads(request.param)
    yield request.param
    set_threads(before)


def rng_for(shape) -> np.random.Generator:
    return np.random.default_rng(list(shape))


def assert_equal_caches(fast, reference) -> None:
    """Two caches of the same NamedTuple type, field by field (arrays to the tolerance)."""
    assert type(fast) is type(reference)
    for name, a, b in zip(fast._fields, fast, reference, strict=True):
        if isinstance(a, tuple) and hasattr(a, "_fields"):
            assert_equal_caches(a, b)
        elif isinstance(a, np.ndarray):
            assert a.shape == b.shape, name
            if a.dtype == bool or a.dtype.kind in "iu":
                np.testing.assert_array_equal(a, b, err_msg=name)
            else:
                assert relative_error(a, b) <= TOLERANCE, name
        else:
            assert a == b, name


def assert_same(fast, reference) -> None:
    """Outputs of the two implementations: arrays, floats, caches, or tuples of them."""
    if isinstance(fast, tuple) and not hasattr(fast, "_fields"):
        assert len(fast) == len(reference)
        for a, b in zip(fast, reference, strict=True):
            assert_same(a, b)
    elif hasattr(fast, "_fields"):
        assert_equal_caches(fast, reference)
    elif isinstance(fast, np.ndarray):
        assert fast.shape == reference.shape and fast.dtype == reference.dtype
        assert relative_error(fast, reference) <= TOLERANCE
    elif fast is None:
        assert reference is None
    else:
        assert abs(fast - reference) <= TOLERANCE * max(1.0, abs(reference))


def both(name: str, *args, **kwargs):
    """Call ``name`` of each implementation on copies of the same arguments."""
    def copies():
        return [a.copy() if isinstance(a, np.ndarray) else a for a in args]

    return getattr(kernels, name)(*copies(), **kwargs), getattr(layers, name)(*copies(),
                                                                               **kwargs)


def test_the_kernels_have_every_layer_function():
    public = [name for name in dir(layers) if name.endswith(("_forward", "_backward"))]
    public += ["softmax", "softmax_backward"]
    assert public and all(callable(getattr(kernels, name)) for name in public)


@pytest.mark.parametrize("shape", SHAPES)
def test_embedding(shape):
    B, T, H, _, _ = shape
    rng = rng_for(shape)
    table, ids = rng.normal(size=(11, H)), rng.integers(0, 11, size=(B, T))
    (out_f, cache_f), (out_r, cache_r) = both("embedding_forward", ids, table)
    assert_same(out_f, out_r)
    dout = rng.normal(size=out_f.shape)
    assert_same(*both("embedding_backward", dout, cache_f, padding_idx=0))


@pytest.mark.parametrize("shape", SHAPES)
def test_linear(shape):
    B, T, H, _, F = shape
    rng = rng_for(shape)
    x, w, b = rng.normal(size=(B, T, H)), rng.normal(size=(F, H)), rng.normal(size=F)
    (out_f, cache_f), (out_r, cache_r) = both("linear_forward", x, w, b)
    assert_same(out_f, out_r)
    dout = rng.normal(size=out_f.shape)
    assert_same(kernels.linear_backward(dout, cache_f), layers.linear_backward(dout, cache_r))


@pytest.mark.parametrize("shape", SHAPES)
def test_layernorm(shape):
    B, T, H, _, _ = shape
    rng = rng_for(shape)
    x = rng.normal(loc=0.3, scale=2.0, size=(B, T, H))
    w, b = rng.normal(size=H), rng.normal(size=H)
    (out_f, cache_f), (out_r, cache_r) = both("layernorm_forward", x, w, b, 1e-12)
    assert_same((out_f, cache_f), (out_r, cache_r))
    dout = rng.normal(size=x.shape)
    assert_same(kernels.layernorm_backward(dout, cache_f),
                layers.layernorm_backward(dout, cache_r))


@pytest.mark.parametrize("shape", SHAPES)
def test_gelu_and_tanh(shape):
    B, T, _, _, F = shape
    rng = rng_for(shape)
    x = rng.normal(scale=2.0, size=(B, T, F))
    (out_f, d_f), (out_r, d_r) = both("gelu_forward", x)
    assert_same((out_f, d_f), (out_r, d_r))
    dout = rng.normal(size=x.shape)
    assert_same(kernels.gelu_backward(dout, d_f), layers.gelu_backward(dout, d_r))
    (t_f, _), (t_r, _) = both("tanh_forward", x)
    assert_same(t_f, t_r)
    assert_same(kernels.tanh_backward(dout, t_f), layers.tanh_backward(dout, t_r))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("p", [0.0, 0.3])
def test_dropout_draws_the_same_mask(shape, p):
    B, T, H, _, _ = shape
    rng = rng_for(shape)
    x = rng.normal(size=(B, T, H))
    fast = kernels.dropout_forward(x, p, np.random.default_rng(5))
    reference = layers.dropout_forward(x, p, np.random.default_rng(5))
    assert_same(fast, reference)
    dout = rng.normal(size=x.shape)
    assert_same(kernels.dropout_backward(dout, fast[1]), layers.dropout_backward(dout,
                                                                                  reference[1]))


@pytest.mark.parametrize("shape", SHAPES)
def test_softmax(shape):
    B, T, _, NH, _ = shape
    rng = rng_for(shape)
    x = rng.normal(scale=3.0, size=(B, NH, T, T))
    assert_same(*both("softmax", x))
    probs, dprobs = layers.softmax(x), rng.normal(size=x.shape)
    assert_same(*both("softmax_backward", dprobs, probs))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dropout_p", [0.0, 0.2])
def test_self_attention(shape, dropout_p):
    B, T, H, NH, _ = shape
    rng = rng_for(shape)
    x = rng.normal(size=(B, T, H))
    w, b = rng.normal(size=(3 * H, H)) * 0.3, rng.normal(size=3 * H)
    mask = np.ones((B, T), dtype=np.int64)
    mask[0, T // 2 + 1:] = 0  # padding in the first example
    mask_bias = layers.attention_mask_bias(mask, np.float64)
    fast = kernels.self_attention_forward(x, w, b, mask_bias, NH, dropout_p,
                                          np.random.default_rng(9))
    reference = layers.self_attention_forward(x, w, b, mask_bias, NH, dropout_p,
                                              np.random.default_rng(9))
    assert_same(fast, reference)
    dout = rng.normal(size=x.shape)
    assert_same(kernels.self_attention_backward(dout, fast[1]),
                layers.self_attention_backward(dout, reference[1]))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("normalizer", [None, 50])
def test_cross_entropy(shape, normalizer):
    B, T, _, _, F = shape
    rng = rng_for(shape)
    logits = rng.normal(scale=3.0, size=(B * T, F))
    labels = rng.integers(0, F, size=B * T)
    labels[::3] = -100
    (loss_f, cache_f), (loss_r, cache_r) = both("cross_entropy_forward", logits, labels,
                                                normalizer=normalizer)
    assert_same((loss_f, cache_f), (loss_r, cache_r))
    assert_same(kernels.cross_entropy_backward(0.7, cache_f),
                layers.cross_entropy_backward(0.7, cache_r))


@pytest.mark.parametrize("shape", [(3, 4, 32, 32), (5, 7), (2, 64), (3, 200)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_sum_and_row_max_equal_numpys_reductions(shape, dtype):
    """Rows short and long: the maximum exactly, the sum to round-off."""
    x = rng_for(shape).standard_normal(shape).astype(dtype)
    np.testing.assert_array_equal(kernels._row_max(x), x.max(axis=-1, keepdims=True))
    np.testing.assert_allclose(kernels.row_sum(x), x.sum(axis=-1, keepdims=True),
                               rtol=0, atol=64 * np.finfo(dtype).eps * np.abs(x).sum(-1).max())


@pytest.mark.parametrize("module", [kernels, layers], ids=["fast", "reference"])
def test_float32_stays_float32(module):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 8)).astype(np.float32)
    w, b = rng.normal(size=(8, 8)).astype(np.float32), np.zeros(8, np.float32)
    for out in (module.linear_forward(x, w, b)[0], module.gelu_forward(x)[0],
                module.layernorm_forward(x, b + 1, b, 1e-12)[0], module.softmax(x),
                module.dropout_forward(x, 0.1, np.random.default_rng(0))[0]):
        assert out.dtype == np.float32
