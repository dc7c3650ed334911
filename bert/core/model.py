"""BERT for pretraining (transformers' ``BertForPreTraining``): a dict of arrays, two functions.

The parameters are a dict ``name -> ndarray`` with transformers' state-dict names and shapes
(a Linear weight is ``(out, in)``). The MLM decoder is tied to the word embeddings: it *is*
``bert.embeddings.word_embeddings.weight``, so its two gradient contributions (lookup and
decoder) add up in one array; its bias is ``cls.predictions.bias``.

``forward`` runs embeddings -> post-LayerNorm encoder layers -> pooler and both heads and keeps
a cache; ``backward`` is ``forward`` read backwards, call for call. The MLM head runs only at the
M positions that carry a label (the decoder over all positions would be most of the FLOPs).

Shape letters: ``B`` batch, ``T`` sequence, ``H`` hidden, ``F`` intermediate, ``V`` vocabulary,
``M`` positions scored by the MLM head.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from bert.core.config import BertConfig
from bert.core.layers import (
    IGNORE_INDEX,
    attention_mask_bias,
    attention_probabilities,
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

WORD_EMBEDDINGS = "bert.embeddings.word_embeddings.weight"
BATCH_KEYS = ("input_ids", "token_type_ids", "attention_mask", "mlm_labels", "nsp_labels")

Params = dict[str, np.ndarray]


def layer_prefix(index: int) -> str:
    """The name prefix of encoder layer ``index``."""
    return f"bert.encoder.layer.{index}"


def param_shapes(config: BertConfig) -> dict[str, tuple[int, ...]]:
    """Each parameter's name and shape, in transformers' state-dict order (no tied aliases)."""
    V, H, F = config.vocab_size, config.hidden_size, config.intermediate_size

    def linear(name: str, n_out: int, n_in: int) -> dict[str, tuple[int, ...]]:
        return {f"{name}.weight": (n_out, n_in), f"{name}.bias": (n_out,)}

    def layernorm(name: str) -> dict[str, tuple[int, ...]]:
        return {f"{name}.LayerNorm.weight": (H,), f"{name}.LayerNorm.bias": (H,)}

    shapes = {
        WORD_EMBEDDINGS: (V, H),
        "bert.embeddings.position_embeddings.weight": (config.max_position_embeddings, H),
        "bert.embeddings.token_type_embeddings.weight": (config.type_vocab_size, H),
        **layernorm("bert.embeddings"),
    }
    for i in range(config.num_hidden_layers):
        prefix = layer_prefix(i)
        for projection in ("query", "key", "value"):
            shapes |= linear(f"{prefix}.attention.self.{projection}", H, H)
        shapes |= linear(f"{prefix}.attention.output.dense", H, H)
        shapes |= layernorm(f"{prefix}.attention.output")
        shapes |= linear(f"{prefix}.intermediate.dense", F, H)
        shapes |= linear(f"{prefix}.output.dense", H, F)
        shapes |= layernorm(f"{prefix}.output")
    shapes |= linear("bert.pooler.dense", H, H)
    shapes["cls.predictions.bias"] = (V,)
    shapes |= linear("cls.predictions.transform.dense", H, H)
    shapes |= layernorm("cls.predictions.transform")
    shapes |= linear("cls.seq_relationship", 2, H)
    return shapes


def is_decayed(name: str) -> bool:
    """Whether weight decay applies: every parameter except biases and LayerNorm parameters."""
    return not (name.endswith("bias") or "LayerNorm" in name)


def init_params(
    config: BertConfig, rng: np.random.Generator, dtype: np.dtype = np.float32
) -> Params:
    """Initialize as transformers does.

    Matrices and embeddings ~ normal(0, initializer_range), biases 0, LayerNorm weight 1 and
    bias 0, the [PAD] row of the word embeddings 0. Draws are made in float64 in state-dict
    order and then cast, so float32 and float64 models start from the same values.
    """
    params: Params = {}
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


# --- forward -----------------------------------------------------------------------------------


def _linear(params: Params, name: str, x: np.ndarray) -> tuple[np.ndarray, tuple]:
    return linear_forward(x, params[f"{name}.weight"], params[f"{name}.bias"])


def _layernorm(params: Params, name: str, x: np.ndarray, eps: float) -> tuple[np.ndarray, tuple]:
    return layernorm_forward(x, params[f"{name}.LayerNorm.weight"],
                             params[f"{name}.LayerNorm.bias"], eps)


def _qkv(params: Params, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """The query, key and value projections stacked: weight (3H, H), bias (3H,)."""
    names = [f"{prefix}.attention.self.{p}" for p in ("query", "key", "value")]
    return (np.concatenate([params[f"{n}.weight"] for n in names]),
            np.concatenate([params[f"{n}.bias"] for n in names]))


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
    return x, (c_word, c_types, T, c_ln, c_drop)


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
    return out, (c_attn, c_attn_out, c_attn_drop, c_ln1, c_up, c_gelu, c_down, c_ffn_drop, c_ln2)


def _mlm_head_forward(params, config, hidden):
    """hidden (M, H) at the scored positions -> logits (M, V) with the tied decoder."""
    t, c_dense = _linear(params, "cls.predictions.transform.dense", hidden)
    t, c_gelu = gelu_forward(t)
    t, c_ln = _layernorm(params, "cls.predictions.transform", t, config.layer_norm_eps)
    logits, c_decoder = linear_forward(t, params[WORD_EMBEDDINGS], params["cls.predictions.bias"])
    return logits, (c_dense, c_gelu, c_ln, c_decoder)


def _nsp_head_forward(params, hidden):
    """hidden (B, T, H) -> NSP logits (B, 2) from the pooled [CLS] vector."""
    pooled, c_pool = _linear(params, "bert.pooler.dense", hidden[:, 0])
    pooled, c_tanh = tanh_forward(pooled)
    logits, c_cls = _linear(params, "cls.seq_relationship", pooled)
    return logits, (c_pool, c_tanh, c_cls)


def encode(
    params: Params,
    config: BertConfig,
    input_ids: np.ndarray,
    token_type_ids: np.ndarray,
    attention_mask: np.ndarray,
    rng: np.random.Generator | None = None,
) -> tuple[list[np.ndarray], tuple]:
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
    return hidden_states, (c_embed, c_layers)


def forward(
    params: Params,
    config: BertConfig,
    batch: Mapping[str, np.ndarray],
    rng: np.random.Generator | None = None,
    mlm_weight: float = 1.0,
    nsp_weight: float = 1.0,
    normalizers: tuple[int, int] | None = None,
) -> tuple[dict[str, float], tuple]:
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
    cache = (c_encoder, hidden.shape, scored, c_mlm, c_mlm_loss, c_nsp, c_nsp_loss,
             mlm_weight, nsp_weight)
    return losses, cache


# --- backward ----------------------------------------------------------------------------------


def _add_linear_grads(grads: Params, name: str, dweight: np.ndarray, dbias: np.ndarray) -> None:
    grads[f"{name}.weight"] = dweight
    grads[f"{name}.bias"] = dbias


def _add_layernorm_grads(grads: Params, name: str, dweight: np.ndarray, dbias: np.ndarray) -> None:
    grads[f"{name}.LayerNorm.weight"] = dweight
    grads[f"{name}.LayerNorm.bias"] = dbias


def _linear_backward(grads: Params, name: str, dout: np.ndarray, cache: tuple) -> np.ndarray:
    dx, dweight, dbias = linear_backward(dout, cache)
    _add_linear_grads(grads, name, dweight, dbias)
    return dx


def _layernorm_backward(grads: Params, name: str, dout: np.ndarray, cache: tuple) -> np.ndarray:
    dx, dweight, dbias = layernorm_backward(dout, cache)
    _add_layernorm_grads(grads, name, dweight, dbias)
    return dx


def _nsp_head_backward(grads, dlogits, cache, hidden_shape, dtype):
    """dlogits (B, 2) -> dhidden (B, T, H), nonzero only at [CLS]."""
    c_pool, c_tanh, c_cls = cache
    dpooled = _linear_backward(grads, "cls.seq_relationship", dlogits, c_cls)
    dpooled = tanh_backward(dpooled, c_tanh)
    dcls = _linear_backward(grads, "bert.pooler.dense", dpooled, c_pool)
    dhidden = np.zeros(hidden_shape, dtype=dtype)
    dhidden[:, 0] = dcls
    return dhidden


def _mlm_head_backward(grads, dlogits, cache):
    """dlogits (M, V) -> dhidden (M, H); the decoder gradient lands on the word embeddings."""
    c_dense, c_gelu, c_ln, c_decoder = cache
    dt, dword, dbias = linear_backward(dlogits, c_decoder)
    grads[WORD_EMBEDDINGS] = dword  # the lookup's gradient is added to it later
    grads["cls.predictions.bias"] = dbias
    dt = _layernorm_backward(grads, "cls.predictions.transform", dt, c_ln)
    dt = gelu_backward(dt, c_gelu)
    return _linear_backward(grads, "cls.predictions.transform.dense", dt, c_dense)


def _encoder_layer_backward(grads, prefix, dout, cache):
    """dout (B, T, H) -> dx (B, T, H): the encoder layer read backwards."""
    c_attn, c_attn_out, c_attn_drop, c_ln1, c_up, c_gelu, c_down, c_ffn_drop, c_ln2 = cache
    dsum2 = _layernorm_backward(grads, f"{prefix}.output", dout, c_ln2)  # d(o + h)
    do = dropout_backward(dsum2, c_ffn_drop)
    dg = _linear_backward(grads, f"{prefix}.output.dense", do, c_down)
    df = gelu_backward(dg, c_gelu)
    dh = _linear_backward(grads, f"{prefix}.intermediate.dense", df, c_up)
    dh += dsum2
    dsum1 = _layernorm_backward(grads, f"{prefix}.attention.output", dh, c_ln1)  # d(a + x)
    da = dropout_backward(dsum1, c_attn_drop)
    dcontext = _linear_backward(grads, f"{prefix}.attention.output.dense", da, c_attn_out)
    dx, dqkv_weight, dqkv_bias = self_attention_backward(dcontext, c_attn)
    for j, projection in enumerate(("query", "key", "value")):
        rows = slice(j * len(dqkv_bias) // 3, (j + 1) * len(dqkv_bias) // 3)
        _add_linear_grads(grads, f"{prefix}.attention.self.{projection}",
                          dqkv_weight[rows], dqkv_bias[rows])
    dx += dsum1
    return dx


def _embeddings_backward(grads, config, dx, cache):
    """dx (B, T, H) -> gradients of the three embedding tables and their LayerNorm."""
    c_word, c_types, T, c_ln, c_drop = cache
    dsummed = _layernorm_backward(grads, "bert.embeddings", dropout_backward(dx, c_drop), c_ln)
    grads[WORD_EMBEDDINGS] += embedding_backward(dsummed, c_word, config.pad_token_id)
    grads["bert.embeddings.token_type_embeddings.weight"] = embedding_backward(dsummed, c_types)
    dposition = np.zeros((config.max_position_embeddings, dx.shape[-1]), dtype=dx.dtype)
    dposition[:T] = dsummed.sum(axis=0)
    grads["bert.embeddings.position_embeddings.weight"] = dposition


def backward(params: Params, config: BertConfig, cache: tuple) -> Params:
    """Gradients of the total loss for every parameter: ``forward`` read backwards."""
    (c_encoder, hidden_shape, scored, c_mlm, c_mlm_loss, c_nsp, c_nsp_loss,
     mlm_weight, nsp_weight) = cache
    c_embed, c_layers = c_encoder
    dtype = params[WORD_EMBEDDINGS].dtype
    B, T, H = hidden_shape
    grads: Params = {}
    dnsp_logits = cross_entropy_backward(nsp_weight, c_nsp_loss)
    dhidden = _nsp_head_backward(grads, dnsp_logits, c_nsp, hidden_shape, dtype)
    dmlm_logits = cross_entropy_backward(mlm_weight, c_mlm_loss)
    dhidden.reshape(B * T, H)[scored] += _mlm_head_backward(grads, dmlm_logits, c_mlm)
    dx = dhidden
    for i in reversed(range(config.num_hidden_layers)):
        dx = _encoder_layer_backward(grads, layer_prefix(i), dx, c_layers[i])
    _embeddings_backward(grads, config, dx, c_embed)
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
    hidden_states, (_, layer_caches) = encode(params, config, input_ids, token_type_ids,
                                              attention_mask)
    hidden = hidden_states[-1]
    B, T, H = hidden.shape
    if mlm_positions is None:
        mlm_logits = _mlm_head_forward(params, config, hidden.reshape(B * T, H))[0]
        mlm_logits = mlm_logits.reshape(B, T, -1)
    else:
        mlm_logits = _mlm_head_forward(params, config, hidden[np.asarray(mlm_positions, bool)])[0]
    nsp_logits, (_, pooled, _) = _nsp_head_forward(params, hidden)
    attentions = [attention_probabilities(c_layer[0]) for c_layer in layer_caches]
    return {"mlm_logits": mlm_logits, "nsp_logits": nsp_logits, "pooled": pooled,
            "hidden_states": hidden_states, "attentions": attentions}


class BertForPreTraining:
    """BERT with its MLM and NSP heads; ``params`` is a dict with transformers' names and shapes.

    ``BertForPreTraining(config, seed=0, dtype=np.float32)`` initializes as transformers does,
    drawing from ``seed``. Dropout (when the config asks for it) draws from ``self.rng``, a
    generator seeded from the same seed, unless another generator is passed.
    """

    def __init__(
        self,
        config: BertConfig,
        seed: int = 0,
        dtype: np.dtype = np.float32,
        params: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        self.config = config
        if params is None:
            self.params = init_params(config, np.random.default_rng(seed), dtype)
        else:
            check_params(config, params)
            self.params = {name: np.array(params[name], dtype=dtype)
                           for name in param_shapes(config)}
        self.rng = np.random.default_rng([seed, 1])

    @property
    def dtype(self) -> np.dtype:
        return self.params[WORD_EMBEDDINGS].dtype

    def loss_and_grads(
        self,
        batch: Mapping[str, np.ndarray],
        rng: np.random.Generator | None = None,
        mlm_weight: float = 1.0,
        nsp_weight: float = 1.0,
    ) -> tuple[dict[str, float], Params]:
        """Losses ``{"mlm", "nsp", "total"}`` of a batch and the gradient of ``total``.

        The gradients have the same keys and shapes as ``params``. With both dropout
        probabilities 0 the result is deterministic.
        """
        losses, cache = forward(self.params, self.config, batch, rng or self.rng,
                                mlm_weight, nsp_weight)
        return losses, backward(self.params, self.config, cache)

    def forward(
        self, batch: Mapping[str, np.ndarray], mlm_positions: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Inference logits; see ``predict``. ``batch`` needs the three input arrays (B, T)."""
        return predict(self.params, self.config, batch["input_ids"], batch["token_type_ids"],
                       batch["attention_mask"], mlm_positions)

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write a transformers directory (``config.json`` + ``model.safetensors``) that
        transformers' ``BertForPreTraining.from_pretrained`` loads; see ``bert.storage.interop``."""
        from bert.storage.interop import save_pretrained

        return save_pretrained(self, directory)
