"""transformers' BertForPreTraining as the reference: outputs, gradients and a few AdamW steps.

Importable only when torch and transformers are installed; tests guard it with
``pytest.importorskip``. Everything goes in and comes out as NumPy arrays keyed by transformers'
state-dict names, without the two tied aliases ``cls.predictions.decoder.weight`` (= the word
embeddings) and ``cls.predictions.decoder.bias`` (= ``cls.predictions.bias``).

Dropout never applies: the model runs in eval mode, which in BERT changes nothing else, and
autograd works as in train mode. Attention is transformers' eager implementation.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from transformers import BertConfig, BertForPreTraining, get_linear_schedule_with_warmup

TIED_ALIASES = ("cls.predictions.decoder.weight", "cls.predictions.decoder.bias")
BATCH_KEYS = ("input_ids", "token_type_ids", "attention_mask", "mlm_labels", "nsp_labels")


def build_model(hf_config: dict, dtype: torch.dtype = torch.float64) -> BertForPreTraining:
    """transformers' model with its own initialization (seed torch first), eager attention."""
    config = BertConfig(**{**hf_config, "attn_implementation": "eager"})
    return BertForPreTraining(config).to(dtype)


def hf_param_names(hf_config: dict) -> list[str]:
    """State-dict names of ``BertForPreTraining`` without the tied aliases, in state-dict order."""
    with torch.device("meta"):  # names and shapes only, no memory, no initialization cost
        model = BertForPreTraining(BertConfig(**hf_config))
    return [name for name in model.state_dict() if name not in TIED_ALIASES]


def params_from_transformers(
    hf_config: dict, seed: int, dtype: torch.dtype = torch.float64
) -> dict[str, np.ndarray]:
    """transformers' initialization after ``torch.manual_seed(seed)``, as NumPy arrays.

    The model is initialized in float32 (transformers' default) and then cast to ``dtype``.
    """
    torch.manual_seed(seed)
    model = build_model(hf_config, dtype)
    return {
        name: tensor.detach().numpy().copy()
        for name, tensor in model.state_dict().items()
        if name not in TIED_ALIASES
    }


def load_params(model: BertForPreTraining, params: dict[str, np.ndarray]) -> None:
    """Copy ``params`` into ``model``: every name present, no unknown name, shapes equal.

    The tied aliases must not be given; they follow the tensors they are tied to, which is
    checked after loading.
    """
    dtype = model.bert.embeddings.word_embeddings.weight.dtype
    expected = [name for name in model.state_dict() if name not in TIED_ALIASES]
    missing = sorted(set(expected) - set(params))
    unexpected = sorted(set(params) - set(expected))
    if missing or unexpected:
        raise KeyError(
            f"params do not match BertForPreTraining: missing {missing}, "
            f"unexpected {unexpected} (tied aliases must be left out)"
        )
    state = {name: torch.from_numpy(np.array(params[name])).to(dtype) for name in expected}
    shapes = model.state_dict()
    for name, tensor in state.items():
        if tensor.shape != shapes[name].shape:
            raise ValueError(
                f"params[{name!r}] has shape {tuple(tensor.shape)}, "
                f"transformers expects {tuple(shapes[name].shape)}"
            )
    result = model.load_state_dict(state, strict=False)
    assert not result.unexpected_keys and set(result.missing_keys) <= set(TIED_ALIASES), result
    predictions = model.cls.predictions
    assert predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    assert predictions.decoder.bias is predictions.bias


def _to_numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy().copy()


