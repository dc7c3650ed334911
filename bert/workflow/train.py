"""The init and train stages: initial weights, then epochs of AdamW steps with exact resumption.

Everything random in training comes from ``training.random_seed``: the order of the examples in
epoch ``e`` is a permutation drawn from ``(seed, e)`` alone, and dropout draws from one generator
whose state is checkpointed. The learning rate is a function of the global step alone. So a run
stopped anywhere (Ctrl-C, a crash, a kill, or simply fewer epochs) and resumed from a checkpoint
ends bit-identical to a run that never stopped.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from bert.core.config import BertConfig
from bert.core.model import BertForPreTraining
from bert.core.optim import AdamWConfig, init_state, schedule_multiplier
from bert.core.step import NonFiniteError, training_step
from bert.data.datasets import load_dataset
from bert.errors import ParamsError, TrainingDivergedError, remake_hint
from bert.storage import checkpoint as ckpt
from bert.storage.atomic import write_json
from bert.workflow.evaluate import SCORE_KEYS, score
from bert.workflow.layout import Layout
from bert.workflow.params import Params, TrainingParams, bert_config, run_params

log = logging.getLogger(__name__)

DROPOUT_STREAM, ORDER_STREAM = 1, 2  # independent random streams derived from the seed
INIT_FIX = remake_hint("init")


def learning_rate(step: int, training: TrainingParams) -> float:
    """The learning rate of optimizer step ``step`` (0-based), as ``training`` schedules it."""
    return training.learning_rate * schedule_multiplier(
        step, training.lr_schedule, training.warmup_steps, training.decay_steps)


def epoch_order(seed: int, epoch: int, num_examples: int) -> np.ndarray:
    """The order (N,) in which epoch ``epoch`` visits the examples."""
    return np.random.default_rng([seed, ORDER_STREAM, epoch]).permutation(num_examples)


def initialize(params: Params, layout: Layout = Layout()) -> None:
    """The init stage: write ``artifacts/init.h5``, with transformers' initialization or, with
    ``model.init_from``, the weights of that checkpoint."""
    config = bert_config(params)
    dtype = np.dtype(params.training.dtype)
    if params.model.init_from:
        model = starting_point(params, layout)
    else:
        model = BertForPreTraining(config, seed=params.model.random_seed, dtype=dtype)
    ckpt.save_weights(layout.init_weights, config, model.params, params.stage_params("init"))
    log.info("initial weights written to %s (%d parameters)", layout.init_weights,
             sum(p.size for p in model.params.values()))


def starting_point(params: Params, layout: Layout) -> BertForPreTraining:
    """The model ``model.init_from`` names, checked against the architecture of the params."""
    from bert.storage.interop import from_pretrained

    source = layout.under_root(params.model.init_from)
    if not source.exists():
        raise ParamsError(f"model.init_from: {source} does not exist; point it at a "
                          "transformers directory or a .h5 weight file, or leave it empty")
    model = from_pretrained(source, dtype=np.dtype(params.training.dtype),
                            seed=params.model.random_seed)
    wanted = bert_config(params)
    differences = {key: (value, getattr(wanted, key))
                   for key, value in dataclasses.asdict(model.config).items()
                   if getattr(wanted, key) != value}
    if differences:
        listed = ", ".join(f"{key} {theirs} (params: {ours})"
                           for key, (theirs, ours) in differences.items())
        raise ParamsError(f"model.init_from: {source} has another architecture: {listed}; "
                          "set model: and data: to match it")
    return model


def fresh_state(params: Params, config: BertConfig, layout: Layout) -> ckpt.TrainingState:
    """Step 0: the initial weights, zero AdamW moments, the dropout generator seeded."""
    _, weights = ckpt.load_weights(layout.init_weights, INIT_FIX, config)
    dtype = np.dtype(params.training.dtype)
    weights = {name: value.astype(dtype) for name, value in weights.items()}
    return ckpt.TrainingState(
        params=weights, optimizer=init_state(weights),
        rng=np.random.default_rng([params.training.random_seed, DROPOUT_STREAM]),
        history={key: [] for key in ckpt.HISTORY_KEYS}, epoch_history=[])


@contextmanager
def deferred_interrupts() -> Iterator[list[int]]:
    """Turn SIGINT/SIGTERM into a flag checked between steps, so a step is never cut in half.

    Yields a list that receives the signal numbers. A second Ctrl-C interrupts at once.
    """
    received: list[int] = []

    def handler(signum, frame):
        if received and signum == signal.SIGINT:
            raise KeyboardInterrupt
        received.append(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on a signal after saving a checkpoint at ``step``."""

    def __init__(self, step: int) -> None:
        super().__init__(f"interrupted at step {step}")
        self.step = step


def _diverged(step: int, what: str, value: float, params: Params, saved: int) -> None:
    t = params.training
    raise TrainingDivergedError(
        f"step {step}: the {what} is {value}; training diverged. Lower training.learning_rate "
        f"(now {t.learning_rate}), raise training.warmup_steps (now {t.warmup_steps}) or set "
        f"training.max_grad_norm (now {t.max_grad_norm}); checkpoints up to step {saved} are "
        "intact and nothing after it was written")


