"""BERT for pretraining (transformers' ``BertForPreTraining``): a dict of arrays, two functions.

The parameters are a dict ``name -> ndarray`` with transformers' state-dict names and shapes
(a Linear weight is ``(out, in)``). The MLM decoder is tied to the word embeddings: it *is*
``bert.embeddings.word_embeddings.weight``, so its two gradient contributions (lookup and
decoder) add up in one array; its bias is ``cls.predictions.bias``. As in llm.c, ``backward``
starts from zeroed gradients and every contribution is added with ``+=`` (``_accumulate``), so a
shared parameter sums its parts whatever their order.

``forward`` runs embeddings -> post-LayerNorm encoder layers -> pooler and both heads and keeps
a cache; ``backward`` is ``forward`` read backwards, call for call. The MLM head runs only at the
M positions that carry a label (the decoder over all positions would be most of the FLOPs).

Shape letters: ``B`` batch, ``T`` sequence, ``H`` hidden, ``F`` intermediate, ``V`` vocabulary,
``M`` positions scored by the MLM head.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from bert.core.config import WORD_EMBEDDINGS, BertConfig, layer_prefix, param_shapes
from bert.core.flat import FlatParams, zeros_like
from bert.core.labels import IGNORE_INDEX
from bert.core.layers import (
    AttentionCache,
    CrossEntropyCache,
    DropoutCache,
    EmbeddingCache,
    LayerNormCache,
    LinearCache,
    attention_mask_bias,
    cross_entropy_backward,
    cross_entropy_forward,
    dropout_backward,
    dropout_forward,
    embedding_backward,
    embedding_forward,
    gelu_backward,
    gelu_forward,
    layernorm_backward,
    layernorm_forward,
    linear_backward,
    linear_forward,
    self_attention_backward,
    self_attention_forward,
    tanh_backward,
    tanh_forward,
)
from bert.errors import ConfigError

Params = dict[str, np.ndarray]


def is_decayed(name: str) -> bool:
    """Whether weight decay applies: every parameter except biases and LayerNorm parameters."""
    return not (name.endswith("bias") or "LayerNorm" in name)


_QKV = ("query", "key", "value")


def _qkv_names(prefix: str, kind: str) -> list[str]:
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
            order += _qkv_names(prefix, "weight") + _qkv_names(prefix, "bias")
    return order


def pack_params(
    config: BertConfig, arrays: Mapping[str, np.ndarray], dtype: np.dtype | None = None
) -> FlatParams:
    """A copy of ``arrays`` (the parameters of ``config``, in state-dict order) in one flat
    buffer laid out by ``buffer_order``."""
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


# --- the caches: what backward needs, by name -------------------------------------------------


class EmbeddingsCache(NamedTuple):
    word: EmbeddingCache  # word embedding lookup
    token_type: EmbeddingCache  # token type embedding lookup
    length: int  # T, the positions used
    ln: LayerNormCache
    dropout: DropoutCache | None


class EncoderLayerCache(NamedTuple):
    attention: AttentionCache  # self-attention, before its output projection
    attention_output: LinearCache  # the attention output projection
    attention_dropout: DropoutCache | None
    ln1: LayerNormCache  # after the attention residual
    intermediate: LinearCache  # up-projection H -> F
    gelu: np.ndarray  # (B, T, F) GELU's derivative
    output: LinearCache  # down-projection F -> H
    output_dropout: DropoutCache | None
    ln2: LayerNormCache  # after the feed-forward residual


class EncoderCache(NamedTuple):
    embeddings: EmbeddingsCache
    layers: list[EncoderLayerCache | None]  # one per encoder layer; None once backward used it


class MlmHeadCache(NamedTuple):
    dense: LinearCache  # the transform's dense layer
    gelu: np.ndarray  # (M, H) GELU's derivative
    ln: LayerNormCache
    decoder: LinearCache  # the tied decoder (weight: the word embeddings)


class NspHeadCache(NamedTuple):
    pooler: LinearCache  # the pooler's dense layer on the [CLS] vector
    pooled: np.ndarray  # (B, H) the pooler's output, tanh's cache
    classifier: LinearCache  # pooled -> 2 logits


class ForwardCache(NamedTuple):
    encoder: EncoderCache
    hidden_shape: tuple[int, int, int]  # (B, T, H)
    scored: np.ndarray  # (M,) flat positions that carry an MLM label
    mlm_head: MlmHeadCache
    mlm_loss: CrossEntropyCache
    nsp_head: NspHeadCache
    nsp_loss: CrossEntropyCache
    mlm_weight: float
    nsp_weight: float


# --- forward -----------------------------------------------------------------------------------


def _linear(params: Params, name: str, x: np.ndarray) -> tuple[np.ndarray, LinearCache]:
    return linear_forward(x, params[f"{name}.weight"], params[f"{name}.bias"])


def _layernorm(
    params: Params, name: str, x: np.ndarray, eps: float
) -> tuple[np.ndarray, LayerNormCache]:
    return layernorm_forward(x, params[f"{name}.LayerNorm.weight"],
                             params[f"{name}.LayerNorm.bias"], eps)


def _qkv(params: Params, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """The query, key and value projections stacked: weight (3H, H), bias (3H,); views of a
    flat buffer laid out by ``buffer_order``, else concatenated."""
    stacked = []
    for kind in ("weight", "bias"):
        names = _qkv_names(prefix, kind)
        span = params.span(names) if isinstance(params, FlatParams) else None
        stacked.append(np.concatenate([params[n] for n in names]) if span is None else span)
    weight, bias = stacked
    return weight.reshape(len(bias), -1), bias


def _embeddings_forward(params, config, input_ids, token_type_ids, rng):
    """input_ids, token_type_ids (B, T) -> (B, T, H): word + token type + position, LN, dropout."""
    T = input_ids.shape[1]
    word, c_word = embedding_forward(input_ids, params[WORD_EMBEDDINGS])
    types, c_types = embedding_forward(
        token_type_ids, params["bert.embeddings.token_type_embeddings.weight"])
    summed = word  # a fresh array from the lookup, summed into in place
    summed += types
    summed += params["bert.embeddings.position_embeddings.weight"][:T]
    x, c_ln = _layernorm(params, "bert.embeddings", summed, config.layer_norm_eps)
    x, c_drop = dropout_forward(x, config.hidden_dropout_prob, rng)
    return x, EmbeddingsCache(c_word, c_types, T, c_ln, c_drop)


def _encoder_layer_forward(params, config, prefix, x, mask_bias, rng):
    """One post-LayerNorm encoder layer: x (B, T, H) -> (B, T, H)."""
    eps, p_hidden = config.layer_norm_eps, config.hidden_dropout_prob
    qkv_weight, qkv_bias = _qkv(params, prefix)
    context, c_attn = self_attention_forward(
        x, qkv_weight, qkv_bias, mask_bias, config.num_attention_heads,
        config.attention_probs_dropout_prob, rng)
    a, c_attn_out = _linear(params, f"{prefix}.attention.output.dense", context)
    a, c_attn_drop = dropout_forward(a, p_hidden, rng)
    a += x  # residual
    h, c_ln1 = _layernorm(params, f"{prefix}.attention.output", a, eps)
    f, c_up = _linear(params, f"{prefix}.intermediate.dense", h)  # (B, T, F)
    g, c_gelu = gelu_forward(f)
    o, c_down = _linear(params, f"{prefix}.output.dense", g)  # (B, T, H)
    o, c_ffn_drop = dropout_forward(o, p_hidden, rng)
    o += h  # residual
    out, c_ln2 = _layernorm(params, f"{prefix}.output", o, eps)
    return out, EncoderLayerCache(c_attn, c_attn_out, c_attn_drop, c_ln1, c_up, c_gelu, c_down,
                                  c_ffn_drop, c_ln2)


def _mlm_head_forward(params, config, hidden):
    """hidden (M, H) at the scored positions -> logits (M, V) with the tied decoder."""
    t, c_dense = _linear(params, "cls.predictions.transform.dense", hidden)
    t, c_gelu = gelu_forward(t)
    t, c_ln = _layernorm(params, "cls.predictions.transform", t, config.layer_norm_eps)
    logits, c_decoder = linear_forward(t, params[WORD_EMBEDDINGS], params["cls.predictions.bias"])
    return logits, MlmHeadCache(c_dense, c_gelu, c_ln, c_decoder)


def _nsp_head_forward(params, hidden):
    """hidden (B, T, H) -> NSP logits (B, 2) from the pooled [CLS] vector."""
    cls = np.ascontiguousarray(hidden[:, 0])  # (B, H): the cache keeps this, not all of hidden
    pooled, c_pool = _linear(params, "bert.pooler.dense", cls)
    pooled, c_tanh = tanh_forward(pooled)
    logits, c_cls = _linear(params, "cls.seq_relationship", pooled)
    return logits, NspHeadCache(c_pool, c_tanh, c_cls)


def encode(
    params: Params,
    config: BertConfig,
    input_ids: np.ndarray,
    token_type_ids: np.ndarray,
    attention_mask: np.ndarray,
    rng: np.random.Generator | None = None,
) -> tuple[list[np.ndarray], EncoderCache]:
    """The encoder: ids (B, T) -> hidden states, a list of L + 1 arrays (B, T, H).

    Entry 0 is the embeddings' output, entry i the output of layer i, as transformers'
    ``hidden_states``. Dropout is applied when ``rng`` is given (training).
    """
    B, T = input_ids.shape
    if T > config.max_position_embeddings:
        raise ConfigError(f"sequence length {T} exceeds max_position_embeddings "
                          f"{config.max_position_embeddings}")
    dtype = params[WORD_EMBEDDINGS].dtype
    mask_bias = attention_mask_bias(attention_mask, dtype)  # (B, 1, 1, T)
    x, c_embed = _embeddings_forward(params, config, input_ids, token_type_ids, rng)
    hidden_states, c_layers = [x], []
    for i in range(config.num_hidden_layers):
        x, c_layer = _encoder_layer_forward(params, config, layer_prefix(i), x, mask_bias, rng)
        hidden_states.append(x)
        c_layers.append(c_layer)
    return hidden_states, EncoderCache(c_embed, c_layers)


def forward(
    params: Params,
    config: BertConfig,
    batch: Mapping[str, np.ndarray],
    rng: np.random.Generator | None = None,
    mlm_weight: float = 1.0,
    nsp_weight: float = 1.0,
    normalizers: tuple[int, int] | None = None,
) -> tuple[dict[str, float], ForwardCache]:
    """Losses of one batch and the cache ``backward`` needs.

    batch: ``input_ids, token_type_ids, attention_mask, mlm_labels`` (B, T) and
    ``nsp_labels`` (B,). MLM loss: mean cross-entropy over the M labelled positions of the batch;
    NSP loss: mean over the batch; total = mlm_weight * MLM + nsp_weight * NSP.
    normalizers: (labelled positions, examples) of a larger batch of which this batch is one
    micro-batch; the losses are then summed over this batch and divided by those counts, so
    that the micro-batches' losses and gradients add up to the larger batch's.
    """
    mlm_count, nsp_count = normalizers or (None, None)
    hidden_states, c_encoder = encode(params, config, batch["input_ids"],
                                      batch["token_type_ids"], batch["attention_mask"], rng)
    hidden = hidden_states[-1]  # (B, T, H)
    B, T, H = hidden.shape
    flat_labels = np.asarray(batch["mlm_labels"]).reshape(-1)
    scored = np.flatnonzero(flat_labels != IGNORE_INDEX)  # (M,) flat positions
    mlm_logits, c_mlm = _mlm_head_forward(params, config, hidden.reshape(B * T, H)[scored])
    mlm_loss, c_mlm_loss = cross_entropy_forward(mlm_logits, flat_labels[scored],
                                                 normalizer=mlm_count)
    nsp_logits, c_nsp = _nsp_head_forward(params, hidden)
    nsp_loss, c_nsp_loss = cross_entropy_forward(nsp_logits, np.asarray(batch["nsp_labels"]),
                                                 normalizer=nsp_count)
    losses = {"mlm": mlm_loss, "nsp": nsp_loss,
              "total": mlm_weight * mlm_loss + nsp_weight * nsp_loss}
    cache = ForwardCache(c_encoder, (B, T, H), scored, c_mlm, c_mlm_loss, c_nsp, c_nsp_loss,
                         mlm_weight, nsp_weight)
    return losses, cache


# --- backward ----------------------------------------------------------------------------------


def _accumulate(
    grads: Params, name: str, dparam: np.ndarray, rows: slice = slice(None)
) -> None:
    """Add one gradient contribution to ``grads[name]`` (to its ``rows``): the one place where
    a gradient is written."""
    grads[name][rows] += dparam


def _linear_backward(grads: Params, name: str, dout: np.ndarray, cache: LinearCache) -> np.ndarray:
    dx, dweight, dbias = linear_backward(dout, cache)
    _accumulate(grads, f"{name}.weight", dweight)
    _accumulate(grads, f"{name}.bias", dbias)
    return dx


def _layernorm_backward(
    grads: Params, name: str, dout: np.ndarray, cache: LayerNormCache
) -> np.ndarray:
    dx, dweight, dbias = layernorm_backward(dout, cache)
    _accumulate(grads, f"{name}.LayerNorm.weight", dweight)
    _accumulate(grads, f"{name}.LayerNorm.bias", dbias)
    return dx


def _nsp_head_backward(grads, dlogits, cache: NspHeadCache, hidden_shape, dtype):
    """dlogits (B, 2) -> dhidden (B, T, H), nonzero only at [CLS]."""
    dpooled = _linear_backward(grads, "cls.seq_relationship", dlogits, cache.classifier)
    dpooled = tanh_backward(dpooled, cache.pooled)
    dcls = _linear_backward(grads, "bert.pooler.dense", dpooled, cache.pooler)
    dhidden = np.zeros(hidden_shape, dtype=dtype)
    dhidden[:, 0] = dcls
    return dhidden


def _mlm_head_backward(grads, dlogits, cache: MlmHeadCache):
    """dlogits (M, V) -> dhidden (M, H); the decoder's weight gradient goes to the word
    embeddings, which the lookup adds to as well."""
    dt, dword, dbias = linear_backward(dlogits, cache.decoder)
    _accumulate(grads, WORD_EMBEDDINGS, dword)
    _accumulate(grads, "cls.predictions.bias", dbias)
    dt = _layernorm_backward(grads, "cls.predictions.transform", dt, cache.ln)
    dt = gelu_backward(dt, cache.gelu, out=dt)
    return _linear_backward(grads, "cls.predictions.transform.dense", dt, cache.dense)


def _encoder_layer_backward(grads, prefix, dout, cache: EncoderLayerCache):
    """dout (B, T, H) -> dx (B, T, H): the encoder layer read backwards."""
    dsum2 = _layernorm_backward(grads, f"{prefix}.output", dout, cache.ln2)  # d(o + h)
    do = dropout_backward(dsum2, cache.output_dropout)
    dg = _linear_backward(grads, f"{prefix}.output.dense", do, cache.output)
    df = gelu_backward(dg, cache.gelu, out=dg)  # dg is not needed after
    dh = _linear_backward(grads, f"{prefix}.intermediate.dense", df, cache.intermediate)
    dh += dsum2
    dsum1 = _layernorm_backward(grads, f"{prefix}.attention.output", dh, cache.ln1)  # d(a + x)
    da = dropout_backward(dsum1, cache.attention_dropout)
    dcontext = _linear_backward(grads, f"{prefix}.attention.output.dense", da,
                                cache.attention_output)
    dx, dqkv_weight, dqkv_bias = self_attention_backward(dcontext, cache.attention)
    for j, projection in enumerate(_QKV):
        rows = slice(j * len(dqkv_bias) // 3, (j + 1) * len(dqkv_bias) // 3)
        _accumulate(grads, f"{prefix}.attention.self.{projection}.weight", dqkv_weight[rows])
        _accumulate(grads, f"{prefix}.attention.self.{projection}.bias", dqkv_bias[rows])
    dx += dsum1
    return dx


def _embeddings_backward(grads, config, dx, cache: EmbeddingsCache):
    """dx (B, T, H) -> gradients of the three embedding tables and their LayerNorm."""
    dsummed = _layernorm_backward(grads, "bert.embeddings", dropout_backward(dx, cache.dropout),
                                  cache.ln)
    _accumulate(grads, WORD_EMBEDDINGS,
                embedding_backward(dsummed, cache.word, config.pad_token_id))
    _accumulate(grads, "bert.embeddings.token_type_embeddings.weight",
                embedding_backward(dsummed, cache.token_type))
    _accumulate(grads, "bert.embeddings.position_embeddings.weight", dsummed.sum(axis=0),
                rows=slice(0, cache.length))


def backward(params: Params, config: BertConfig, cache: ForwardCache) -> Params:
    """Gradients of the total loss for every parameter: ``forward`` read backwards.

    The gradients start at zero and every contribution is added to them, so the tied word
    embeddings get the sum of the decoder's and the lookup's parts in any order. Each encoder
    layer's cache is released (set to None in ``cache.encoder.layers``) once its backward is
    done, as autograd frees saved tensors, so that memory falls as the pass goes down.
    """
    dtype = params[WORD_EMBEDDINGS].dtype
    B, T, H = cache.hidden_shape
    grads = zeros_like(params)  # in the parameters' flat layout, if they have one
    dnsp_logits = cross_entropy_backward(cache.nsp_weight, cache.nsp_loss)
    dhidden = _nsp_head_backward(grads, dnsp_logits, cache.nsp_head, cache.hidden_shape, dtype)
    dhidden.reshape(B * T, H)[cache.scored] += _mlm_head_backward(
        grads, cross_entropy_backward(cache.mlm_weight, cache.mlm_loss), cache.mlm_head)
    dx = dhidden
    layers = cache.encoder.layers
    for i in reversed(range(config.num_hidden_layers)):
        dx = _encoder_layer_backward(grads, layer_prefix(i), dx, layers[i])
        layers[i] = None
    _embeddings_backward(grads, config, dx, cache.encoder.embeddings)
    return grads


# --- inference ---------------------------------------------------------------------------------


def predict(
    params: Params,
    config: BertConfig,
    input_ids: np.ndarray,
    token_type_ids: np.ndarray,
    attention_mask: np.ndarray,
    mlm_positions: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Inference (no dropout): MLM logits and NSP logits.

    mlm_positions: a boolean (B, T) array choosing where the MLM head runs; the returned
    ``mlm_logits`` are then (M, V) in row-major order of the chosen positions. With ``None``
    it runs everywhere and ``mlm_logits`` is (B, T, V). ``nsp_logits`` is (B, 2),
    ``pooled`` the pooler's output (B, H), ``hidden_states`` the L + 1 encoder outputs (B, T, H),
    ``attentions`` the L attention probabilities (B, NH, T, T).
    """
    hidden_states, encoder = encode(params, config, input_ids, token_type_ids, attention_mask)
    hidden = hidden_states[-1]
    B, T, H = hidden.shape
    if mlm_positions is None:
        mlm_logits = _mlm_head_forward(params, config, hidden.reshape(B * T, H))[0]
        mlm_logits = mlm_logits.reshape(B, T, -1)
    else:
        mlm_logits = _mlm_head_forward(params, config, hidden[np.asarray(mlm_positions, bool)])[0]
    nsp_logits, nsp_head = _nsp_head_forward(params, hidden)
    attentions = [layer.attention.probs for layer in encoder.layers]
    return {"mlm_logits": mlm_logits, "nsp_logits": nsp_logits, "pooled": nsp_head.pooled,
            "hidden_states": hidden_states, "attentions": attentions}
