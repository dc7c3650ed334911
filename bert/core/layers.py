"""The layers of BERT, each body its formula: the reference to read.

Every layer is a pair of stateless functions. ``*_forward`` returns ``(out, cache)``, the cache
holding exactly what ``*_backward(dout, cache)`` needs; ``*_backward`` returns the gradient of
the input first, then those of the parameters in their argument order. Arrays keep their dtype.

``bert.core.kernels`` holds the same functions, with the same names, signatures and caches,
written for speed (blocks of rows on the compute threads, buffers reused in place, row sums as
products); ``tests/test_kernels.py`` keeps the two equal to float64 round-off, and
``bert.core.model`` runs on either (``layers="reference"`` or ``"fast"``).

Shapes: ``B`` batch, ``T`` sequence, ``H`` hidden, ``NH`` heads, ``D = H / NH`` head size,
``V`` rows of an embedding table, ``N`` any number of rows, ``C`` classes.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from bert.core.labels import IGNORE_INDEX
from bert.core.special import erf

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
    q: np.ndarray  # (B, NH, T, D) queries times the scale
    k: np.ndarray  # (B, NH, T, D) keys
    v: np.ndarray  # (B, NH, T, D) values
    probs: np.ndarray  # (B, NH, T, T) softmax of the scores, before dropout
    dropout_mask: DropoutCache | None  # of the probabilities (None: no dropout)
    scale: float  # D ** -0.5, applied to the scores


class CrossEntropyCache(NamedTuple):
    probs: np.ndarray  # (N, C) softmax of the logits
    safe_labels: np.ndarray  # (N,) the labels, ignored rows set to class 0
    valid: np.ndarray  # (N,) bool, the rows not ignored
    count: int  # the count the summed loss is divided by


# --- embedding lookup ---------------------------------------------------------------------------


def embedding_forward(ids: np.ndarray, table: np.ndarray) -> tuple[np.ndarray, EmbeddingCache]:
    """Look rows up: ids (...) int, table (V, H) -> out (..., H)."""
    return table[ids], EmbeddingCache(ids, table.shape[0])


def embedding_backward(
    dout: np.ndarray, cache: EmbeddingCache, padding_idx: int | None = None
) -> np.ndarray:
    """Gradient of the table (V, H): each row gets the sum of dout (..., H) over the places it
    was looked up; the row ``padding_idx`` gets none."""
    dtable = np.zeros((cache.num_rows, dout.shape[-1]), dtype=dout.dtype)  # (V, H)
    np.add.at(dtable, cache.ids, dout)
    if padding_idx is not None:
        dtable[padding_idx] = 0
    return dtable


# --- linear ------------------------------------------------------------------------------------


def linear_forward(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray
) -> tuple[np.ndarray, LinearCache]:
    """out = x W^T + b: x (..., in), weight (out, in), bias (out,) -> (..., out)."""
    return x @ weight.T + bias, LinearCache(x, weight)


def linear_backward(
    dout: np.ndarray, cache: LinearCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dout (..., out) -> dx (..., in), dweight (out, in), dbias (out,)."""
    x2d = cache.x.reshape(-1, cache.x.shape[-1])  # (N, in)
    dout2d = dout.reshape(-1, dout.shape[-1])  # (N, out)
    dx = dout @ cache.weight  # (..., in)
    dweight = dout2d.T @ x2d  # (out, in)
    dbias = dout2d.sum(axis=0)  # (out,)
    return dx, dweight, dbias


# --- layer norm --------------------------------------------------------------------------------


def layernorm_forward(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float
) -> tuple[np.ndarray, LayerNormCache]:
    """Normalize the last axis of x (..., H) to zero mean and unit (biased) variance, then
    scale and shift by weight (H,) and bias (H,)."""
    mean = x.mean(axis=-1, keepdims=True)  # (..., 1)
    variance = ((x - mean) ** 2).mean(axis=-1, keepdims=True)  # (..., 1)
    rstd = 1.0 / np.sqrt(variance + eps)  # (..., 1)
    xhat = (x - mean) * rstd  # (..., H)
    out = xhat * weight + bias  # (..., H)
    return out, LayerNormCache(xhat, rstd, weight)


