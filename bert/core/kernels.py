"""The layers of BERT written for speed: the functions of ``bert.core.layers``, with the same
names, signatures and caches, the results equal to round-off (``tests/test_kernels.py``).

What makes them fast, and what the reference does not need:

- Blocks: an elementwise chain runs over blocks of rows of about 64 Ki elements
  (``bert.engine.pool.for_rows``), each block through the whole chain while it is in the CPU
  cache, the blocks shared among the compute threads; matrix products go to BLAS in blocks of
  rows (``bert.engine.pool.matmul``). The blocks depend on the shapes alone, so the results do
  not depend on the thread count.
- Buffers: elementwise work is done in place where the input is a fresh temporary (``out=``).
- Every matrix product is between contiguous 2-D (or stacked 2-D) arrays, or strided views BLAS
  takes as they are: a strided operand it does not take would make NumPy fall back to a loop
  hundreds of times slower.
- Short sums: sums over short rows are products with a column of ones (``row_sum``), which BLAS
  does several times faster than NumPy's reduction; the maximum of rows of at most
  ``SHORT_ROW`` elements is taken over a transposed copy (``_row_max``).

Arrays keep the dtype they come in (float32 or float64); no float64 temporaries are made for
float32 inputs. Shape letters as in ``bert.core.layers``.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from bert.core.labels import IGNORE_INDEX
from bert.core.layers import (  # the caches, and the layers that need nothing faster
    AttentionCache,
    CrossEntropyCache,
    DropoutCache,
    EmbeddingCache,
    LayerNormCache,
    LinearCache,
    embedding_forward,
    keep_threshold,
    random_bits16,
    split_heads,
    tanh_backward,
    tanh_forward,
)
from bert.core.special import erf
from bert.engine.pool import elementwise, for_elements, for_rows, matmul

__all__ = [
    "embedding_forward", "embedding_backward", "linear_forward", "linear_backward",
    "layernorm_forward", "layernorm_backward", "gelu_forward", "gelu_backward", "tanh_forward",
    "tanh_backward", "dropout_forward", "dropout_backward", "softmax", "softmax_backward",
    "self_attention_forward", "self_attention_backward", "cross_entropy_forward",
    "cross_entropy_backward", "row_sum",
]


# --- embedding lookup ---------------------------------------------------------------------------


def embedding_backward(
    dout: np.ndarray, cache: EmbeddingCache, padding_idx: int | None = None
) -> np.ndarray:
    """Gradient of the table (V, H) from dout (..., H); the row ``padding_idx`` gets none.

    Rows are summed with one sort and ``np.add.reduceat`` (deterministic, no ``np.add.at``).
    """
    flat_ids = cache.ids.reshape(-1)
    flat_dout = dout.reshape(flat_ids.size, -1)  # (N, H)
    order = np.argsort(flat_ids, kind="stable")
    sorted_ids = flat_ids[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    dtable = np.zeros((cache.num_rows, flat_dout.shape[1]), dtype=dout.dtype)
    dtable[sorted_ids[starts]] = np.add.reduceat(flat_dout[order], starts, axis=0)
    if padding_idx is not None:
        dtable[padding_idx] = 0
    return dtable


# --- linear ------------------------------------------------------------------------------------


def linear_forward(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray
) -> tuple[np.ndarray, LinearCache]:
    """x (..., in) @ weight (out, in).T + bias (out,) -> (..., out)."""
    # (N, out): one 2-D product for BLAS per block of rows
    out = matmul(x.reshape(-1, x.shape[-1]), weight.T, bias)
    return out.reshape(*x.shape[:-1], weight.shape[0]), LinearCache(x, weight)


def linear_backward(
    dout: np.ndarray, cache: LinearCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dout (..., out) -> dx (..., in), dweight (out, in), dbias (out,)."""
    x, weight = cache.x, cache.weight
    dout2d = dout.reshape(-1, dout.shape[-1])  # (N, out)
    dweight = matmul(dout2d.T, x.reshape(-1, x.shape[-1]))
    dx = matmul(dout2d, weight).reshape(x.shape)
    return dx, dweight, dout2d.sum(axis=0)


