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
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bert.core.config import BertConfig
from bert.core.optim import AdamWConfig, init_state, schedule_multiplier
from bert.core.parameters import pack_params
from bert.core.step import NonFiniteError, OneProcess, Reduction, StepResult, training_step
from bert.core.streams import dropout_streams, epoch_order
from bert.data.datasets import load_dataset, load_vocab, masking_spec
from bert.data.examples import num_examples
from bert.data.masking import MaskingSpec, masked_epoch
from bert.data.tokenizer import vocab_digest
from bert.engine.allocation import keep_freed_memory
from bert.engine.pool import set_threads
from bert.errors import ParamsError, TrainingDivergedError, remake_hint
from bert.fingerprint import fingerprint
from bert.storage import checkpoint as ckpt
from bert.storage.atomic import check_writable, write_json
from bert.workflow.evaluate import score
from bert.workflow.interrupts import TrainingInterrupted, deferred_interrupts
from bert.workflow.layout import Layout
from bert.workflow.live import LiveMetrics
from bert.workflow.logs import quiet_logging
from bert.workflow.params import Params, TrainingParams, bert_config
from bert.workflow.progress import progress_bar
from bert.workflow.provenance import project_run_params, whole_batches
from bert.workflow.run import TRAIN_READS
from bert.workflow.run_record import RunOrigin, record_run
from bert.workflow.sentence import has_sentence_label, score_keys, task_name

log = logging.getLogger(__name__)

INIT_FIX = remake_hint("init")


def learning_rate(step: int, training: TrainingParams, total_steps: int) -> float:
    """The learning rate of optimizer step ``step`` (0-based), as ``training`` schedules it, in a
    run of ``total_steps`` steps (the linear schedule's end with ``decay_steps: 0``)."""
    return training.learning_rate * schedule_multiplier(
        step, training.lr_schedule, training.warmup_steps, training.decay_steps or total_steps)


def fresh_state(params: Params, config: BertConfig, layout: Layout) -> ckpt.TrainingState:
    """Step 0: the initial weights, zero AdamW moments, an empty history."""
    _, weights = ckpt.load_weights(layout.init_weights, INIT_FIX, config)
    weights = pack_params(config, weights, np.dtype(params.training.dtype))
    return ckpt.TrainingState(
        params=weights, optimizer=init_state(weights),
        history={key: [] for key in ckpt.HISTORY_KEYS}, epoch_history=[])


def _diverged(step: int, what: str, value: float, params: Params, saved: int) -> None:
    t = params.training
    raise TrainingDivergedError(
        f"step {step}: the {what} is {value}; training diverged. Lower training.learning_rate "
        f"(now {t.learning_rate}), raise training.warmup_steps (now {t.warmup_steps}) or set "
        f"training.max_grad_norm (now {t.max_grad_norm}); checkpoints up to step {saved} are "
        "intact and nothing after it was written")


@dataclass
class Run:
    """One training run in progress: what it trains on, where it checkpoints, how far it is."""

    params: Params
    layout: Layout
    config: BertConfig
    run_params: dict
    folder: Path  # the run's checkpoints
    train_data: dict[str, np.ndarray]
    test_data: dict[str, np.ndarray]
    state: ckpt.TrainingState
    adamw: AdamWConfig
    saved_step: int  # the step of the newest checkpoint on disk
    reduction: Reduction  # who computes which micro-batches, and how their sums meet
    epoch_start: int = 0  # the first step of the current epoch done in this session
    epoch_seconds: float = 0.0  # time spent in steps of the current epoch, this session
    live: LiveMetrics | None = None  # the run's live-metrics file (rank 0's)
    masking: MaskingSpec | None = None  # dynamic masking: how train_data (unmasked) is masked
    masked: tuple[int, dict[str, np.ndarray]] | None = None  # (epoch, its masked train_data)

    @property
    def root(self) -> bool:
        """Whether this process scores, writes and logs (rank 0)."""
        return self.reduction.rank == 0

    @property
    def batches_per_epoch(self) -> int:
        """Whole batches of the training set (text data: the remainder waits for later epochs,
        whose order differs)."""
        return whole_batches(self.train_data, self.params.data.batch_size)

    @property
    def total_steps(self) -> int:
        return self.params.training.epochs * self.batches_per_epoch

    @property
    def tokens_per_step(self) -> int:
        return self.params.data.batch_size * self.params.data.sequence_length

    @property
    def task(self) -> str:
        """The sentence task of the training examples: nsp, sop or none."""
        return self.params.data.sentence_task


