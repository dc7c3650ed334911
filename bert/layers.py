"""The layers of BERT as stateless forward/backward pairs of functions over NumPy arrays.

Every ``*_forward`` returns ``(out, cache)``: the cache holds exactly what the matching
``*_backward(dout, cache)`` needs, and nothing is kept anywhere else. Backward functions return
the gradient of the input first, then the gradients of the parameters in their argument order.
Arrays keep the dtype they come in (float32 or float64); no float64 temporaries are made for
float32 inputs.

Shape letters: ``B`` batch, ``T`` sequence, ``H`` hidden, ``NH`` heads, ``D`` head size,
``V`` vocabulary (rows of an embedding table), ``N`` any number of rows, ``C`` classes.
"""

from __future__ import annotations

import math

import numpy as np

from bert.special import erf

IGNORE_INDEX = -100  # label of positions that carry no loss, as in torch's cross-entropy


# --- embedding lookup ---------------------------------------------------------------------------


def embedding_forward(ids: np.ndarray, table: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Look rows up: ids (...) int, table (V, H) -> out (..., H)."""
    return table[ids], (ids, table.shape[0])


def embedding_backward(
    dout: np.ndarray, cache: tuple, padding_idx: int | None = None
) -> np.ndarray:
    """Gradient of the table (V, H) from dout (..., H); the row ``padding_idx`` gets none.

    Rows are summed with one sort and ``np.add.reduceat`` (deterministic, no ``np.add.at``).
    """
    ids, num_rows = cache
    flat_ids = ids.reshape(-1)
    flat_dout = dout.reshape(flat_ids.size, -1)  # (N, H)
    order = np.argsort(flat_ids, kind="stable")
    sorted_ids = flat_ids[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    dtable = np.zeros((num_rows, flat_dout.shape[1]), dtype=dout.dtype)
    dtable[sorted_ids[starts]] = np.add.reduceat(flat_dout[order], starts, axis=0)
    if padding_idx is not None:
        dtable[padding_idx] = 0
    return dtable


# --- linear ------------------------------------------------------------------------------------


def linear_forward(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray
) -> tuple[np.ndarray, tuple]:
    """x (..., in) @ weight (out, in).T + bias (out,) -> (..., out)."""
    return x @ weight.T + bias, (x, weight)


def linear_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dout (..., out) -> dx (..., in), dweight (out, in), dbias (out,)."""
    x, weight = cache
    dout2d = dout.reshape(-1, dout.shape[-1])  # (N, out)
    dweight = dout2d.T @ x.reshape(-1, x.shape[-1])
    return dout @ weight, dweight, dout2d.sum(axis=0)


# --- layer norm --------------------------------------------------------------------------------


def layernorm_forward(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float
) -> tuple[np.ndarray, tuple]:
    """Normalize the last axis of x (..., H) to zero mean and unit (biased) variance, then scale."""
    mean = x.mean(axis=-1, keepdims=True)
    centered = x - mean
    var = np.mean(centered * centered, axis=-1, keepdims=True)
    rstd = 1.0 / np.sqrt(var + eps)  # (..., 1)
    xhat = centered * rstd
    return xhat * weight + bias, (xhat, rstd, weight)


def layernorm_backward(
    dout: np.ndarray, cache: tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dout (..., H) -> dx (..., H), dweight (H,), dbias (H,)."""
    xhat, rstd, weight = cache
    dxhat = dout * weight
    # d/dx of (x - mean) * rstd, projected off the two directions the normalization removes
    dx = rstd * (
        dxhat
        - dxhat.mean(axis=-1, keepdims=True)
        - xhat * np.mean(dxhat * xhat, axis=-1, keepdims=True)
    )
    flat = (-1, dout.shape[-1])
    dweight = np.sum((dout * xhat).reshape(flat), axis=0)
    return dx, dweight, dout.reshape(flat).sum(axis=0)


# --- GELU and tanh -----------------------------------------------------------------------------

_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def gelu_forward(x: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Exact GELU: 0.5 x (1 + erf(x / sqrt 2)) = x Phi(x), elementwise."""
    cdf = 0.5 * (1.0 + erf(x * _INV_SQRT2))  # Phi(x)
    return x * cdf, (x, cdf)


def gelu_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """d/dx [x Phi(x)] = Phi(x) + x phi(x), with phi the standard normal density."""
    x, cdf = cache
    pdf = _INV_SQRT_2PI * np.exp(-0.5 * x * x)
    return dout * (cdf + x * pdf)


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
) -> tuple[np.ndarray, np.ndarray | None]:
    """Zero each element with probability p and scale the rest by 1 / (1 - p).

    With ``p == 0`` or no generator (inference) it is the identity and draws nothing.
    """
    if p == 0 or rng is None:
        return x, None
    scaled_mask = (rng.random(x.shape, dtype=x.dtype) >= p) * x.dtype.type(1.0 / (1.0 - p))
    return x * scaled_mask, scaled_mask


def dropout_backward(dout: np.ndarray, scaled_mask: np.ndarray | None) -> np.ndarray:
    """The same mask and scale applied to the gradient."""
    return dout if scaled_mask is None else dout * scaled_mask


# --- softmax -----------------------------------------------------------------------------------


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, shifted by the row maximum for stability."""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_backward(dprobs: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Gradient of the softmax input from that of its output (last axis)."""
    return probs * (dprobs - np.sum(dprobs * probs, axis=-1, keepdims=True))


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
) -> tuple[np.ndarray, tuple]:
    """Scaled dot-product self-attention over all heads at once.

    x (B, T, H); qkv_weight (3H, H) and qkv_bias (3H,): the query, key and value projections
    stacked; mask_bias (B, 1, 1, T) additive. Returns the context (B, T, H), heads concatenated,
    before the output projection.
    """
    B, T, H = x.shape
    D = H // num_heads
    qkv, linear_cache = linear_forward(x, qkv_weight, qkv_bias)  # (B, T, 3H)
    q, k, v = qkv.reshape(B, T, 3, num_heads, D).transpose(2, 0, 3, 1, 4)  # each (B, NH, T, D)
    scale = D**-0.5
    scores = (q @ k.transpose(0, 1, 3, 2)) * scale + mask_bias  # (B, NH, T, T)
    probs = softmax(scores)
    dropped, dropout_mask = dropout_forward(probs, dropout_p, rng)
    context = dropped @ v  # (B, NH, T, D)
    out = context.transpose(0, 2, 1, 3).reshape(B, T, H)
    return out, (linear_cache, q, k, v, probs, dropped, dropout_mask, scale)


