"""The train stage: epochs of AdamW steps with exact resumption.

Everything random in training comes from ``training.random_seed`` through the streams of
``bert.core.streams``: the order of the examples in epoch ``e`` is drawn from ``(seed, e)``
alone, the dropout masks of micro-batch ``i`` of step ``s`` from ``(seed, s, i)``. The learning
rate is a function of the global step alone. Under ``data.masking: dynamic`` the MLM masks of
epoch ``e`` are drawn from ``(seed, e)`` and each example's index alone (``bert.data.masking``),
once per epoch. So a run stopped anywhere (Ctrl-C, a crash, a kill, or simply fewer epochs) and
resumed from a checkpoint ends bit-identical to a run that never stopped.

The sentence task (``data.sentence_task``) names the epoch's sentence scores
(``train_sop_loss``, ``test_sop_accuracy``, ...; ``bert.workflow.sentence``); without one there
are none, and the per-step history's ``loss_nsp`` (the sentence loss of each step) is 0.

With ``training.processes`` N > 1 this runs on each of N MPI ranks (``bert.parallel.mpi``): every
rank holds the whole state and takes the same step from the same summed gradient, rank 0 alone
scores, writes and logs. Nothing depends on the rank, so the bits do not depend on N.

Where a run resumes from is ``bert.workflow.training_run``; the record of each epoch,
``bert.workflow.epoch_record``.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from bert.core.optim import schedule_multiplier
from bert.core.step import NonFiniteError, StepResult, training_step
from bert.core.streams import dropout_streams, epoch_order
from bert.data.examples import num_examples
from bert.data.loading import load_vocab
from bert.data.masking import masked_epoch
from bert.data.tokenizer import vocab_digest
from bert.engine.allocation import keep_freed_memory
from bert.engine.pool import set_threads
from bert.errors import TrainingDivergedError
from bert.fingerprint import fingerprint
from bert.storage import checkpoint as ckpt
from bert.storage.atomic import write_json
from bert.workflow.epoch_record import end_of_epoch, epoch_line
from bert.workflow.interrupts import TrainingInterrupted, deferred_interrupts
from bert.workflow.layout import Layout
from bert.workflow.logs import quiet_logging
from bert.workflow.params import Params, TrainingParams
from bert.workflow.progress import progress_bar
from bert.workflow.run import TRAIN_READS
from bert.workflow.run_record import RunOrigin
from bert.workflow.sentence import has_sentence_label
from bert.workflow.training_run import Run, open_run

log = logging.getLogger(__name__)


def learning_rate(step: int, training: TrainingParams, total_steps: int) -> float:
    """The learning rate of optimizer step ``step`` (0-based), as ``training`` schedules it, in a
    run of ``total_steps`` steps (the linear schedule's end with ``decay_steps: 0``)."""
    return training.learning_rate * schedule_multiplier(
        step, training.lr_schedule, training.warmup_steps, training.decay_steps or total_steps)


def _diverged(step: int, what: str, value: float, params: Params, saved: int) -> None:
    t = params.training
    raise TrainingDivergedError(
        f"step {step}: the {what} is {value}; training diverged. Lower training.learning_rate "
        f"(now {t.learning_rate}), raise training.warmup_steps (now {t.warmup_steps}) or set "
        f"training.max_grad_norm (now {t.max_grad_norm}); checkpoints up to step {saved} are "
        "intact and nothing after it was written")


def epoch_examples(run: Run, epoch: int) -> dict[str, np.ndarray]:
    """The training examples of epoch ``epoch`` (0-based): the file's arrays, or under dynamic
    masking those arrays masked for the epoch (``masked_epoch``, keyed by
    ``training.random_seed``), computed once per epoch."""
    if run.masking is None:
        return run.train_data
    if run.masked is None or run.masked[0] != epoch:
        run.masked = (epoch, masked_epoch(run.train_data, run.params.training.random_seed, epoch,
                                          run.masking))
    return run.masked[1]


def next_batch(run: Run) -> dict[str, np.ndarray]:
    """The batch of the next step: its rows of this epoch's order (B rows of each array)."""
    batch_size = run.params.data.batch_size
    epoch, position = divmod(run.state.step, run.batches_per_epoch)
    order = epoch_order(run.params.training.random_seed, epoch, num_examples(run.train_data))
    rows = order[position * batch_size:(position + 1) * batch_size]
    return {name: values[rows] for name, values in epoch_examples(run, epoch).items()}


def take_step(run: Run) -> StepResult:
    """One optimizer step on the next batch, recorded in the history."""
    t, state = run.params.training, run.state
    started = time.perf_counter()
    lr = learning_rate(state.step, t, run.total_steps)
    try:
        result = training_step(
            state.params, run.config, next_batch(run), state.optimizer, lr=lr,
            adamw=run.adamw, max_grad_norm=t.max_grad_norm,
            rng=dropout_streams(t.random_seed, state.step),
            mlm_weight=t.mlm_loss_weight, nsp_weight=t.nsp_loss_weight,
            micro_batches=t.micro_batches, reduction=run.reduction, layers=t.layers)
    except NonFiniteError as error:
        _diverged(state.step + 1, error.what, error.value, run.params, run.saved_step)
    losses = result.losses
    for key, value in zip(ckpt.HISTORY_KEYS, (losses["total"], losses["mlm"], losses["nsp"],
                                              lr, result.grad_norm), strict=True):
        state.history[key].append(float(value))
    run.epoch_seconds += time.perf_counter() - started
    if run.live is not None:
        run.live.step(state.step, state.step // run.batches_per_epoch + 1, losses, lr,
                      result.grad_norm)
    return result


def save_checkpoint(run: Run) -> None:
    """Checkpoint the state (rank 0 writes), unless a parameter is no longer finite (then
    training diverged, on every rank alike)."""
    state = run.state
    for name, value in state.params.items():
        if not np.isfinite(value).all():
            _diverged(state.step, f"parameter {name}", float("nan"), run.params, run.saved_step)
    if run.root:
        ckpt.save_checkpoint(run.folder, run.config, state, run.run_params,
                             run.batches_per_epoch, run.params.training.keep_checkpoints)
    run.saved_step = state.step


def after_step(run: Run) -> None:
    """At the end of an epoch, score and checkpoint; in between, checkpoint when due."""
    step, every = run.state.step, run.params.training.checkpoint_every_steps
    if step % run.batches_per_epoch == 0:
        if run.root:  # the epoch's record goes into the checkpoint, which rank 0 writes
            record = end_of_epoch(run)
            log.info("%s", epoch_line(record, run.task))
            if run.live is not None:
                run.live.epoch(record)
        save_checkpoint(run)
        run.epoch_start, run.epoch_seconds = step, 0.0
    elif every and step % every == 0:
        save_checkpoint(run)


def finish(run: Run) -> None:
    """Write ``artifacts/history.json``, then ``artifacts/model.h5``."""
    state, layout = run.state, run.layout
    run_id = fingerprint(run.run_params)  # the provenance the later stages check
    write_json(layout.history, {"steps": state.history, "epochs": state.epoch_history,
                                "batches_per_epoch": run.batches_per_epoch,
                                "tokens_per_step": run.tokens_per_step, "run": run_id})
    vocab = load_vocab(layout.train_data)  # text data: the model records its vocabulary
    ckpt.save_weights(layout.model_weights, run.config, state.params,
                      run.params.subset(TRAIN_READS),
                      attrs={"step": state.step, "epochs": run.params.training.epochs,
                             "fingerprint": run_id,
                             **({ckpt.VOCAB_DIGEST: vocab_digest(vocab)} if vocab else {})})
    log.info("trained %d steps; model written to %s", state.step, layout.model_weights)


def train(
    params: Params, layout: Layout, progress: bool | None = None,
    origin: RunOrigin | None = None,
) -> ckpt.TrainingState:
    """The train stage: resume the newest valid checkpoint of this run (or start), train to
    ``training.epochs``, write ``history.json`` and then ``model.h5`` in the run's folder.

    ``origin``: where the run's parameters come from, for its record (``run.json``, written
    when training starts).

    ``progress`` (default: ``logging.progress_bar``) shows a progress bar when stderr is a
    terminal (``bert.workflow.progress``). With
    ``training.processes`` > 1 this is one rank of an MPI job of that many processes. The
    compute runs on ``training.threads`` threads per process (0: the process's share of its
    host's CPUs)."""
    if progress is None:
        progress = params.logging.progress_bar
    keep_freed_memory()  # every step allocates alike: reuse the memory instead of faulting it in
    if params.training.processes == 1:
        log.info("%d compute threads", set_threads(params.training.threads))
        return train_loop(open_run(params, layout, origin=origin), progress)
    from bert.parallel.job import join, same_start
    from bert.parallel.mpi import MpiReduction, cores_per_rank, fail_fast

    reduction = MpiReduction(join(params.training.processes))
    if reduction.rank:
        quiet_logging()
    threads = set_threads(params.training.threads or cores_per_rank(reduction.comm))
    log.info("rank 0 of %d; %d compute thread(s) per rank", reduction.size, threads)
    try:
        with fail_fast(reduction.comm, _on_every_rank):
            run = open_run(params, layout, reduction, origin)
            same_start(reduction.comm, run.state.step, run.folder)
            return train_loop(run, progress and run.root)
    except (TrainingInterrupted, TrainingDivergedError) as stop:
        if reduction.rank:  # rank 0 says it, once
            raise SystemExit(130 if isinstance(stop, KeyboardInterrupt) else 2) from None
        raise


def _on_every_rank(error: BaseException) -> bool:
    """Whether every rank stops with this error at the same step: a divergence (the losses and
    weights are the same on all), a Ctrl-C they agreed on. A second Ctrl-C stops a rank
    wherever it is, so the job is stopped at once."""
    return isinstance(error, TrainingDivergedError) or (
        isinstance(error, TrainingInterrupted) and error.saved)


def train_loop(run: Run, progress: bool) -> ckpt.TrainingState:
    """Train ``run`` to ``training.epochs``; stop after a step on SIGINT/SIGTERM (received by
    any rank: they all stop after the same step) with a checkpoint."""
    with deferred_interrupts() as signals, progress_bar(
        progress, total=run.total_steps, initial=run.state.step, unit="step",
    ) as bar:
        try:
            while run.state.step < run.total_steps:
                losses = take_step(run).losses
                bar.update(1)
                rate = ((run.state.step - run.epoch_start) * run.tokens_per_step
                        / max(run.epoch_seconds, 1e-9))
                sentence = ({run.task: f"{losses['nsp']:.3f}"}
                            if has_sentence_label(run.task) else {})
                bar.set_postfix(mlm=f"{losses['mlm']:.3f}", **sentence, tok_s=f"{rate:,.0f}",
                                refresh=False)
                after_step(run)
                if run.reduction.any(bool(signals)):
                    if run.saved_step != run.state.step:
                        save_checkpoint(run)
                    raise TrainingInterrupted(run.state.step)
        except KeyboardInterrupt as stop:  # a second Ctrl-C: at once, without saving
            if isinstance(stop, TrainingInterrupted):
                raise
            raise TrainingInterrupted(run.saved_step, saved=False) from None
        finally:
            if run.live is not None:
                run.live.close()
    if run.root:
        finish(run)
    return run.state