def train(params: Params, layout: Layout = Layout(), progress: bool = True) -> ckpt.TrainingState:
    """The train stage: resume the newest valid checkpoint of this run (or start), train to
    ``training.epochs``, write ``artifacts/history.json`` and then ``artifacts/model.h5``."""
    t = params.training
    config = bert_config(params)
    run = run_params(params)
    folder = layout.checkpoints / ckpt.fingerprint(run)
    train_data = load_dataset(layout.train_data, params.data)
    test_data = load_dataset(layout.test_data, params.data)
    batch_size, batches_per_epoch = params.data.batch_size, params.data.num_train_batches
    total_steps = t.epochs * batches_per_epoch
    state = ckpt.newest_valid_checkpoint(folder, config, run, total_steps)
    if state is None:
        state = fresh_state(params, config, layout)
        log.info("training from the initial weights; checkpoints in %s", folder)
    else:
        log.info("resuming from step %d (epoch %d, batch %d) in %s", state.step,
                 *divmod(state.step, batches_per_epoch), folder)
    adamw = AdamWConfig(beta1=t.adam_beta1, beta2=t.adam_beta2, eps=t.adam_epsilon,
                        weight_decay=t.weight_decay)

    def save() -> None:
        for name, value in state.params.items():
            if not np.isfinite(value).all():
                _diverged(state.step, f"parameter {name}", float("nan"), params, saved_step)
        ckpt.save_checkpoint(folder, config, state, run, batches_per_epoch, t.keep_checkpoints)

    saved_step = state.step
    order, order_epoch = None, -1
    epoch_start, epoch_seconds = state.step, 0.0
    with deferred_interrupts() as signals, logging_redirect_tqdm(), tqdm(
        total=total_steps, initial=state.step, disable=not progress, unit="step",
        dynamic_ncols=True, mininterval=0.5,
    ) as bar:
        while state.step < total_steps:
            started = time.perf_counter()
            epoch, position = divmod(state.step, batches_per_epoch)
            if epoch != order_epoch:
                order, order_epoch = epoch_order(t.random_seed, epoch, len(
                    train_data["nsp_labels"])), epoch
            rows = order[position * batch_size:(position + 1) * batch_size]
            batch = {name: values[rows] for name, values in train_data.items()}
            lr = learning_rate(state.step, t)
            try:
                result = training_step(
                    state.params, config, batch, state.optimizer, lr=lr, adamw=adamw,
                    max_grad_norm=t.max_grad_norm, rng=state.rng,
                    mlm_weight=t.mlm_loss_weight, nsp_weight=t.nsp_loss_weight)
            except NonFiniteError as error:
                _diverged(state.step + 1, error.what, error.value, params, saved_step)
            losses, norm = result.losses, result.grad_norm
            for key, value in zip(ckpt.HISTORY_KEYS, (losses["total"], losses["mlm"],
                                                      losses["nsp"], lr, norm), strict=True):
                state.history[key].append(float(value))
            epoch_seconds += time.perf_counter() - started
            bar.update(1)
            bar.set_postfix(mlm=f"{losses['mlm']:.3f}", nsp=f"{losses['nsp']:.3f}",
                            refresh=False)
            if state.step % batches_per_epoch == 0:
                record = _end_of_epoch(state, params, config, test_data, epoch_start,
                                       epoch_seconds)
                log.info("epoch %(epoch)d: train MLM %(train_mlm_loss).4f NSP "
                         "%(train_nsp_loss).4f | test MLM %(test_mlm_loss).4f NSP "
                         "%(test_nsp_loss).4f acc %(test_nsp_accuracy).3f | "
                         "%(tokens_per_second).0f tokens/s", record)
                save()
                saved_step, epoch_start, epoch_seconds = state.step, state.step, 0.0
            elif t.checkpoint_every_steps and state.step % t.checkpoint_every_steps == 0:
                save()
                saved_step = state.step
            if signals:
                if saved_step != state.step:
                    save()
                raise TrainingInterrupted(state.step)
    write_json(layout.history, {"steps": state.history, "epochs": state.epoch_history,
                                "batches_per_epoch": batches_per_epoch,
                                "tokens_per_step": batch_size * params.data.sequence_length})
    ckpt.save_weights(layout.model_weights, config, state.params, params.stage_params("train"),
                      attrs={"step": state.step, "epochs": t.epochs})
    log.info("trained %d steps; model written to %s", state.step, layout.model_weights)
    return state


def _end_of_epoch(state, params, config, test_data, epoch_start, seconds) -> dict[str, float]:
    """Record the finished epoch: mean training losses, test scores, time and throughput."""
    steps = state.step - epoch_start  # done in this session, for the throughput
    begin = state.step - params.data.num_train_batches  # the epoch's first step
    test = score(state.params, config, test_data, params.data.batch_size)
    record = {
        "epoch": state.step // params.data.num_train_batches,
        "step": state.step,
        "train_mlm_loss": float(np.mean(state.history["loss_mlm"][begin:])),
        "train_nsp_loss": float(np.mean(state.history["loss_nsp"][begin:])),
        **{f"test_{key}": test[key] for key in SCORE_KEYS},
        "learning_rate": state.history["learning_rate"][-1],
        "seconds": seconds,
        "tokens_per_second": steps * params.data.batch_size * params.data.sequence_length
        / max(seconds, 1e-9),
    }
    state.epoch_history.append(record)
    return record
