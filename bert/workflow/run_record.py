"""A run's record, ``artifacts/runs/<name>/run.json``: what the run is, written when it starts
training, so that its folder explains itself and ``python -m bert runs`` can list it.

The record names the base parameters file, the sweep the run belongs to (if any), what differs
from the base (the overrides, as given), the full parameters, the data and initial weights it
uses (shared with every run of the same data or initial parameters), and the number of steps it
trains for.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bert.errors import DataFileError
from bert.storage.atomic import read_json, write_json

SCHEMA = "bert-from-scratch/run"


@dataclass(frozen=True)
class RunRecord:
    """The contents of ``run.json``."""

    name: str
    base: str  # the base parameters file, as given
    overrides: dict[str, str]  # section.key -> value, as written on the command line
    params: dict[str, Any]  # every parameter, section by section
    report_params: dict[str, Any]  # what the report stage records in results.json
    data: str  # the data folder, relative to the project folder
    init: str  # the initial weights' folder, likewise
    total_steps: int | None = None  # steps of training.epochs (None until the data is read)
    sweep: str | None = None  # the sweep file the run belongs to
    schema: str = field(default=SCHEMA)


def write_run_record(path: Path, record: RunRecord) -> Path:
    """Write ``run.json`` atomically."""
    return write_json(path, asdict(record))


def read_run_record(path: Path) -> RunRecord | None:
    """The record at ``path``, or None when there is none or it is not one of ours."""
    try:
        document = read_json(path, "")
    except DataFileError:  # missing or damaged: there is no run to list
        return None
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        return None
    try:
        return RunRecord(**document)
    except TypeError:
        return None
