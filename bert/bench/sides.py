"""The two sides every comparison times, on the same batch: our training step, and transformers'
``BertForPreTraining`` in a plain PyTorch training loop.

- ours: ``bert.core.step.training_step``, the step the train stage runs: forward, backward,
  global-norm clipping to 1.0 and one AdamW step, its dropout drawn, as in training, from one
  stream per micro-batch; the batch cut into ``micro_batches``, which run on the compute threads
  when there are several;
- torch: forward with labels, ``backward``, ``clip_grad_norm_`` to 1.0 and ``torch.optim.AdamW``
  (torch's default implementation on CPU) over the two parameter groups of our AdamW (weight
  decay by ``bert.core.parameters.is_decayed``), gradients set to None.

Each side comes as a ``Side``: its whole step, its forward pass and its forward and backward
passes alone, as functions of nothing; ours also its update alone and its parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bert.bench.batches import make_batch
from bert.bench.sizes import DROPOUT, Size, make_config
from bert.core.labels import IGNORE_INDEX

# Nothing that imports NumPy or torch at module level: a worker fixes its thread count first.

LR = 1e-4  # the learning rate of every benchmark step
MAX_GRAD_NORM = 1.0


@dataclass(frozen=True)
class Side:
    """One model's work on the benchmark batch."""

    step: Callable[[], None]  # a whole training step
    forward: Callable[[], None]  # the forward pass with the losses (torch: under no_grad)
    fwd_bwd: Callable[[], None]  # the forward and backward passes, no update
    update: Callable[[], None] | None = None  # ours: clipping and AdamW alone, on a made-up
    # gradient (what every rank repeats on the whole model after the reduction)
    params: object = None  # ours: the parameters (``bert.core.flat.FlatParams``)

    def works(self, *names: str) -> dict[str, Callable[[], None]]:
        """The named works, for ``bert.bench.clock.alternate`` (the step first)."""
        return {name: getattr(self, name) for name in names}


def ours(size: Size, micro_batches: int = 1, dropout: float = DROPOUT,
         reduction=None) -> Side:
    """Our model on the benchmark batch of ``size``; with a ``reduction``
    (``bert.core.step.Reduction``), a rank's share of the micro-batches."""
    import numpy as np

    from bert.core.model import forward
    from bert.core.optim import AdamWConfig, adamw_step, clip_grad_norm, init_state
    from bert.core.parameters import init_params, is_decayed
    from bert.core.step import batch_gradients, training_step

    config = make_config(size, dropout)
    params = init_params(config, np.random.default_rng(0))
    batch, state, adamw = make_batch(size), init_state(params), AdamWConfig()
    forward_rng = np.random.default_rng(1)

    def streams(index: int) -> np.random.Generator:  # one per micro-batch, as in training
        return np.random.default_rng([0, index])

    def step() -> None:
        training_step(params, config, batch, state, lr=LR, adamw=adamw,
                      max_grad_norm=MAX_GRAD_NORM, rng=streams, micro_batches=micro_batches,
                      reduction=reduction)

    def forward_pass() -> None:
        forward(params, config, batch, forward_rng)

    def fwd_bwd() -> None:
        batch_gradients(params, config, batch, rng=streams, micro_batches=micro_batches,
                        reduction=reduction)

    grads = params.zeros_like()
    grads.flat[:] = 1e-3

    def update() -> None:
        clip_grad_norm(grads, MAX_GRAD_NORM)
        adamw_step(params, grads, state, LR, adamw, is_decayed)

    return Side(step, forward_pass, fwd_bwd, update, params)


def torch_model(config, threads: int):
    """transformers' BertForPreTraining of our ``config`` (a ``bert.core.config.BertConfig``),
    in training mode, with ``threads`` torch threads."""
    import torch
    from transformers import BertConfig as HFConfig
    from transformers import BertForPreTraining as HFBert

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    return HFBert(HFConfig(**config.to_hf())).train()


def torch_adamw(model, lr: float):
    """``torch.optim.AdamW`` (torch's default implementation on CPU) over the two groups our
    AdamW uses: its weight decay on the parameters ``is_decayed`` names, none on the others."""
    import torch

    from bert.core.optim import AdamWConfig
    from bert.core.parameters import is_decayed

    adamw, named = AdamWConfig(), list(model.named_parameters())
    decay = [p for n, p in named if is_decayed(n)]
    no_decay = [p for n, p in named if not is_decayed(n)]
    return torch.optim.AdamW([{"params": decay, "weight_decay": adamw.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr,
                             betas=(adamw.beta1, adamw.beta2), eps=adamw.eps)


def torch_inputs(batch: dict) -> dict:
    """transformers' keyword arguments for one of our batches (NumPy arrays, as int64)."""
    import torch

    def tensor(name):
        return torch.from_numpy(batch[name].astype("int64", copy=False))

    sentence = {"next_sentence_label": tensor("nsp_labels")} if "nsp_labels" in batch else {}
    return {"input_ids": tensor("input_ids"), "token_type_ids": tensor("token_type_ids"),
            "attention_mask": tensor("attention_mask"), "labels": tensor("mlm_labels"),
            **sentence}


def torch_loss(model, inputs: dict):
    """transformers' pretraining loss of ``inputs``; without sentence labels (no sentence
    task), for which transformers computes none, the MLM loss alone."""
    import torch

    out = model(**inputs)
    if out.loss is not None:
        return out.loss
    logits = out.prediction_logits
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                             inputs["labels"].reshape(-1),
                                             ignore_index=IGNORE_INDEX)


def torch_step(model, optimizer, inputs: dict) -> None:
    """One step of a plain PyTorch training loop: forward with labels, ``backward``,
    ``clip_grad_norm_`` to 1.0, ``optimizer.step``, gradients set to None."""
    import torch

    torch_loss(model, inputs).backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def theirs(size: Size, threads: int, dropout: float = DROPOUT) -> Side:
    """transformers' BertForPreTraining on the same batch, on ``threads`` torch threads."""
    import torch

    model = torch_model(make_config(size, dropout), threads)
    optimizer = torch_adamw(model, lr=LR)
    inputs = torch_inputs(make_batch(size))

    def step() -> None:
        torch_step(model, optimizer, inputs)

    def forward_pass() -> None:
        with torch.no_grad():
            model(**inputs)

    def fwd_bwd() -> None:
        torch_loss(model, inputs).backward()
        model.zero_grad(set_to_none=True)

    return Side(step, forward_pass, fwd_bwd)
