"""``python -m bert runs``: every run of a project folder side by side, finished or not.

A run's folder (``artifacts/runs/<name>/``) says what the run is (``run.json``: its base
parameters file, what differs from it, the full parameters), how far it got (``live.jsonl``,
appended while it trains) and, once evaluated, its scores (``results.json``). This view reads
only those files: it runs no model, so it can be called while runs train.

One line per run: its name, what differs from its base, steps done, training time, test MLM
loss, the share of the MLM gap closed (from the unigram baseline to the optimum), the sentence
task's test accuracy, and its status: ``done``, ``training`` (a process holds the run's lock) at
step k, ``stopped`` at step k (killed, interrupted or failed: the last line of its log says
which), or ``not started``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bert.workflow.layout import Layout
from bert.workflow.live import read_lines
from bert.workflow.lock import held_by_another
from bert.workflow.run_record import RunRecord, read_run_record

# the sentence task's accuracy in results.json, by task
SENTENCE_ACCURACY = {"nsp": "test_nsp_accuracy", "sop": "test_sop_accuracy"}


@dataclass
class RunStatus:
    """What the files of one run folder say about it."""

    name: str
    record: RunRecord
    results: dict | None
    steps_done: int
    total_steps: int | None
    seconds: float | None
    status: str  # "done", "training", "stopped", "not started"
    detail: str = ""  # e.g. the log line that says why a run stopped
    epochs: list[dict] = field(default_factory=list)  # the epoch records so far

    @property
    def differs(self) -> str:
        """What differs from the base parameters, as ``key=value`` words."""
        return " ".join(f"{key}={value}" for key, value in self.record.overrides.items()) or "-"

    def score(self, key: str) -> float | None:
        """A test score of the results, or of the newest epoch while the run trains."""
        if self.results is not None:
            return self.results.get(key)
        newest = self.epochs[-1] if self.epochs else {}
        return newest.get(key)

    @property
    def test_mlm_loss(self) -> float | None:
        return self.score("test_mlm_loss")

    @property
    def gap_closed(self) -> float | None:
        """(unigram - model) / (unigram - optimum) for the test MLM loss; None without an
        optimum (text data) or a score."""
        model = self.test_mlm_loss
        results = self.results or {}
        optimum = (results.get("optimum") or {}).get("test_mlm_loss")
        unigram = (results.get("baselines") or {}).get("unigram_mlm_loss")
        if None in (model, optimum, unigram) or unigram == optimum:
            return None
        return (unigram - model) / (unigram - optimum)

    @property
    def sentence_accuracy(self) -> float | None:
        task = self.record.params.get("data", {}).get("sentence_task", "nsp")
        key = SENTENCE_ACCURACY.get(task)
        return None if key is None else self.score(key)

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "base": self.record.base, "sweep": self.record.sweep,
                "overrides": self.record.overrides, "params": self.record.params,
                "results": self.results, "status": self.status, "detail": self.detail,
                "steps": self.steps_done, "total_steps": self.total_steps,
                "seconds": self.seconds}


def _read_json(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _last_log_line(path: Path) -> str:
    """The last line of a run's log that says why it stopped (an error or an interrupt)."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        if " ERROR " in line or "interrupted" in line:
            return line.split(": ", 1)[-1].strip()
    return ""


def run_status(layout: Layout) -> RunStatus | None:
    """The status of the run of ``layout``, or None when its folder holds no run record."""
    record = read_run_record(layout.run_record)
    if record is None:
        return None
    lines = read_lines(layout.live_metrics)
    epochs = [line for line in lines if line.get("kind") == "epoch"]
    steps = max((line["step"] for line in lines), default=0)
    results = _read_json(layout.results)
    if results is not None and results.get("params") != record.report_params:
        results = None  # the scores of earlier parameters of the same name
    seconds = sum(e.get("seconds", 0.0) for e in epochs) or None
    if results is not None:
        training = results.get("training", {})
        steps, seconds, status = training.get("steps", steps), training.get("seconds"), "done"
    elif held_by_another(layout.run_lock):
        status = "training"
    elif steps:
        status = "stopped"
    else:
        status = "not started"
    detail = _last_log_line(layout.log_file) if status == "stopped" else ""
    return RunStatus(layout.run, record, results, steps, record.total_steps, seconds, status,
                     detail, epochs)


def all_runs(root: Path, names: Iterable[str] | None = None) -> list[RunStatus]:
    """The runs under ``root/artifacts/runs/`` (those named, in that order; else all, by
    name) that have a run record."""
    runs_dir = Layout(root).runs_dir
    if names is None:
        names = sorted(p.name for p in runs_dir.iterdir()) if runs_dir.is_dir() else []
    found = (run_status(Layout(root, run=name)) for name in names)
    return [status for status in found if status is not None]


def _cell(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _status_cell(run: RunStatus) -> str:
    if run.status in ("training", "stopped"):
        total = f" of {run.total_steps}" if run.total_steps else ""
        return f"{run.status} at step {run.steps_done}{total}"
    return run.status


def rows(runs: Iterable[RunStatus]) -> list[list[str]]:
    """The table's cells, one list per run."""
    return [[run.name, run.differs, f"{run.steps_done}", _cell(run.seconds, ".0f"),
             _cell(run.test_mlm_loss, ".4f"), _cell(run.gap_closed, ".1%"),
             _cell(run.sentence_accuracy, ".4f"), _status_cell(run)] for run in runs]


HEADER = ["run", "differs from its base", "steps", "seconds", "test MLM", "gap closed",
          "sentence acc", "status"]


def text_table(runs: list[RunStatus]) -> str:
    """Fixed-width columns for a terminal."""
    table = [HEADER, *rows(runs)]
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADER))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
             .rstrip() for row in table]
    notes = [f"{run.name}: {run.detail}" for run in runs if run.detail]
    return "\n".join(lines + notes) if runs else "no run yet under artifacts/runs/"


def markdown_table(runs: list[RunStatus]) -> str:
    """A Markdown table, as the docs show it."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |"
              for row in rows(runs)]
    return "\n".join(lines)


def json_list(runs: list[RunStatus]) -> str:
    return json.dumps([run.as_json() for run in runs], indent=2, allow_nan=False)


def curves(runs: list[RunStatus]) -> dict[str, list[tuple[int, float]]]:
    """Each run's test MLM loss at the end of each epoch: name -> [(step, loss)]."""
    return {run.name: [(e["step"], e["test_mlm_loss"]) for e in run.epochs
                       if e.get("test_mlm_loss") is not None] for run in runs}


def optima(runs: list[RunStatus]) -> Mapping[str, float]:
    """The distinct MLM optima of the runs' test sets (one when they share their data)."""
    found = {}
    for run in runs:
        value = ((run.results or {}).get("optimum") or {}).get("test_mlm_loss")
        if value is not None:
            found.setdefault(f"{value:.4f}", value)
    return found