def self_attention_backward(
    dout: np.ndarray, cache: tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dout (B, T, H) -> dx (B, T, H), dqkv_weight (3H, H), dqkv_bias (3H,)."""
    linear_cache, q, k, v, probs, dropped, dropout_mask, scale = cache
    B, NH, T, D = q.shape
    dcontext = dout.reshape(B, T, NH, D).transpose(0, 2, 1, 3)  # (B, NH, T, D)
    ddropped = dcontext @ v.transpose(0, 1, 3, 2)  # (B, NH, T, T)
    dv = dropped.transpose(0, 1, 3, 2) @ dcontext
    dscores = softmax_backward(dropout_backward(ddropped, dropout_mask), probs) * scale
    dq = dscores @ k
    dk = dscores.transpose(0, 1, 3, 2) @ q
    dqkv = np.stack([dq, dk, dv]).transpose(1, 3, 0, 2, 4).reshape(B, T, 3 * NH * D)
    dx, dqkv_weight, dqkv_bias = linear_backward(dqkv, linear_cache)
    # The key bias adds q.b_k to every score of a query alike, which softmax ignores: its exact
    # gradient is 0. Summing dk would give round-off noise, which Adam's normalization amplifies
    # into real updates in float32; the exact value is used instead.
    dqkv_bias[NH * D:2 * NH * D] = 0
    return dx, dqkv_weight, dqkv_bias


# --- softmax cross-entropy ---------------------------------------------------------------------


def cross_entropy_forward(
    logits: np.ndarray, labels: np.ndarray, ignore_index: int = IGNORE_INDEX
) -> tuple[float, tuple]:
    """Mean cross-entropy of logits (N, C) against labels (N,) over the rows not ignored.

    Rows labelled ``ignore_index`` carry no loss. With no row left the loss is 0 (torch would
    give NaN) and so is the gradient.
    """
    valid = labels != ignore_index
    count = int(valid.sum())
    safe_labels = np.where(valid, labels, 0)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=-1))  # (N,)
    picked = np.take_along_axis(shifted, safe_labels[:, None], axis=-1)[:, 0]
    nll = np.where(valid, log_norm - picked, 0)
    loss = float(nll.sum() / count) if count else 0.0
    return loss, (shifted, log_norm, safe_labels, valid, count)


def cross_entropy_backward(dloss: float, cache: tuple) -> np.ndarray:
    """dlogits (N, C) = (softmax - one_hot) / count on valid rows, 0 on ignored ones."""
    shifted, log_norm, safe_labels, valid, count = cache
    dlogits = np.exp(shifted - log_norm[:, None])
    rows = np.arange(len(safe_labels))
    dlogits[rows, safe_labels] -= 1
    weight = (valid * (dloss / max(count, 1))).astype(dlogits.dtype)
    return dlogits * weight[:, None]
