"""The layers of BERT as stateless forward/backward pairs of functions over NumPy arrays.

Every ``*_forward`` returns ``(out, cache)``: the cache holds exactly what the matching
``*_backward(dout, cache)`` needs, and nothing is kept anywhere else. Backward functions return
the gradient of the input first, then the gradients of the parameters in their argument order.
Arrays keep the dtype they come in (float32 or float64); no float64 temporaries are made for
float32 inputs.

Speed: every matrix product is between contiguous 2-D (or stacked 2-D) arrays, because NumPy
hands only those to BLAS (a strided operand can make it fall back to a loop hundreds of times
slower); elementwise work is done in place where the input is a fresh temporary.

Shape letters: ``B`` batch, ``T`` sequence, ``H`` hidden, ``NH`` heads, ``D`` head size,
``V`` vocabulary (rows of an embedding table), ``N`` any number of rows, ``C`` classes.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from bert.core.labels import IGNORE_INDEX
from bert.core.special import erf
from bert.engine.blas import single_blas_thread

# --- the caches: what each backward needs, by name ------------------------------------------------


class EmbeddingCache(NamedTuple):
    ids: np.ndarray  # (...) int, the rows looked up
    num_rows: int  # V, the rows of the table


class LinearCache(NamedTuple):
    x: np.ndarray  # (..., in), the input
    weight: np.ndarray  # (out, in)


class LayerNormCache(NamedTuple):
    xhat: np.ndarray  # (..., H), the input normalized to zero mean and unit variance
    rstd: np.ndarray  # (..., 1), 1 / sqrt(variance + eps)
    weight: np.ndarray  # (H,)


class DropoutCache(NamedTuple):
    keep: np.ndarray  # bool, shaped like the input: the elements kept
    scale: np.floating  # 1 / (1 - p), in the input's dtype


class AttentionCache(NamedTuple):
    linear: LinearCache  # of the stacked query, key and value projection
    q: np.ndarray  # (B, NH, T, D) queries
    k: np.ndarray  # (B, NH, T, D) keys
    v: np.ndarray  # (B, NH, T, D) values
    probs: np.ndarray  # (B, NH, T, T) softmax of the scores, before dropout
    dropout_mask: DropoutCache | None  # of the probabilities (None: no dropout)
    scale: float  # D ** -0.5, applied to the scores


class CrossEntropyCache(NamedTuple):
    probs: np.ndarray  # (N, C) softmax of the logits
    safe_labels: np.ndarray  # (N,) the labels, ignored rows set to class 0
    valid: np.ndarray  # (N,) bool, the rows not ignored
    count: int  # number of valid rows


# --- embedding lookup ---------------------------------------------------------------------------


def embedding_forward(ids: np.ndarray, table: np.ndarray) -> tuple[np.ndarray, EmbeddingCache]:
    """Look rows up: ids (...) int, table (V, H) -> out (..., H)."""
    return table[ids], EmbeddingCache(ids, table.shape[0])


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
    out = x.reshape(-1, x.shape[-1]) @ weight.T  # (N, out): one 2-D product for BLAS
    out += bias
    return out.reshape(*x.shape[:-1], weight.shape[0]), LinearCache(x, weight)


def linear_backward(
    dout: np.ndarray, cache: LinearCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dout (..., out) -> dx (..., in), dweight (out, in), dbias (out,)."""
    x, weight = cache.x, cache.weight
    dout2d = dout.reshape(-1, dout.shape[-1])  # (N, out)
    dweight = dout2d.T @ x.reshape(-1, x.shape[-1])
    dx = (dout2d @ weight).reshape(x.shape)
    return dx, dweight, dout2d.sum(axis=0)


# --- layer norm --------------------------------------------------------------------------------


def layernorm_forward(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float
) -> tuple[np.ndarray, LayerNormCache]:
    """Normalize the last axis of x (..., H) to zero mean and unit (biased) variance, then scale."""
    xhat = x - x.mean(axis=-1, keepdims=True)  # centered for now
    var = np.mean(np.square(xhat), axis=-1, keepdims=True)
    rstd = 1.0 / np.sqrt(var + eps)  # (..., 1)
    xhat *= rstd
    out = xhat * weight
    out += bias
    return out, LayerNormCache(xhat, rstd, weight)