def open_run(params: Params, layout: Layout, reduction: Reduction | None = None,
             origin: RunOrigin | None = None) -> Run:
    """The run these parameters define, resumed from its newest valid checkpoint if any; its
    record (``run.json``) written first by the process that writes (``origin``: where its
    parameters come from)."""
    t = params.training
    config, run = bert_config(params), project_run_params(params, layout)
    folder = layout.checkpoints / fingerprint(run)
    for writable in (layout.run_dir, folder):  # before an epoch of work, not after it
        check_writable(writable)
    train_data = load_dataset(layout.train_data, params.data)
    batches = whole_batches(train_data, params.data.batch_size)
    warn_past_schedule(t, t.epochs * batches)
    state = ckpt.newest_valid_checkpoint(folder, config, run, t.epochs * batches)
    refuse_going_back(params, folder, state, batches)
    if state is None:
        state = fresh_state(params, config, layout)
        log.info("training from the initial weights; checkpoints in %s", folder)
    else:
        log.info("resuming from step %d (epoch %d, batch %d) in %s", state.step,
                 *divmod(state.step, batches), folder)
        packed(state, config)
    root = (reduction or OneProcess()).rank == 0
    if root:
        record_run(params, layout, origin, t.epochs * batches)
    tokens_per_step = params.data.batch_size * params.data.sequence_length
    live = LiveMetrics(layout.live_metrics, state.step, params.logging.live_every_steps,
                       tokens_per_step) if root else None
    return Run(params, layout, config, run, folder, train_data,
               load_dataset(layout.test_data, params.data), state,
               AdamWConfig(beta1=t.adam_beta1, beta2=t.adam_beta2, eps=t.adam_epsilon,
                           weight_decay=t.weight_decay),
               saved_step=state.step, reduction=reduction or OneProcess(),
               epoch_start=state.step, live=live,
               masking=masking_spec(layout.train_data) if "mlm_labels" not in train_data
               else None)


def warn_past_schedule(training: TrainingParams, total_steps: int) -> None:
    """Say so when the run goes on past the end of a linear schedule, where the learning rate
    is 0 and the steps change nothing; refuse a schedule that would end before its warmup."""
    if training.lr_schedule == "linear" and training.decay_steps == 0 \
            and total_steps <= training.warmup_steps:
        raise ParamsError(f"training.decay_steps is 0, the run's last step ({total_steps}), not "
                          f"after training.warmup_steps ({training.warmup_steps}); lower the "
                          "warmup or train more epochs")
    if training.lr_schedule == "linear" and 0 < training.decay_steps < total_steps:
        log.warning("training.epochs asks for %d steps, but the linear schedule's learning rate "
                    "is 0 from step %d (training.decay_steps) on, so the steps past it change "
                    "nothing: raise training.decay_steps to train longer (it starts a new run)",
                    total_steps, training.decay_steps)


def packed(state: ckpt.TrainingState, config: BertConfig) -> None:
    """Put the weights and AdamW's moments of a loaded state into one flat buffer each, in one
    layout (``bert.core.flat``), so that the optimizer makes a few passes over the buffers."""
    state.params = pack_params(config, state.params)
    for moment in ("exp_avg", "exp_avg_sq"):
        state.optimizer[moment] = pack_params(config, state.optimizer[moment])


def refuse_going_back(
    params: Params, folder: Path, state: ckpt.TrainingState | None, batches_per_epoch: int
) -> None:
    """Lowering ``training.epochs`` below what the run has done uses its checkpoint at the end
    of that epoch; without one, refuse (training again would prune the later checkpoints)."""
    total_steps = params.training.epochs * batches_per_epoch
    done = max((ckpt.step_of(p) for p in ckpt.list_checkpoints(folder)), default=0)
    if done > total_steps and state is not None and state.step == total_steps:
        log.info("this run is already at step %d; using its checkpoint at the end of epoch %d "
                 "and keeping the later ones", done, params.training.epochs)
    elif done > total_steps:
        epochs = -(-done // batches_per_epoch)
        raise ParamsError(f"training.epochs is {params.training.epochs}, but this run is already "
                          f"at step {done} (epoch {epochs}) and has no checkpoint at the end of "
                          f"epoch {params.training.epochs}; its checkpoints in {folder} are left "
                          f"alone: set training.epochs to {epochs} or more")


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


def epoch_line(record: dict[str, float], task: str) -> str:
    """The log line of an epoch's record: its losses, test scores and throughput."""
    train = f"train MLM {record['train_mlm_loss']:.4f}"
    test = f"test MLM {record['test_mlm_loss']:.4f}"
    if has_sentence_label(task):
        name = task_name(task)
        train += f" {name} {record[f'train_{task}_loss']:.4f}"
        test += (f" {name} {record[f'test_{task}_loss']:.4f} acc "
                 f"{record[f'test_{task}_accuracy']:.3f}")
    return (f"epoch {record['epoch']}: {train} | {test} | "
            f"{record['tokens_per_second']:.0f} tokens/s")


def end_of_epoch(run: Run) -> dict[str, float]:
    """Record the finished epoch: mean training losses (MLM, and the sentence task's), test
    scores (``score_keys`` of the task), time and throughput."""
    state, data = run.state, run.params.data
    steps = state.step - run.epoch_start  # done in this session, for the throughput
    begin = state.step - run.batches_per_epoch  # the epoch's first step
    test = score(state.params, run.config, run.test_data, data.batch_size, task=run.task)
    sentence = ({f"train_{run.task}_loss": float(np.mean(state.history["loss_nsp"][begin:]))}
                if has_sentence_label(run.task) else {})
    record = {
        "epoch": state.step // run.batches_per_epoch,
        "step": state.step,
        "train_mlm_loss": float(np.mean(state.history["loss_mlm"][begin:])),
        **sentence,
        **{f"test_{key}": test[key] for key in score_keys(run.task)},
        "learning_rate": state.history["learning_rate"][-1],
        "seconds": run.epoch_seconds,
        "tokens_per_second": steps * run.tokens_per_step / max(run.epoch_seconds, 1e-9),
    }
    state.epoch_history.append(record)
    return record
