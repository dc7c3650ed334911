"""A training run opened: what it trains on, where it checkpoints, the state it starts from.

``open_run`` finds the run's checkpoint folder (named by the fingerprint of the parameters that
define the run, ``bert.workflow.provenance``), checks before any work that the run can be
written and that its schedule makes sense, and resumes from the newest valid checkpoint, or
starts from the initial weights at step 0. Lowering ``training.epochs`` below what a run has
done goes back to its checkpoint at the end of that epoch, or is refused.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bert.core.config import BertConfig
from bert.core.optim import AdamWConfig, init_state
from bert.core.parameters import pack_params
from bert.core.step import OneProcess, Reduction
from bert.data.loading import load_dataset, masking_spec
from bert.data.masking import MaskingSpec
from bert.errors import ParamsError, remake_hint
from bert.fingerprint import fingerprint
from bert.storage import checkpoint as ckpt
from bert.storage.atomic import check_writable
from bert.workflow.layout import Layout
from bert.workflow.live import LiveMetrics
from bert.workflow.params import Params, TrainingParams, bert_config
from bert.workflow.provenance import project_run_params, whole_batches
from bert.workflow.run_record import RunOrigin, record_run

log = logging.getLogger(__name__)

INIT_FIX = remake_hint("init")


def fresh_state(params: Params, config: BertConfig, layout: Layout) -> ckpt.TrainingState:
    """Step 0: the initial weights, zero AdamW moments, an empty history."""
    _, weights = ckpt.load_weights(layout.init_weights, INIT_FIX, config)
    weights = pack_params(config, weights, np.dtype(params.training.dtype))
    return ckpt.TrainingState(
        params=weights, optimizer=init_state(weights),
        history={key: [] for key in ckpt.HISTORY_KEYS}, epoch_history=[])


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
