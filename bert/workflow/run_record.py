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
from typing import TYPE_CHECKING, Any

from bert.errors import DataFileError
from bert.storage.atomic import read_json, write_json

if TYPE_CHECKING:
    from bert.workflow.layout import Layout
    from bert.workflow.params import Params

SCHEMA = "bert-from-scratch/run"


@dataclass(frozen=True)
class RunOrigin:
    """Where a run's parameters come from: the base file, what differs, the sweep if any."""

    base: str = ""
    overrides: dict[str, str] = field(default_factory=dict)
    sweep: str | None = None


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


def record_run(params: Params, layout: Layout, origin: RunOrigin | None,
               total_steps: int) -> Path:
    """Write the record of the run of ``layout`` (run.json), made from ``params`` and
    ``origin``."""
    from bert.workflow.stages import stage

    origin = origin or RunOrigin()
    root = layout.root
    return write_run_record(layout.run_record, RunRecord(
        name=layout.run, base=origin.base, overrides=dict(origin.overrides),
        params=params.to_dict(), report_params=params.subset(stage("report").reads),
        data=str(layout.data_dir.relative_to(root)), init=str(layout.init_dir.relative_to(root)),
        total_steps=total_steps, sweep=origin.sweep))


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