# --- sums and maxima over rows -----------------------------------------------------------------

SHORT_ROW = 32  # rows up to this length are reduced through a transposed copy (``_row_max``)


@functools.cache
def _ones_column(size: int, dtype: np.dtype) -> np.ndarray:
    """A read-only (size, 1) column of ones, made once per size and dtype."""
    ones = np.ones((size, 1), dtype=dtype)
    ones.flags.writeable = False
    return ones


def row_sum(x: np.ndarray) -> np.ndarray:
    """The sum over the last axis of x (..., n), kept as an axis: (..., 1).

    A product with a column of ones: BLAS sums short rows several times faster than NumPy's
    reduction, which pays a loop set-up per row (measured: 14 against 53 microseconds on
    (16, 4, 32, 32), 11 against 37 on (1024, 64); long rows gain too).
    """
    return np.matmul(x, _ones_column(x.shape[-1], x.dtype))


def _row_max(x: np.ndarray) -> np.ndarray:
    """The maximum over the last axis of x (..., n), kept as an axis: (..., 1).

    NumPy's reduction over short contiguous rows pays a loop set-up per row; rows of at most
    ``SHORT_ROW`` elements are transposed first (one copy), so that the maximum runs along whole
    rows of memory (measured on (16, 4, 32, 32): 118 against 244 microseconds; at n = 128 the
    copy no longer pays).
    """
    if x.ndim >= 2 and x.shape[-1] <= SHORT_ROW:
        return np.ascontiguousarray(x.swapaxes(-1, -2)).max(axis=-2)[..., None]
    return x.max(axis=-1, keepdims=True)


def _row_mean(x: np.ndarray) -> np.ndarray:
    """The mean over the last axis, kept as an axis: what ``x.mean(-1, keepdims=True)`` gives."""
    total = row_sum(x)
    total /= x.shape[-1]
    return total


# --- layer norm --------------------------------------------------------------------------------


def layernorm_forward(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float
) -> tuple[np.ndarray, LayerNormCache]:
    """Normalize the last axis of x (..., H) to zero mean and unit (biased) variance, then scale:

        xhat = (x - mean(x)) * rstd,  rstd = 1 / sqrt(mean((x - mean(x))^2) + eps)
        out  = xhat * weight + bias
    """
    x2d = x.reshape(-1, x.shape[-1])  # (N, H)
    xhat, out = np.empty_like(x2d), np.empty_like(x2d)
    rstd = np.empty((len(x2d), 1), dtype=x.dtype)

    def rows(r: slice) -> None:
        centered = np.subtract(x2d[r], _row_mean(x2d[r]), out=xhat[r])
        variance = _row_mean(np.square(centered))
        variance += eps
        np.sqrt(variance, out=variance)
        np.divide(1.0, variance, out=rstd[r])
        centered *= rstd[r]
        np.multiply(centered, weight, out=out[r])
        out[r] += bias

    for_rows(len(x2d), x2d.shape[1], rows, passes=9)
    lead = x.shape[:-1]
    return out.reshape(x.shape), LayerNormCache(xhat.reshape(x.shape), rstd.reshape(*lead, 1),
                                                weight)