def layernorm_backward(
    dout: np.ndarray, cache: LayerNormCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dout (..., H) -> dx (..., H), dweight (H,), dbias (H,).

    The gradient of xhat is projected off the two directions the normalization removes (a
    shift and a scale of x), then scaled by rstd."""
    xhat, rstd = cache.xhat, cache.rstd
    dxhat = dout * cache.weight  # (..., H)
    dx = rstd * (dxhat - dxhat.mean(axis=-1, keepdims=True)
                 - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True))  # (..., H)
    rows = tuple(range(dout.ndim - 1))  # every axis but the last
    dweight = (dout * xhat).sum(axis=rows)  # (H,)
    dbias = dout.sum(axis=rows)  # (H,)
    return dx, dweight, dbias


# --- GELU and tanh -----------------------------------------------------------------------------


def gelu_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact GELU, x Phi(x), Phi the standard normal distribution function; elementwise.

    The cache is the derivative Phi(x) + x phi(x) (phi the standard normal density), so that
    the backward pass is one product."""
    cdf = 0.5 * (1.0 + erf(x / math.sqrt(2.0)))  # Phi(x)
    pdf = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)  # phi(x)
    return x * cdf, cdf + x * pdf


def gelu_backward(
    dout: np.ndarray, derivative: np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """dout times d/dx [x Phi(x)] = Phi(x) + x phi(x) (the forward's cache); into ``out`` if
    given (which may be ``dout``)."""
    return np.multiply(dout, derivative, out=out)


def tanh_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Elementwise tanh; the cache is the output."""
    out = np.tanh(x)
    return out, out


def tanh_backward(dout: np.ndarray, out: np.ndarray) -> np.ndarray:
    """d tanh(x) / dx = 1 - tanh(x)^2."""
    return dout * (1.0 - out * out)


# --- dropout -----------------------------------------------------------------------------------


def random_bits16(size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` uniform 16-bit draws: raw 64-bit outputs of the generator, each cut into four
    (five times cheaper than floating-point draws, and the same for float32 and float64)."""
    return rng.bit_generator.random_raw(-(-size // 4)).view(np.uint16)[:size]


def keep_threshold(p: float) -> np.uint16:
    """An element is kept when its 16 bits are at least this: P(keep) = 1 - p, exact to 2^-16."""
    return np.uint16(round(p * 2**16))


def dropout_forward(
    x: np.ndarray, p: float, rng: np.random.Generator | None
) -> tuple[np.ndarray, DropoutCache | None]:
    """Zero each element of x with probability p and scale the rest by 1 / (1 - p).

    With ``p == 0`` or no generator (inference) it is the identity and draws nothing."""
    if p == 0 or rng is None:
        return x, None
    keep = random_bits16(x.size, rng).reshape(x.shape) >= keep_threshold(p)  # bool, like x
    scale = x.dtype.type(1.0 / (1.0 - p))
    return x * keep * scale, DropoutCache(keep, scale)


def dropout_backward(dout: np.ndarray, cache: DropoutCache | None) -> np.ndarray:
    """The same mask and scale applied to the gradient."""
    if cache is None:
        return dout
    return dout * cache.keep * cache.scale


# --- softmax -----------------------------------------------------------------------------------


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, shifted by the row maximum for stability."""
    x = np.asarray(x, dtype=np.result_type(x, np.float32))
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_backward(dprobs: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Gradient of the softmax input from that of its output (last axis)."""
    return probs * (dprobs - (dprobs * probs).sum(axis=-1, keepdims=True))


# --- multi-head self-attention -----------------------------------------------------------------


def attention_mask_bias(attention_mask: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """attention_mask (B, T) of 1 (attend) / 0 (padding) -> additive bias (B, 1, 1, T).

    Padding keys get the most negative finite value, as transformers does, so that their
    attention probability is exactly zero.
    """
    dtype = np.dtype(dtype)
    bias = (1 - attention_mask.astype(dtype)) * np.finfo(dtype).min
    return bias[:, None, None, :]


def split_heads(x: np.ndarray, num_heads: int, head_size: int) -> np.ndarray:
    """(B, T, n * NH * D) -> a view (n, B, NH, T, D): the heads of n stacked projections."""
    B, T, width = x.shape
    n = width // (num_heads * head_size)
    return x.reshape(B, T, n, num_heads, head_size).transpose(2, 0, 3, 1, 4)


def merge_heads(*heads: np.ndarray) -> np.ndarray:
    """n arrays (B, NH, T, D) -> (B, T, n * NH * D), heads side by side, then projections."""
    stacked = np.stack(heads)  # (n, B, NH, T, D)
    n, B, NH, T, D = stacked.shape
    return stacked.transpose(1, 3, 0, 2, 4).reshape(B, T, n * NH * D)


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
    stacked; mask_bias (B, 1, 1, T) additive. Returns the context (B, T, H), heads
    concatenated, before the output projection.
    """
    D = x.shape[-1] // num_heads
    qkv, linear_cache = linear_forward(x, qkv_weight, qkv_bias)  # (B, T, 3H)
    q, k, v = split_heads(qkv, num_heads, D)  # each (B, NH, T, D)
    scale = D**-0.5
    q = q * scale
    scores = q @ k.swapaxes(-1, -2) + mask_bias  # (B, NH, T, T)
    probs = softmax(scores)  # (B, NH, T, T)
    dropped, dropout_cache = dropout_forward(probs, dropout_p, rng)
    context = dropped @ v  # (B, NH, T, D)
    return merge_heads(context), AttentionCache(linear_cache, q, k, v, probs, dropout_cache,
                                                scale)


def self_attention_backward(
    dout: np.ndarray, cache: AttentionCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dout (B, T, H) -> dx (B, T, H), dqkv_weight (3H, H), dqkv_bias (3H,)."""
    q, k, v, probs, dropout = cache.q, cache.k, cache.v, cache.probs, cache.dropout_mask
    (dcontext,) = split_heads(dout, q.shape[1], q.shape[3])  # (B, NH, T, D)
    dropped = probs if dropout is None else probs * dropout.keep * dropout.scale  # (B, NH, T, T)
    dv = dropped.swapaxes(-1, -2) @ dcontext  # (B, NH, T, D)
    ddropped = dcontext @ v.swapaxes(-1, -2)  # (B, NH, T, T)
    dscores = softmax_backward(dropout_backward(ddropped, dropout), probs)  # (B, NH, T, T)
    dq = dscores @ k * cache.scale  # (B, NH, T, D); the queries were scaled
    dk = dscores.swapaxes(-1, -2) @ q  # (B, NH, T, D)
    dx, dqkv_weight, dqkv_bias = linear_backward(merge_heads(dq, dk, dv), cache.linear)
    # The key bias adds q.b_k to every score of a query alike, which softmax ignores: its exact
    # gradient is 0. Summing dk would give round-off noise, which Adam's normalization amplifies
    # into real updates in float32; the exact value is used instead.
    H = dout.shape[-1]
    dqkv_bias[H:2 * H] = 0
    return dx, dqkv_weight, dqkv_bias


# --- softmax cross-entropy ---------------------------------------------------------------------


def cross_entropy_forward(
    logits: np.ndarray, labels: np.ndarray, ignore_index: int = IGNORE_INDEX,
    normalizer: int | None = None,
) -> tuple[float, CrossEntropyCache]:
    """Mean cross-entropy of logits (N, C) against labels (N,) over the rows not ignored.

    Rows labelled ``ignore_index`` carry no loss. With no row left the loss is 0 (torch would
    give NaN) and so is the gradient. ``normalizer``: divide the summed loss by this count
    instead of the rows not ignored here, e.g. those of a whole batch when these rows are one
    micro-batch of it, so that the micro-batches' losses and gradients add up to the batch's.
    """
    valid = labels != ignore_index  # (N,)
    count = int(valid.sum()) if normalizer is None else normalizer
    safe_labels = np.where(valid, labels, 0)  # (N,)
    shifted = logits - logits.max(axis=-1, keepdims=True)  # (N, C)
    log_norm = np.log(np.exp(shifted).sum(axis=-1))  # (N,)
    nll = log_norm - shifted[np.arange(len(logits)), safe_labels]  # (N,) -log softmax at label
    loss = float(np.where(valid, nll, 0).sum() / count) if count else 0.0
    return loss, CrossEntropyCache(softmax(logits), safe_labels, valid, count)


def cross_entropy_backward(dloss: float, cache: CrossEntropyCache) -> np.ndarray:
    """dlogits (N, C) = (softmax - one_hot) * dloss / count on valid rows, 0 on ignored ones."""
    one_hot = np.eye(cache.probs.shape[1], dtype=cache.probs.dtype)[cache.safe_labels]  # (N, C)
    row_weight = cache.valid * (dloss / max(cache.count, 1))  # (N,)
    return ((cache.probs - one_hot) * row_weight[:, None]).astype(cache.probs.dtype)
