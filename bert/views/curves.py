"""The training curves of a run against the optimum: the history the train stage writes, the
smoothing and the epoch spans the picture (``bert.views.curves_plot``) draws with, and the
per-epoch table that ``python -m bert curves`` prints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bert.data.loading import load_optimum
from bert.views.inputs import sentence_task
from bert.workflow.gap import gap
from bert.workflow.layout import read_fix
from bert.workflow.report import read_history
from bert.workflow.sentence import has_sentence_label, task_name

NO_OPTIMUM = ("gaps and Bayes-optimal: – (text data has no optimum: the distribution that "
              "wrote the text is unknown)")


def load_history(path: str | Path) -> dict:
    """The training history written by the train stage (``artifacts/history.json``)."""
    return read_history(Path(path), read_fix(path, "training history"))


def moving_average(values: Sequence[float], window: int) -> np.ndarray:
    """Trailing means over ``window`` values (fewer at the start), one per value."""
    values = np.asarray(values, dtype=np.float64)
    sums = np.cumsum(np.r_[0.0, values])
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(ends - window, 0)
    return (sums[ends] - sums[starts]) / (ends - starts)


def epoch_spans(history: Mapping) -> list[tuple[int, int]]:
    """The steps each epoch record of a history covers, as (step before its first, its last):
    the span over which its means (training losses, throughput) were taken."""
    batches = history.get("batches_per_epoch") or 0
    return [(max(record["step"] - batches, 0), record["step"]) for record in history["epochs"]]


def smoothing_window(num_steps: int) -> int:
    """The moving-average window for a curve of ``num_steps`` steps: about 1/50 of it."""
    return max(1, num_steps // 50)


@dataclass(frozen=True)
class EpochColumn:
    """A column of the per-epoch table: its header, the epoch record key it shows, the optimum
    key when it shows the gap to it, and the optimum key it shows in each reference row."""

    header: str
    key: str
    gap_to: str | None = None
    references: Mapping[str, str] = field(default_factory=dict)  # row name -> optimum key


def epoch_columns(task: str) -> tuple[EpochColumn, ...]:
    """The columns of the per-epoch table of a run of sentence task ``task``: MLM's, then the
    task's (NSP, SOP; none without a sentence task)."""
    name = task_name(task)
    mlm = (EpochColumn("MLM train", "train_mlm_loss"),
           EpochColumn("MLM test", "test_mlm_loss", references={
               "Bayes-optimal": "bayes_mlm_loss", "unigram": "unigram_mlm_loss",
               "uniform/chance": "uniform_mlm_loss"}),
           EpochColumn("MLM gap", "test_mlm_loss", "bayes_mlm_loss"))
    accuracy = EpochColumn("MLM acc", "test_mlm_accuracy")
    if not has_sentence_label(task):
        return (*mlm, accuracy)
    return (*mlm,
            EpochColumn(f"{name} train", f"train_{task}_loss"),
            EpochColumn(f"{name} test", f"test_{task}_loss", references={
                "Bayes-optimal": f"bayes_{task}_loss", "uniform/chance": f"chance_{task}_loss"}),
            EpochColumn(f"{name} gap", f"test_{task}_loss", f"bayes_{task}_loss"),
            accuracy,
            EpochColumn(f"{name} acc", f"test_{task}_accuracy", references={
                "Bayes-optimal": f"bayes_{task}_accuracy",
                f"topics only ({name})": f"topic_only_{task}_accuracy",
                "uniform/chance": f"chance_{task}_accuracy"}),
            EpochColumn("acc gap", f"test_{task}_accuracy", f"bayes_{task}_accuracy"))


# the rows under the per-epoch table, in order; a task's topic-only row comes second
REFERENCE_ROWS = ("Bayes-optimal", "topics only ({})", "unigram", "uniform/chance")


def format_epochs(history: Mapping, optimum: Mapping[str, float],
                  task: str = "nsp") -> list[str]:
    """The per-epoch records of a history of sentence task ``task`` against the optimum, as a
    fixed-width table.

    Losses in nats; a gap is how much worse than the Bayes-optimal score the test score is
    (``bert.workflow.gap``).
    """
    def cell(value: float | None) -> str:
        return f"{'–':>10}" if value is None else f"{value:>10.4f}"

    columns = epoch_columns(task)
    left = f"{'epoch':>5} {'step':>7} {'lr':>9}"
    lines = [left + "".join(f"{column.header:>10}" for column in columns)]
    for record in history["epochs"]:
        cells = "".join(
            cell(record[c.key] if c.gap_to is None else None if c.gap_to not in optimum
                 else gap(c.key, record[c.key], optimum[c.gap_to]))
            for c in columns)
        lines.append(f"{record['epoch']:>5} {record['step']:>7} {record['learning_rate']:>9.2e}"
                     + cells)
    for name in REFERENCE_ROWS:
        name = name.format(task_name(task))
        keys = [column.references.get(name) for column in columns]
        if not any(key in optimum for key in keys):  # e.g. no optimum for text data
            continue
        cells = "".join(f"{'':>10}" if key is None else cell(optimum.get(key)) for key in keys)
        lines.append((f"{name:<23}" + cells).rstrip())
    if "bayes_mlm_loss" not in optimum:
        lines.append(NO_OPTIMUM)
    return lines


def curves_text(history_path: str | Path, test_path: str | Path) -> str:
    """``python -m bert curves``: the per-epoch table of a history against the optimum."""
    history = load_history(history_path)
    optimum, task = load_optimum(test_path), sentence_task(test_path)
    steps = len(history["steps"]["loss_total"])
    head = (f"{history_path}: {len(history['epochs'])} epochs, {steps} steps of "
            f"{history.get('tokens_per_step', '?')} tokens; optimum of {test_path}")
    if not history["epochs"]:
        return head + "\nno epoch finished yet"
    return "\n".join([head, *format_epochs(history, optimum, task)])