def layernorm_backward(
    dout: np.ndarray, cache: LayerNormCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dout (..., H) -> dx (..., H), dweight (H,), dbias (H,).

    With xhat = (x - mean(x)) * rstd and dxhat = dout * weight, means over the last axis:

        dx      = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
        dweight = sum over rows of dout * xhat
        dbias   = sum over rows of dout

    (dxhat projected off the two directions the normalization removes: a shift and a scale of
    x). The code below computes exactly this, writing each intermediate over one no longer used.
    """
    xhat, rstd, weight = cache.xhat, cache.rstd, cache.weight
    flat = (-1, dout.shape[-1])
    dxhat = dout * weight
    dout_xhat = dout * xhat
    dweight = dout_xhat.reshape(flat).sum(axis=0)
    dxhat_xhat = np.multiply(dxhat, xhat, out=dout_xhat)
    mean_dxhat_xhat = dxhat_xhat.mean(axis=-1, keepdims=True)  # (..., 1)
    xhat_projection = np.multiply(xhat, mean_dxhat_xhat, out=dxhat_xhat)
    dx = np.subtract(dxhat, xhat_projection, out=xhat_projection)
    dx -= dxhat.mean(axis=-1, keepdims=True)
    dx *= rstd
    return dx, dweight, dout.reshape(flat).sum(axis=0)


# --- GELU and tanh -----------------------------------------------------------------------------

_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


_GELU_BLOCK = 65536  # elements per block: the temporaries of a block stay in the CPU cache


def gelu_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact GELU: 0.5 x (1 + erf(x / sqrt 2)) = x Phi(x), elementwise.

    The cache is the derivative Phi(x) + x phi(x) (phi the standard normal density), computed
    here while Phi(x) is at hand, so that the backward pass is one product and x need not be
    kept. Large arrays are processed in blocks that fit in the CPU cache.
    """
    flat = x.reshape(-1)
    out, derivative = np.empty_like(flat), np.empty_like(flat)
    for start in range(0, flat.size, _GELU_BLOCK):
        block = slice(start, start + _GELU_BLOCK)
        xb = flat[block]
        cdf = erf(xb * _INV_SQRT2)
        cdf += 1.0
        cdf *= 0.5  # Phi(x)
        np.multiply(xb, cdf, out=out[block])
        pdf = np.square(xb)
        pdf *= -0.5
        np.exp(pdf, out=pdf)
        pdf *= _INV_SQRT_2PI  # phi(x)
        pdf *= xb
        np.add(cdf, pdf, out=derivative[block])
    return out.reshape(x.shape), derivative.reshape(x.shape)


def gelu_backward(dout: np.ndarray, derivative: np.ndarray) -> np.ndarray:
    """d/dx [x Phi(x)] = Phi(x) + x phi(x), cached by the forward pass."""
    return dout * derivative


def tanh_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Elementwise tanh; the cache is the output."""
    out = np.tanh(x)
    return out, out


def tanh_backward(dout: np.ndarray, out: np.ndarray) -> np.ndarray:
    """d tanh(x) / dx = 1 - tanh(x)^2."""
    return dout * (1.0 - out * out)


# --- dropout -----------------------------------------------------------------------------------


def dropout_forward(
    x: np.ndarray, p: float, rng: np.random.Generator | None
) -> tuple[np.ndarray, DropoutCache | None]:
    """Zero each element with probability p and scale the rest by 1 / (1 - p).

    The mask comes from 16 random bits per element (raw 64-bit outputs of the generator, each
    cut into four uint16), kept when they are at least ``round(p * 2**16)``: five times cheaper
    than floating-point draws, the same for float32 and float64, p exact to 2**-16. The cache is
    the boolean keep mask and the scale. With ``p == 0`` or no generator (inference) it is the
    identity and draws nothing.
    """
    if p == 0 or rng is None:
        return x, None
    bits = rng.bit_generator.random_raw(-(-x.size // 4)).view(np.uint16)[: x.size]
    keep = (bits >= round(p * 2**16)).reshape(x.shape)
    scale = x.dtype.type(1.0 / (1.0 - p))
    out = np.multiply(x, keep)
    out *= scale
    return out, DropoutCache(keep, scale)


def dropout_backward(dout: np.ndarray, cache: DropoutCache | None) -> np.ndarray:
    """The same mask and scale applied to the gradient."""
    if cache is None:
        return dout
    dx = np.multiply(dout, cache.keep)
    dx *= cache.scale
    return dx


# --- softmax -----------------------------------------------------------------------------------


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, shifted by the row maximum for stability."""
    e = x - x.max(axis=-1, keepdims=True)
    np.exp(e, out=e)
    e /= e.sum(axis=-1, keepdims=True)
    return e


def softmax_backward(dprobs: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Gradient of the softmax input from that of its output (last axis)."""
    dx = dprobs * probs
    np.subtract(dprobs, np.sum(dx, axis=-1, keepdims=True), out=dx)
    dx *= probs
    return dx


# --- multi-head self-attention -----------------------------------------------------------------


def attention_mask_bias(attention_mask: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """attention_mask (B, T) of 1 (attend) / 0 (padding) -> additive bias (B, 1, 1, T).

    Padding keys get the most negative finite value, as transformers does, so that their
    attention probability is exactly zero.
    """
    dtype = np.dtype(dtype)
    bias = (1 - attention_mask.astype(dtype)) * np.finfo(dtype).min
    return bias[:, None, None, :]


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
    """
    B, T, H = x.shape
    D = H // num_heads
    qkv, linear_cache = linear_forward(x, qkv_weight, qkv_bias)  # (B, T, 3H)
    # heads first, copied once so that every per-head matrix is contiguous for BLAS
    heads = np.ascontiguousarray(qkv.reshape(B, T, 3, num_heads, D).transpose(2, 0, 3, 1, 4))
    q, k, v = heads  # each (B, NH, T, D)
    scale = D**-0.5
    with single_blas_thread():  # B * NH small products
        scores = q @ k.transpose(0, 1, 3, 2)  # (B, NH, T, T)
        scores *= scale
        scores += mask_bias
        probs = softmax(scores)
        dropped, dropout_mask = dropout_forward(probs, dropout_p, rng)
        context = dropped @ v  # (B, NH, T, D)
    out = context.transpose(0, 2, 1, 3).reshape(B, T, H)  # (B, T, H), a copy
    # the dropped probabilities are not kept: backward recomputes them from probs and the mask
    return out, AttentionCache(linear_cache, q, k, v, probs, dropout_mask, scale)


def self_attention_backward(
    dout: np.ndarray, cache: AttentionCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dout (B, T, H) -> dx (B, T, H), dqkv_weight (3H, H), dqkv_bias (3H,)."""
    q, k, v, probs = cache.q, cache.k, cache.v, cache.probs
    dropout_mask, scale = cache.dropout_mask, cache.scale
    dropped = dropout_backward(probs, dropout_mask)  # the forward's dropped probabilities
    B, NH, T, D = q.shape
    dcontext = np.ascontiguousarray(dout.reshape(B, T, NH, D).transpose(0, 2, 1, 3))
    dheads = np.empty((3, B, NH, T, D), dtype=dout.dtype)  # dq, dk, dv
    with single_blas_thread():  # B * NH small products
        ddropped = dcontext @ v.transpose(0, 1, 3, 2)  # (B, NH, T, T)
        np.matmul(dropped.transpose(0, 1, 3, 2), dcontext, out=dheads[2])
        dscores = softmax_backward(dropout_backward(ddropped, dropout_mask), probs)
        dscores *= scale
        np.matmul(dscores, k, out=dheads[0])
        np.matmul(dscores.transpose(0, 1, 3, 2), q, out=dheads[1])
    dqkv = dheads.transpose(1, 3, 0, 2, 4).reshape(B, T, 3 * NH * D)  # a copy
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
    """Mean cross-entropy of logits (N, C) against labels (N,) over the rows not ignored.

    Rows labelled ``ignore_index`` carry no loss. With no row left the loss is 0 (torch would
    give NaN) and so is the gradient. The cache is the softmax (N, C), made in one new array.
    ``normalizer``: divide the summed loss by this count instead of the rows not ignored here,
    e.g. those of a whole batch when these rows are one micro-batch of it, so that the losses
    and gradients of the micro-batches add up to the batch's.
    """
    valid = labels != ignore_index
    count = int(valid.sum()) if normalizer is None else normalizer
    safe_labels = np.where(valid, labels, 0)
    probs = logits - logits.max(axis=-1, keepdims=True)  # shifted logits for now
    picked = np.take_along_axis(probs, safe_labels[:, None], axis=-1)[:, 0]  # (N,)
    np.exp(probs, out=probs)
    norm = probs.sum(axis=-1)  # (N,)
    nll = np.where(valid, np.log(norm) - picked, 0)
    loss = float(nll.sum() / count) if count else 0.0
    probs /= norm[:, None]
    return loss, CrossEntropyCache(probs, safe_labels, valid, count)


def cross_entropy_backward(dloss: float, cache: CrossEntropyCache) -> np.ndarray:
    """dlogits (N, C) = (softmax - one_hot) / count on valid rows, 0 on ignored ones."""
    probs, safe_labels, valid, count = cache.probs, cache.safe_labels, cache.valid, cache.count
    dlogits = probs.copy()
    dlogits[np.arange(len(safe_labels)), safe_labels] -= 1
    dlogits *= (valid * (dloss / max(count, 1))).astype(dlogits.dtype)[:, None]
    return dlogits