def layernorm_backward(
    dout: np.ndarray, cache: LayerNormCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dout (..., H) -> dx (..., H), dweight (H,), dbias (H,).

    With xhat = (x - mean(x)) * rstd and dxhat = dout * weight, means over the last axis:

        dx      = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
        dweight = sum over rows of dout * xhat
        dbias   = sum over rows of dout

    (dxhat projected off the two directions the normalization removes: a shift and a scale of
    x). The rows go in blocks through the chain; the two sums over rows are taken after it, each
    in one call, so their order is the same for every blocking.
    """
    H = dout.shape[-1]
    xhat, rstd = cache.xhat.reshape(-1, H), cache.rstd.reshape(-1, 1)
    dout2d = dout.reshape(-1, H)  # (N, H)
    dx, dout_xhat = np.empty_like(dout2d), np.empty_like(dout2d)

    def rows(r: slice) -> None:
        dxhat = np.multiply(dout2d[r], cache.weight, out=dx[r])
        np.multiply(dout2d[r], xhat[r], out=dout_xhat[r])
        xhat_projection = np.multiply(xhat[r], _row_mean(dxhat * xhat[r]))
        mean_dxhat = _row_mean(dxhat)
        dxhat -= xhat_projection
        dxhat -= mean_dxhat
        dxhat *= rstd[r]

    for_rows(len(dout2d), H, rows, passes=10)
    return dx.reshape(dout.shape), dout_xhat.sum(axis=0), dout2d.sum(axis=0)


# --- GELU and tanh -----------------------------------------------------------------------------

_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def gelu_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact GELU: 0.5 x (1 + erf(x / sqrt 2)) = x Phi(x), elementwise.

    The cache is the derivative Phi(x) + x phi(x) (phi the standard normal density), computed
    here while Phi(x) is at hand, so that the backward pass is one product and x need not be
    kept.
    """
    flat = x.reshape(-1, x.shape[-1]) if x.ndim else x.reshape(1, 1)  # (N, F)
    out, derivative = np.empty_like(flat), np.empty_like(flat)

    def rows(r: slice) -> None:
        xb = flat[r]
        cdf = erf(xb * _INV_SQRT2)
        cdf += 1.0
        cdf *= 0.5  # Phi(x)
        np.multiply(xb, cdf, out=out[r])
        pdf = np.square(xb)
        pdf *= -0.5
        np.exp(pdf, out=pdf)
        pdf *= _INV_SQRT_2PI  # phi(x)
        pdf *= xb
        np.add(cdf, pdf, out=derivative[r])

    for_rows(len(flat), flat.shape[1], rows, passes=30)
    return out.reshape(x.shape), derivative.reshape(x.shape)


def gelu_backward(
    dout: np.ndarray, derivative: np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """d/dx [x Phi(x)] = Phi(x) + x phi(x), cached by the forward pass; into ``out`` if given
    (which may be ``dout``)."""
    return elementwise(np.multiply, dout, derivative, out)


# --- dropout -----------------------------------------------------------------------------------


def dropout_forward(
    x: np.ndarray, p: float, rng: np.random.Generator | None
) -> tuple[np.ndarray, DropoutCache | None]:
    """Zero each element with probability p and scale the rest by 1 / (1 - p).

    The mask comes from 16 random bits per element (``_dropout_bits``), kept when they are at
    least ``round(p * 2**16)``: five times cheaper than floating-point draws, the same for
    float32 and float64. The cache is the boolean keep mask and the scale. With ``p == 0`` or no
    generator (inference) it is the identity and draws nothing.
    """
    if p == 0 or rng is None:
        return x, None
    bits = random_bits16(x.size, rng).reshape(x.shape)
    threshold, scale = keep_threshold(p), x.dtype.type(1.0 / (1.0 - p))
    keep, out = np.empty(x.shape, dtype=bool), np.empty_like(x)

    def elements(r):
        np.greater_equal(bits[r], threshold, out=keep[r])
        np.multiply(x[r], keep[r], out=out[r])
        out[r] *= scale

    for_elements(x.shape, elements, passes=3)
    return out, DropoutCache(keep, scale)


def dropout_backward(dout: np.ndarray, cache: DropoutCache | None) -> np.ndarray:
    """The same mask and scale applied to the gradient."""
    if cache is None:
        return dout
    dx = np.empty_like(dout)

    def elements(r):
        np.multiply(dout[r], cache.keep[r], out=dx[r])
        dx[r] *= cache.scale

    for_elements(dout.shape, elements, passes=2)
    return dx


# --- softmax -----------------------------------------------------------------------------------


def _softmax_in_place(x: np.ndarray) -> np.ndarray:
    """Overwrite x with its softmax over the last axis, shifted by the row maximum."""
    x -= _row_max(x)
    np.exp(x, out=x)
    x /= row_sum(x)
    return x


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, shifted by the row maximum for stability."""
    return _softmax_in_place(np.array(x, dtype=np.result_type(x, np.float32)))


def softmax_backward(dprobs: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Gradient of the softmax input from that of its output (last axis):
    probs * (dprobs - sum(dprobs * probs))."""
    dx = dprobs * probs
    dx -= probs * row_sum(dx)
    return dx


# --- multi-head self-attention -----------------------------------------------------------------


def self_attention_forward(
    x: np.ndarray,
    qkv_weight: np.ndarray,
    qkv_bias: np.ndarray,
    mask_bias: np.ndarray,
    num_heads: int,
    dropout_p: float,
    rng: np.random.Generator | None,
) -> tuple[np.ndarray, AttentionCache]:
    """Scaled dot-product self-attention over all heads at once.

    x (B, T, H); qkv_weight (3H, H) and qkv_bias (3H,): the query, key and value projections
    stacked; mask_bias (B, 1, 1, T) additive. Returns the context (B, T, H), heads concatenated,
    before the output projection.

    The scale 1/sqrt(D) multiplies the queries (T * D elements) rather than the scores
    (T * T). Each block of batch rows goes through the whole chain (scores, mask, softmax,
    dropout, context) while it is in the cache.
    """
    B, T, H = x.shape
    D = H // num_heads
    qkv, linear_cache = linear_forward(x, qkv_weight, qkv_bias)  # (B, T, 3H)
    scale = D**-0.5
    qkv[..., :H] *= scale
    q, k, v = split_heads(qkv, num_heads, D)  # each (B, NH, T, D), views
    probs = np.empty((B, num_heads, T, T), dtype=x.dtype)
    out = np.empty_like(x)
    context = split_heads(out, num_heads, D)[0]  # (B, NH, T, D) view of out
    padded = bool(mask_bias.any())
    dropout = None
    if dropout_p and rng is not None:
        bits = random_bits16(probs.size, rng).reshape(probs.shape)
        dropout = DropoutCache(np.empty(probs.shape, dtype=bool),
                               x.dtype.type(1.0 / (1.0 - dropout_p)))
        threshold = keep_threshold(dropout_p)

    def batch_rows(r: slice) -> None:
        scores = np.matmul(q[r], k[r].transpose(0, 1, 3, 2), out=probs[r])  # (b, NH, T, T)
        if padded:
            scores += mask_bias[r]
        p = _softmax_in_place(scores)
        if dropout is not None:
            keep = np.greater_equal(bits[r], threshold, out=dropout.keep[r])
            p = np.multiply(p, keep)
            p *= dropout.scale
        np.matmul(p, v[r], out=context[r])

    for_rows(B, num_heads * T * T, batch_rows, passes=8 + 2 * D)  # a product: D passes
    return out, AttentionCache(linear_cache, q, k, v, probs, dropout, scale)


def self_attention_backward(
    dout: np.ndarray, cache: AttentionCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dout (B, T, H) -> dx (B, T, H), dqkv_weight (3H, H), dqkv_bias (3H,).

    With dropped = probs * mask (the dropout mask, scaled) and ddropped its gradient, the
    softmax backward probs * (dprobs - sum(dprobs * probs)) is, since dprobs * probs =
    ddropped * dropped, computed as ddropped * dropped - probs * sum(ddropped * dropped).
    """
    q, k, v, probs, dropout = cache.q, cache.k, cache.v, cache.probs, cache.dropout_mask
    B, NH, T, D = q.shape
    dcontext = split_heads(dout, NH, D)[0]  # (B, NH, T, D) view
    dqkv = np.empty((B, T, 3 * NH * D), dtype=dout.dtype)
    dq, dk, dv = split_heads(dqkv, NH, D)  # views

    def batch_rows(r: slice) -> None:
        dropped = probs[r]
        if dropout is not None:
            dropped = np.multiply(dropped, dropout.keep[r])
            dropped *= dropout.scale
        np.matmul(dropped.transpose(0, 1, 3, 2), dcontext[r], out=dv[r])
        dscores = np.matmul(dcontext[r], v[r].transpose(0, 1, 3, 2))  # ddropped (b, NH, T, T)
        dscores *= dropped
        row_sums = row_sum(dscores)
        dscores -= np.multiply(probs[r], row_sums, out=None if dropout is None else dropped)
        np.matmul(dscores, k[r], out=dq[r])
        dq[r] *= cache.scale  # the queries were scaled
        np.matmul(dscores.transpose(0, 1, 3, 2), q[r], out=dk[r])

    for_rows(B, NH * T * T, batch_rows, passes=6 + 4 * D)  # a product: D passes
    dx, dqkv_weight, dqkv_bias = linear_backward(dqkv, cache.linear)
    # The key bias adds q.b_k to every score of a query alike, which softmax ignores: its exact
    # gradient is 0. Summing dk would give round-off noise, which Adam's normalization amplifies
    # into real updates in float32; the exact value is used instead.
    dqkv_bias[NH * D:2 * NH * D] = 0
    return dx, dqkv_weight, dqkv_bias


# --- softmax cross-entropy ---------------------------------------------------------------------


def cross_entropy_forward(
    logits: np.ndarray, labels: np.ndarray, ignore_index: int = IGNORE_INDEX,
    normalizer: int | None = None,
) -> tuple[float, CrossEntropyCache]:
    """``bert.core.layers.cross_entropy_forward``: the mean cross-entropy over the rows not
    ignored (0 without any), divided by ``normalizer`` when given. The softmax (N, C), the cache,
    is made in one new array; the rows go through the chain in blocks, and the loss is summed
    over all rows at the end."""
    valid = labels != ignore_index
    count = int(valid.sum()) if normalizer is None else normalizer
    safe_labels = np.where(valid, labels, 0)
    probs = np.empty_like(logits)
    nll = np.empty(len(logits), dtype=logits.dtype)  # (N,) -log softmax at the label

    def rows(r: slice) -> None:
        shifted = np.subtract(logits[r], _row_max(logits[r]), out=probs[r])
        picked = np.take_along_axis(shifted, safe_labels[r, None], axis=-1)[:, 0]
        np.exp(shifted, out=shifted)
        norm = row_sum(shifted)  # (n, 1)
        np.subtract(np.log(norm[:, 0]), picked, out=nll[r])
        shifted /= norm

    for_rows(len(logits), logits.shape[-1], rows, passes=8)
    loss = float(np.where(valid, nll, 0).sum() / count) if count else 0.0
    return loss, CrossEntropyCache(probs, safe_labels, valid, count)


def cross_entropy_backward(dloss: float, cache: CrossEntropyCache) -> np.ndarray:
    """dlogits (N, C) = (softmax - one_hot) / count on valid rows, 0 on ignored ones."""
    probs, safe_labels = cache.probs, cache.safe_labels
    row_weight = (cache.valid * (dloss / max(cache.count, 1))).astype(probs.dtype)  # (N,)
    dlogits = np.empty_like(probs)

    def rows(r: slice) -> None:
        block = dlogits[r]
        np.copyto(block, probs[r])
        block[np.arange(len(block)), safe_labels[r]] -= 1
        block *= row_weight[r, None]

    for_rows(len(probs), probs.shape[-1], rows, passes=3)
    return dlogits