def run_reference(
    hf_config: dict,
    params: dict[str, np.ndarray],
    batch: dict[str, np.ndarray],
    *,
    steps: int = 3,
    lr: float,
    weight_decay: float,
    betas: tuple[float, float],
    eps: float,
    max_grad_norm: float,
    warmup_steps: int,
    total_steps: int,
    dtype: torch.dtype = torch.float64,
) -> dict[str, np.ndarray]:
    """Run transformers' BertForPreTraining on ``batch``, then ``steps`` clipped AdamW steps.

    hf_config: transformers' BertConfig keys. params: name -> array, transformers' names and
    shapes without the tied aliases. batch: ``input_ids, token_type_ids, attention_mask,
    mlm_labels`` (B, T), -100 in ``mlm_labels`` where nothing is predicted, ``nsp_labels`` (B,).
    Without ``nsp_labels`` (no sentence task) the model gets ``next_sentence_label=None``: it
    still runs the pooler and the sentence head, but the loss is the MLM loss alone (transformers
    then returns no loss of its own), so those parameters get no gradient (None), and AdamW skips
    them: no moments, no weight decay. Their ``grads/`` and ``adam/`` entries are then zeros
    (what ours hold), and their ``final/`` entries their values in ``params``.

    Returns, as NumPy arrays in ``dtype``, computed from ``params``:
      ``mlm_logits`` (B, T, V), ``nsp_logits`` (B, 2), ``pooled`` (B, H),
      ``hidden_states/{i}`` (B, T, H) for i = 0 (embeddings) .. L (last layer),
      ``loss_mlm``, ``loss_nsp``, ``loss_total`` 0-d (means over labelled positions / over B),
      ``grads/<name>`` for every name of ``params`` (the word embeddings get lookup + decoder).
    Then from the same params, at each step k: zero the gradients, forward, backward of the total
    loss, clip to global norm ``max_grad_norm``, AdamW step at the scheduler's current lr (no weight
    decay on biases and LayerNorm parameters), scheduler step (linear warmup, then linear decay):
      ``steps/loss_total``, ``steps/loss_mlm``, ``steps/loss_nsp`` (before the update),
      ``steps/lr``, ``steps/grad_norm`` (norm before clipping), each (steps,);
      ``final/<name>``, ``adam/exp_avg/<name>``, ``adam/exp_avg_sq/<name>``, ``adam/step`` 0-d.
    """
    model = build_model(hf_config, dtype)
    load_params(model, params)
    model.eval()  # no dropout
    names = [name for name in model.state_dict() if name not in TIED_ALIASES]
    parameters = {name: model.get_parameter(name) for name in names}
    inputs = {key: torch.from_numpy(np.asarray(batch[key])).long() for key in BATCH_KEYS
              if key in batch}
    sentence = "nsp_labels" in inputs
    vocab_size = model.config.vocab_size

    pooled: list[torch.Tensor] = []  # the pooler output of every forward
    model.bert.pooler.register_forward_hook(lambda module, args, output: pooled.append(output))

    def forward() -> tuple[object, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Model outputs, MLM loss, NSP loss, and the model's own total, checked = MLM + NSP."""
        out = model(
            input_ids=inputs["input_ids"],
            token_type_ids=inputs["token_type_ids"],
            attention_mask=inputs["attention_mask"],
            labels=inputs["mlm_labels"],
            next_sentence_label=inputs.get("nsp_labels"),
            output_hidden_states=True,
        )
        loss_mlm = F.cross_entropy(
            out.prediction_logits.reshape(-1, vocab_size),
            inputs["mlm_labels"].reshape(-1),
            ignore_index=-100,
        )
        if not sentence:
            if out.loss is not None:
                raise RuntimeError("transformers returned a loss without next_sentence_label")
            return out, loss_mlm, torch.zeros_like(loss_mlm), loss_mlm
        loss_nsp = F.cross_entropy(
            out.seq_relationship_logits.reshape(-1, 2), inputs["nsp_labels"].reshape(-1)
        )
        if not torch.equal(loss_mlm + loss_nsp, out.loss):
            raise RuntimeError(
                f"transformers' loss {out.loss.item()!r} is not MLM + NSP "
                f"{(loss_mlm + loss_nsp).item()!r}"
            )
        return out, loss_mlm, loss_nsp, out.loss

    result: dict[str, np.ndarray] = {}
    out, loss_mlm, loss_nsp, loss_total = forward()
    loss_total.backward()
    result["mlm_logits"] = _to_numpy(out.prediction_logits)
    result["nsp_logits"] = _to_numpy(out.seq_relationship_logits)
    result["pooled"] = _to_numpy(pooled[-1])
    for i, hidden in enumerate(out.hidden_states):
        result[f"hidden_states/{i}"] = _to_numpy(hidden)
    result["loss_mlm"], result["loss_nsp"] = _to_numpy(loss_mlm), _to_numpy(loss_nsp)
    result["loss_total"] = _to_numpy(loss_total)
    for name, parameter in parameters.items():
        grad = parameter.grad if parameter.grad is not None else torch.zeros_like(parameter)
        result[f"grads/{name}"] = _to_numpy(grad)

    no_decay = [n for n in names if n.endswith("bias") or "LayerNorm" in n]
    decay = [n for n in names if n not in no_decay]
    groups = [
        {"params": [parameters[n] for n in decay], "weight_decay": weight_decay},
        {"params": [parameters[n] for n in no_decay], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, foreach=False)
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup_steps, total_steps)
    history: dict[str, list[float]] = {
        key: [] for key in ("loss_total", "loss_mlm", "loss_nsp", "lr", "grad_norm")
    }
    for _ in range(steps):
        optimizer.zero_grad()
        _, loss_mlm, loss_nsp, loss_total = forward()
        loss_total.backward()
        norm = torch.nn.utils.clip_grad_norm_(list(parameters.values()), max_grad_norm)
        history["lr"].append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
        history["loss_total"].append(loss_total.item())
        history["loss_mlm"].append(loss_mlm.item())
        history["loss_nsp"].append(loss_nsp.item())
        history["grad_norm"].append(norm.item())
    numpy_dtype = result["loss_total"].dtype
    for key, values in history.items():
        result[f"steps/{key}"] = np.array(values, dtype=numpy_dtype)
    for name, parameter in parameters.items():
        state = optimizer.state[parameter]  # empty for a parameter AdamW skipped every step
        zeros = torch.zeros_like(parameter)
        result[f"final/{name}"] = _to_numpy(parameter)
        result[f"adam/exp_avg/{name}"] = _to_numpy(state.get("exp_avg", zeros))
        result[f"adam/exp_avg_sq/{name}"] = _to_numpy(state.get("exp_avg_sq", zeros))
    result["adam/step"] = np.array(
        float(optimizer.state[parameters[names[0]]]["step"]), dtype=numpy_dtype
    )
    return result
