"""The record of a finished epoch: its mean training losses, its test scores, its time and
throughput, and the log line that says them. Rank 0 makes it; it goes into the checkpoint at the
end of the epoch (``TrainingState.epoch_history``) and into ``history.json``."""

from __future__ import annotations

import numpy as np

from bert.workflow.evaluate import score
from bert.workflow.sentence import has_sentence_label, score_keys, task_name
from bert.workflow.training_run import Run


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
