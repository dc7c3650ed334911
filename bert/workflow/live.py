"""Live metrics: a run's progress as JSON lines, appended while it trains.

Every ``logging.live_every_steps`` steps the train stage appends one line (``"kind": "step"``:
the step's losses, learning rate, gradient norm before clipping, and the tokens per second since
the previous line), and one at the end of each epoch (``"kind": "epoch"``: the epoch's record,
with the test scores). Any tool can follow a run in progress: ``python -m bert runs``,
``tail -f``, ``pandas.read_json(path, lines=True)``.

The file follows the checkpoints: a run resumed from the checkpoint of step ``s`` first drops the
lines of steps after ``s`` (they will be made again, and a killed writer may have left half a
line), so the file of a run killed and resumed any number of times holds each step once, as the
file of a run that never stopped does. NaN and infinity are written as ``null``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from bert.storage.atomic import write_bytes


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def read_lines(path: Path) -> list[dict]:
    """The complete, readable lines of a live-metrics file (a half-written last line and any
    line that is not a JSON object are left out); [] when there is no file."""
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return []
    lines = []
    for line in text.split("\n")[:-1]:  # the text after the last newline is not complete
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int):
            lines.append(record)
    return lines


class LiveMetrics:
    """The live-metrics file of one run, opened for appending from step ``step`` on (lines of
    later steps are dropped first). ``every``: steps between step lines (0: epoch lines only)."""

    def __init__(self, path: Path, step: int, every: int, tokens_per_step: int) -> None:
        self.path, self.every, self.tokens_per_step = path, every, tokens_per_step
        kept = [line for line in read_lines(path) if line["step"] <= step]
        write_bytes(path, "".join(json.dumps(line) + "\n" for line in kept).encode())
        self.file: IO[str] = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        self.since_step, self.since_time = step, time.perf_counter()

    def _write(self, record: Mapping[str, Any]) -> None:
        self.file.write(json.dumps({key: _finite(value) for key, value in record.items()})
                        + "\n")

    def step(self, step: int, epoch: int, losses: Mapping[str, float], learning_rate: float,
             grad_norm: float) -> None:
        """After optimizer step ``step`` (1-based) of epoch ``epoch`` (1-based): a line when it
        is due."""
        if not self.every or step % self.every:
            return
        now = time.perf_counter()
        rate = (step - self.since_step) * self.tokens_per_step / max(now - self.since_time, 1e-9)
        self.since_step, self.since_time = step, now
        self._write({"kind": "step", "step": step, "epoch": epoch, "time": time.time(),
                     "loss_total": losses["total"], "loss_mlm": losses["mlm"],
                     "loss_nsp": losses["nsp"], "learning_rate": learning_rate,
                     "grad_norm": grad_norm, "tokens_per_second": rate})

    def epoch(self, record: Mapping[str, Any]) -> None:
        """The record of a finished epoch (``epoch``, ``step``, its losses and test scores)."""
        self._write({"kind": "epoch", **record, "time": time.time()})

    def close(self) -> None:
        self.file.close()
