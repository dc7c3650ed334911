"""BERT for pretraining (transformers' ``BertForPreTraining``): two functions over a dict of
arrays.

The parameters (``bert.core.parameters``) are a dict ``name -> ndarray`` with transformers'
state-dict names and shapes (a Linear weight is ``(out, in)``), views of one flat buffer. The MLM
decoder is tied to the word embeddings: it *is* ``bert.embeddings.word_embeddings.weight``, so
its two gradient contributions (lookup and decoder) add up in one array; its bias is
``cls.predictions.bias``. ``backward`` starts from zeroed gradients and every contribution is
added with ``+=`` (``_accumulate``), so a shared parameter sums its parts whatever their order.

``forward`` runs embeddings -> post-LayerNorm encoder layers -> pooler and both heads and keeps
a cache; ``backward`` is ``forward`` read backwards, call for call. The MLM head runs only at the
M positions that carry a label (the decoder over all positions would be most of the FLOPs). A
batch without sentence labels (``nsp_labels``: no sentence task, as RoBERTa) has no sentence
loss, so training runs neither the pooler nor ``cls.seq_relationship`` (``SENTENCE_HEAD``),
whose gradients stay 0; inference (``predict``) always runs them.

Every layer function comes from one of two modules with the same functions: ``bert.core.layers``,
each body its formula (``layers="reference"``, the one to read and step through), or
``bert.core.kernels``, the same written for speed (``layers="fast"``, the default). Their results
are equal to round-off, not to the bit.

Shape letters: ``B`` batch, ``T`` sequence, ``H`` hidden, ``F`` intermediate, ``V`` vocabulary,
``M`` positions scored by the MLM head.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import NamedTuple

import numpy as np

from bert.core import kernels, layers
from bert.core.config import WORD_EMBEDDINGS, BertConfig, layer_prefix
from bert.core.flat import FlatParams
from bert.core.labels import IGNORE_INDEX
from bert.core.layers import (
    AttentionCache,
    CrossEntropyCache,
    DropoutCache,
    EmbeddingCache,
    LayerNormCache,
    LinearCache,
    attention_mask_bias,
)
from bert.core.parameters import qkv, qkv_names
from bert.errors import ConfigError

Params = FlatParams  # the parameters (or their gradients): name -> view of one flat buffer

# The pooler and the sentence classifier: the parameters only a sentence loss (NSP or SOP) trains.
SENTENCE_HEAD = ("bert.pooler.dense", "cls.seq_relationship")

# The two implementations of the layers: the same functions, the fast one written for speed.
LAYERS: dict[str, ModuleType] = {"fast": kernels, "reference": layers}


def in_sentence_head(name: str) -> bool:
    """Whether parameter ``name`` belongs to the sentence head (``SENTENCE_HEAD``)."""
    return name.rpartition(".")[0] in SENTENCE_HEAD


def layer_functions(name: str) -> ModuleType:
    """The module of layer functions called ``name`` ("fast" or "reference")."""
    try:
        return LAYERS[name]
    except KeyError:
        raise ConfigError(f"layers {name!r}: choose one of {', '.join(LAYERS)}") from None


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
    nsp_head: NspHeadCache | None  # None without sentence labels: the head did not run
    nsp_loss: CrossEntropyCache | None
    mlm_weight: float
    nsp_weight: float
    impl: ModuleType  # the layer functions the forward pass ran on; backward runs on them too


# --- forward -----------------------------------------------------------------------------------


def _linear(impl, params: Params, name: str, x: np.ndarray) -> tuple[np.ndarray, LinearCache]:
    return impl.linear_forward(x, params[f"{name}.weight"], params[f"{name}.bias"])


def _layernorm(
    impl, params: Params, name: str, x: np.ndarray, eps: float
) -> tuple[np.ndarray, LayerNormCache]:
    return impl.layernorm_forward(x, params[f"{name}.LayerNorm.weight"],
                                  params[f"{name}.LayerNorm.bias"], eps)


def _embeddings_forward(impl, params, config, input_ids, token_type_ids, rng):
    """input_ids, token_type_ids (B, T) -> (B, T, H): word + token type + position, LN, dropout."""
    T = input_ids.shape[1]
    word, c_word = impl.embedding_forward(input_ids, params[WORD_EMBEDDINGS])
    types, c_types = impl.embedding_forward(
        token_type_ids, params["bert.embeddings.token_type_embeddings.weight"])
    summed = word  # a fresh array from the lookup, summed into in place
    summed += types
    summed += params["bert.embeddings.position_embeddings.weight"][:T]
    x, c_ln = _layernorm(impl, params, "bert.embeddings", summed, config.layer_norm_eps)
    x, c_drop = impl.dropout_forward(x, config.hidden_dropout_prob, rng)
    return x, EmbeddingsCache(c_word, c_types, T, c_ln, c_drop)


def _encoder_layer_forward(impl, params, config, prefix, x, mask_bias, rng):
    """One post-LayerNorm encoder layer: x (B, T, H) -> (B, T, H)."""
    eps, p_hidden = config.layer_norm_eps, config.hidden_dropout_prob
    qkv_weight, qkv_bias = qkv(params, prefix)  # (3H, H), (3H,)
    context, c_attn = impl.self_attention_forward(
        x, qkv_weight, qkv_bias, mask_bias, config.num_attention_heads,
        config.attention_probs_dropout_prob, rng)
    a, c_attn_out = _linear(impl, params, f"{prefix}.attention.output.dense", context)
    a, c_attn_drop = impl.dropout_forward(a, p_hidden, rng)
    a += x  # residual
    h, c_ln1 = _layernorm(impl, params, f"{prefix}.attention.output", a, eps)
    f, c_up = _linear(impl, params, f"{prefix}.intermediate.dense", h)  # (B, T, F)
    g, c_gelu = impl.gelu_forward(f)
    o, c_down = _linear(impl, params, f"{prefix}.output.dense", g)  # (B, T, H)
    o, c_ffn_drop = impl.dropout_forward(o, p_hidden, rng)
    o += h  # residual
    out, c_ln2 = _layernorm(impl, params, f"{prefix}.output", o, eps)
    return out, EncoderLayerCache(c_attn, c_attn_out, c_attn_drop, c_ln1, c_up, c_gelu, c_down,
                                  c_ffn_drop, c_ln2)


def _mlm_head_forward(impl, params, config, hidden):
    """hidden (M, H) at the scored positions -> logits (M, V) with the tied decoder."""
    t, c_dense = _linear(impl, params, "cls.predictions.transform.dense", hidden)
    t, c_gelu = impl.gelu_forward(t)
    t, c_ln = _layernorm(impl, params, "cls.predictions.transform", t, config.layer_norm_eps)
    logits, c_decoder = impl.linear_forward(t, params[WORD_EMBEDDINGS],
                                            params["cls.predictions.bias"])
    return logits, MlmHeadCache(c_dense, c_gelu, c_ln, c_decoder)


def _nsp_head_forward(impl, params, hidden):
    """hidden (B, T, H) -> NSP logits (B, 2) from the pooled [CLS] vector."""
    cls = np.ascontiguousarray(hidden[:, 0])  # (B, H): the cache keeps this, not all of hidden
    pooled, c_pool = _linear(impl, params, "bert.pooler.dense", cls)
    pooled, c_tanh = impl.tanh_forward(pooled)
    logits, c_cls = _linear(impl, params, "cls.seq_relationship", pooled)
    return logits, NspHeadCache(c_pool, c_tanh, c_cls)


def encode(
    params: Params,
    config: BertConfig,
    input_ids: np.ndarray,
    token_type_ids: np.ndarray,
    attention_mask: np.ndarray,
    rng: np.random.Generator | None = None,
    layers: str = "fast",
) -> tuple[list[np.ndarray], EncoderCache]:
    """The encoder: ids (B, T) -> hidden states, a list of L + 1 arrays (B, T, H).

    Entry 0 is the embeddings' output, entry i the output of layer i, as transformers'
    ``hidden_states``. Dropout is applied when ``rng`` is given (training). ``layers``: the
    layer functions to run on, "fast" (``bert.core.kernels``) or "reference"
    (``bert.core.layers``).
    """
    impl = layer_functions(layers)
    B, T = input_ids.shape
    if T > config.max_position_embeddings:
        raise ConfigError(f"sequence length {T} exceeds max_position_embeddings "
                          f"{config.max_position_embeddings}")
    dtype = params[WORD_EMBEDDINGS].dtype
    mask_bias = attention_mask_bias(attention_mask, dtype)  # (B, 1, 1, T)
    x, c_embed = _embeddings_forward(impl, params, config, input_ids, token_type_ids, rng)
    hidden_states, c_layers = [x], []
    for i in range(config.num_hidden_layers):
        x, c_layer = _encoder_layer_forward(impl, params, config, layer_prefix(i), x, mask_bias,
                                            rng)
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
    layers: str = "fast",
) -> tuple[dict[str, float], ForwardCache]:
    """Losses of one batch and the cache ``backward`` needs.

    batch: ``input_ids, token_type_ids, attention_mask, mlm_labels`` (B, T) and
    ``nsp_labels`` (B,), the sentence task's labels (NSP or SOP: both train the head
    ``cls.seq_relationship``). MLM loss: mean cross-entropy over the M labelled positions of the
    batch; NSP loss: mean over the batch; total = mlm_weight * MLM + nsp_weight * NSP. Without
    ``nsp_labels`` in the batch there is no sentence loss: the pooler and the sentence head do
    not run, the NSP loss is 0 and total = mlm_weight * MLM.
    normalizers: (labelled positions, examples) of a larger batch of which this batch is one
    micro-batch; the losses are then summed over this batch and divided by those counts, so
    that the micro-batches' losses and gradients add up to the larger batch's. ``layers``: as
    for ``encode``.
    """
    impl = layer_functions(layers)
    mlm_count, nsp_count = normalizers or (None, None)
    hidden_states, c_encoder = encode(params, config, batch["input_ids"],
                                      batch["token_type_ids"], batch["attention_mask"], rng,
                                      layers)
    hidden = hidden_states[-1]  # (B, T, H)
    B, T, H = hidden.shape
    flat_labels = np.asarray(batch["mlm_labels"]).reshape(-1)
    scored = np.flatnonzero(flat_labels != IGNORE_INDEX)  # (M,) flat positions
    mlm_logits, c_mlm = _mlm_head_forward(impl, params, config,
                                          hidden.reshape(B * T, H)[scored])
    mlm_loss, c_mlm_loss = impl.cross_entropy_forward(mlm_logits, flat_labels[scored],
                                                      normalizer=mlm_count)
    if "nsp_labels" in batch:
        nsp_logits, c_nsp = _nsp_head_forward(impl, params, hidden)
        nsp_loss, c_nsp_loss = impl.cross_entropy_forward(
            nsp_logits, np.asarray(batch["nsp_labels"]), normalizer=nsp_count)
        total = mlm_weight * mlm_loss + nsp_weight * nsp_loss
    else:  # no sentence task: no pooler, no sentence loss
        c_nsp = c_nsp_loss = None
        nsp_loss, total = 0.0, mlm_weight * mlm_loss
    losses = {"mlm": mlm_loss, "nsp": nsp_loss, "total": total}
    cache = ForwardCache(c_encoder, (B, T, H), scored, c_mlm, c_mlm_loss, c_nsp, c_nsp_loss,
                         mlm_weight, nsp_weight, impl)
    return losses, cache


# --- backward ----------------------------------------------------------------------------------


def _accumulate(
    grads: Params, name: str, dparam: np.ndarray, rows: slice = slice(None)
) -> None:
    """Add one gradient contribution to ``grads[name]`` (to its ``rows``): the one place where
    a gradient is written."""
    grads[name][rows] += dparam


def _linear_backward(impl, grads: Params, name: str, dout: np.ndarray,
                     cache: LinearCache) -> np.ndarray:
    dx, dweight, dbias = impl.linear_backward(dout, cache)
    _accumulate(grads, f"{name}.weight", dweight)
    _accumulate(grads, f"{name}.bias", dbias)
    return dx


def _layernorm_backward(
    impl, grads: Params, name: str, dout: np.ndarray, cache: LayerNormCache
) -> np.ndarray:
    dx, dweight, dbias = impl.layernorm_backward(dout, cache)
    _accumulate(grads, f"{name}.LayerNorm.weight", dweight)
    _accumulate(grads, f"{name}.LayerNorm.bias", dbias)
    return dx


def _nsp_head_backward(impl, grads, dlogits, cache: NspHeadCache, hidden_shape, dtype):
    """dlogits (B, 2) -> dhidden (B, T, H), nonzero only at [CLS]."""
    dpooled = _linear_backward(impl, grads, "cls.seq_relationship", dlogits, cache.classifier)
    dpooled = impl.tanh_backward(dpooled, cache.pooled)
    dcls = _linear_backward(impl, grads, "bert.pooler.dense", dpooled, cache.pooler)
    dhidden = np.zeros(hidden_shape, dtype=dtype)
    dhidden[:, 0] = dcls
    return dhidden


def _mlm_head_backward(impl, grads, dlogits, cache: MlmHeadCache):
    """dlogits (M, V) -> dhidden (M, H); the decoder's weight gradient goes to the word
    embeddings, which the lookup adds to as well."""
    dt, dword, dbias = impl.linear_backward(dlogits, cache.decoder)
    _accumulate(grads, WORD_EMBEDDINGS, dword)
    _accumulate(grads, "cls.predictions.bias", dbias)
    dt = _layernorm_backward(impl, grads, "cls.predictions.transform", dt, cache.ln)
    dt = impl.gelu_backward(dt, cache.gelu, out=dt)
    return _linear_backward(impl, grads, "cls.predictions.transform.dense", dt, cache.dense)


def _encoder_layer_backward(impl, grads, prefix, dout, cache: EncoderLayerCache):
    """dout (B, T, H) -> dx (B, T, H): the encoder layer read backwards."""
    dsum2 = _layernorm_backward(impl, grads, f"{prefix}.output", dout, cache.ln2)  # d(o + h)
    do = impl.dropout_backward(dsum2, cache.output_dropout)
    dg = _linear_backward(impl, grads, f"{prefix}.output.dense", do, cache.output)
    df = impl.gelu_backward(dg, cache.gelu, out=dg)  # dg is not needed after
    dh = _linear_backward(impl, grads, f"{prefix}.intermediate.dense", df, cache.intermediate)
    dh += dsum2
    dsum1 = _layernorm_backward(impl, grads, f"{prefix}.attention.output", dh,
                                cache.ln1)  # d(a + x)
    da = impl.dropout_backward(dsum1, cache.attention_dropout)
    dcontext = _linear_backward(impl, grads, f"{prefix}.attention.output.dense", da,
                                cache.attention_output)
    dx, dqkv_weight, dqkv_bias = impl.self_attention_backward(dcontext, cache.attention)
    for j, (weight, bias) in enumerate(zip(qkv_names(prefix, "weight"), qkv_names(prefix, "bias"),
                                           strict=True)):
        rows = slice(j * len(dqkv_bias) // 3, (j + 1) * len(dqkv_bias) // 3)
        _accumulate(grads, weight, dqkv_weight[rows])
        _accumulate(grads, bias, dqkv_bias[rows])
    dx += dsum1
    return dx


def _embeddings_backward(impl, grads, config, dx, cache: EmbeddingsCache):
    """dx (B, T, H) -> gradients of the three embedding tables and their LayerNorm."""
    dsummed = _layernorm_backward(impl, grads, "bert.embeddings",
                                  impl.dropout_backward(dx, cache.dropout), cache.ln)
    _accumulate(grads, WORD_EMBEDDINGS,
                impl.embedding_backward(dsummed, cache.word, config.pad_token_id))
    _accumulate(grads, "bert.embeddings.token_type_embeddings.weight",
                impl.embedding_backward(dsummed, cache.token_type))
    _accumulate(grads, "bert.embeddings.position_embeddings.weight", dsummed.sum(axis=0),
                rows=slice(0, cache.length))


def backward(params: Params, config: BertConfig, cache: ForwardCache) -> Params:
    """Gradients of the total loss for every parameter: ``forward`` read backwards, on the
    layer functions the forward pass ran on.

    The gradients start at zero, in the parameters' flat layout, and every contribution is
    added to them, so the tied word embeddings get the sum of the decoder's and the lookup's
    parts in any order. Each encoder layer's cache is released (set to None in
    ``cache.encoder.layers``) once its backward is done, as autograd frees saved tensors, so
    that memory falls as the pass goes down.
    """
    impl = cache.impl
    dtype = params[WORD_EMBEDDINGS].dtype
    B, T, H = cache.hidden_shape
    grads = params.zeros_like()
    if cache.nsp_head is None:  # no sentence loss: the sentence head's gradients stay 0
        dhidden = np.zeros(cache.hidden_shape, dtype=dtype)
    else:
        dnsp_logits = impl.cross_entropy_backward(cache.nsp_weight, cache.nsp_loss)
        dhidden = _nsp_head_backward(impl, grads, dnsp_logits, cache.nsp_head,
                                     cache.hidden_shape, dtype)
    dhidden.reshape(B * T, H)[cache.scored] += _mlm_head_backward(
        impl, grads, impl.cross_entropy_backward(cache.mlm_weight, cache.mlm_loss),
        cache.mlm_head)
    dx = dhidden
    layers = cache.encoder.layers
    for i in reversed(range(config.num_hidden_layers)):
        dx = _encoder_layer_backward(impl, grads, layer_prefix(i), dx, layers[i])
        layers[i] = None
    _embeddings_backward(impl, grads, config, dx, cache.encoder.embeddings)
    return grads


# --- inference ---------------------------------------------------------------------------------


def predict(
    params: Params,
    config: BertConfig,
    input_ids: np.ndarray,
    token_type_ids: np.ndarray,
    attention_mask: np.ndarray,
    mlm_positions: np.ndarray | None = None,
    layers: str = "fast",
) -> dict[str, np.ndarray]:
    """Inference (no dropout): MLM logits and NSP logits.

    mlm_positions: a boolean (B, T) array choosing where the MLM head runs; the returned
    ``mlm_logits`` are then (M, V) in row-major order of the chosen positions. With ``None``
    it runs everywhere and ``mlm_logits`` is (B, T, V). ``nsp_logits`` is (B, 2),
    ``pooled`` the pooler's output (B, H), ``hidden_states`` the L + 1 encoder outputs (B, T, H),
    ``attentions`` the L attention probabilities (B, NH, T, T). ``layers``: as for ``encode``.
    """
    impl = layer_functions(layers)
    hidden_states, encoder = encode(params, config, input_ids, token_type_ids, attention_mask,
                                    layers=layers)
    hidden = hidden_states[-1]
    B, T, H = hidden.shape
    if mlm_positions is None:
        mlm_logits = _mlm_head_forward(impl, params, config, hidden.reshape(B * T, H))[0]
        mlm_logits = mlm_logits.reshape(B, T, -1)
    else:
        mlm_logits = _mlm_head_forward(impl, params, config,
                                       hidden[np.asarray(mlm_positions, bool)])[0]
    nsp_logits, nsp_head = _nsp_head_forward(impl, params, hidden)
    attentions = [layer.attention.probs for layer in encoder.layers]
    return {"mlm_logits": mlm_logits, "nsp_logits": nsp_logits, "pooled": nsp_head.pooled,
            "hidden_states": hidden_states, "attentions": attentions}
