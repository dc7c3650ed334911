"""What ``doit`` runs: the runs its command line asks for, and a task per stage and run.

The command line names the runs (``bert.workflow.overrides``, ``bert.workflow.sweep``):

- ``doit``: the run of ``params.yaml``, named ``params``;
- ``doit params=other.yaml``: the run of that file (``other``);
- ``doit training.learning_rate=0.002``: that key changed, another run
  (``params+learning_rate@0.002``); ``run=NAME`` names it;
- ``doit sweep=sweeps/lr.yaml -n 2``: every variant of the sweep, two at a time; keys on the
  command line then change every variant (``<variant>+key@value``).

Each stage of each run is a doit task named ``<stage>:<run>`` (``train:params``); the data and
the initial weights are tasks of their own folder (``data:synthetic-1a2b3c4d``), run once for
every run that shares them; a picture is ``plots:<run>:<picture>``. A task reruns when, and only
when, a file it reads changes, a file it writes is missing, a parameter it reads changes, or the
code it runs changes (``bert.workflow.tasks.code_fingerprint``).

``doit`` takes the lock of every run it will write before it runs a task (``doit list`` takes
none); each stage holds the lock of the folder it writes (``bert.workflow.lock``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from doit.tools import config_changed

from bert.errors import BertError, ParamsError
from bert.workflow.launch import train_command
from bert.workflow.layout import Layout
from bert.workflow.loader import load_params
from bert.workflow.lock import claim, take_claimed
from bert.workflow.overrides import check_run_name, run_name, split_variables, variant_name
from bert.workflow.params import Params
from bert.workflow.run_record import read_run_record
from bert.workflow.stage_action import stage_action
from bert.workflow.stages import STAGES, Stage, stage
from bert.workflow.sweep import read_sweep
from bert.workflow.tasks import STAGE_IO, available, code_fingerprint

DOIT_CONFIG = {
    "default_tasks": [s.name for s in STAGES if s.in_default_run],
    "backend": "sqlite3",  # transactional: a full disk or a kill never leaves it corrupt
    "dep_file": ".doit.db",  # one for every run: sqlite takes concurrent doits
    "verbosity": 2,  # show the stages' own output (tables, progress, errors) as it comes
}


@dataclass(frozen=True)
class RunPlan:
    """One run doit will make: its name, parameters file, what differs (overrides: part of
    the name), settings that change no result (``training.threads`` of a sweep's runs), and
    its resolved parameters and files."""

    name: str
    base: str
    overrides: dict[str, str]
    params: Params
    layout: Layout
    quiet: dict[str, str] = field(default_factory=dict)  # --set too, not part of the name
    sweep: str | None = None

    def command(self, name: str, *parts: str) -> list[str]:
        """``python -m bert <name> [parts] --params ... --run ... --set ...``."""
        settings = [word for key, value in {**self.overrides, **self.quiet}.items()
                    for word in ("--set", f"{key}={value}")]
        return [sys.executable, "-m", "bert", name, *parts, "--params", self.base, "--run",
                self.name, *settings, *(("--sweep", self.sweep) if self.sweep else ())]


def command_line_variables() -> dict[str, str]:
    """The ``key=value`` words of doit's command line, as doit read them (``doit.get_var``
    gives them one name at a time; its table holds them all)."""
    from doit import doit_cmd

    return dict(getattr(doit_cmd, "_CMDLINE_VARS", None) or {})


def runs_asked(variables: dict[str, str]) -> list[RunPlan]:
    """The runs the command line's variables name; ParamsError for anything wrong."""
    known, overrides = split_variables(variables)
    if "sweep" not in known:
        base = known.get("params", "params.yaml")
        name = check_run_name(known["run"]) if "run" in known else run_name(base, overrides)
        return [_plan(name, base, overrides)]
    if "params" in known or "run" in known:
        raise ParamsError(f"sweep={known['sweep']}: a sweep names its base file and its runs; "
                          "drop params= and run=")
    sweep = read_sweep(known["sweep"])
    plans = []
    for variant in sweep.variants:
        name = variant_name(variant.name, overrides)
        plans.append(_plan(check_run_name(name), str(sweep.base),
                           {**variant.overrides, **overrides}, str(sweep.path),
                           {"training.threads": str(sweep.threads)}))
    return plans


def _plan(name: str, base: str, overrides: dict[str, str], sweep: str | None = None,
          quiet: dict[str, str] | None = None) -> RunPlan:
    quiet = {key: value for key, value in (quiet or {}).items() if key not in overrides}
    params = load_params(base, {**overrides, **quiet})
    return RunPlan(name, base, overrides, params, Layout.of(params, name), quiet, sweep)


class Plan:
    """The tasks of the runs asked for, by stage."""

    def __init__(self, runs: list[RunPlan]) -> None:
        self.runs = runs
        for run in runs:
            claim(run.layout.run_lock, f"the run {run.name}")

    def _task(self, record: Stage, run: RunPlan, command: list[str] | None = None) -> dict:
        layout, params = run.layout, run.params
        command = command or run.command(record.name)
        return {
            "doc": record.doc,
            "actions": [stage_action(record, command, layout, params)],
            "file_dep": layout.files(record.inputs, params),
            "targets": layout.files(record.outputs, params),
            "uptodate": [config_changed({"params": params.subset(record.reads),
                                         "code": code_fingerprint(record.modules)})],
            "clean": True,
            "io": STAGE_IO,
        }

    def shared(self, name: str) -> Iterator[dict]:
        """The tasks of a stage whose folder runs share (data, init): one per folder."""
        record, done = stage(name), set()
        for run in self.runs:
            folder = getattr(run.layout, record.folder)
            if folder in done:
                continue
            done.add(folder)
            users = {r.name for r in self.runs if getattr(r.layout, record.folder) == folder}
            yield {**self._task(record, run), "name": folder.name,
                   "clean": [(clean_shared, [run.layout.files(record.outputs, run.params),
                                             record.folder, folder, users])]}

    def per_run(self, name: str) -> Iterator[dict]:
        """The tasks of a stage of each run."""
        record = stage(name)
        for run in self.runs:
            command = None
            if name == "train":  # under the MPI launcher for several processes
                command = train_command(run.params, run.command("train"), run.base)
            yield {**self._task(record, run, command), "name": run.name}

    def plots(self) -> Iterator[dict]:
        """A task per picture of each run (``plots:<run>:<picture>``), each redrawn only when
        its own inputs change; without matplotlib one task per run that says so."""
        plots = stage("plots")
        for run in self.runs:
            if not available(plots):  # one task that says why, writes nothing, then up to date
                yield {**self._task(plots, run), "name": run.name}
                continue
            for picture in plots.parts:
                yield {**self._task(picture, run, run.command("plots", picture.name)),
                       "name": f"{run.name}:{picture.name}"}


def clean_shared(paths: list[Path], folder_member: str, folder: Path,
                 cleaning: set[str]) -> None:
    """``doit clean`` of a shared stage (data, init): remove its files unless a run that is not
    being cleaned uses that folder (its run.json names it)."""
    project = Layout(folder.parents[1] if folder_member == "data_dir" else folder.parents[2])
    others = []
    if project.runs_dir.is_dir():
        for entry in sorted(project.runs_dir.iterdir()):
            record = read_run_record(entry / "run.json")
            if record is None or record.name in cleaning:
                continue
            used = record.data if folder_member == "data_dir" else record.init
            if Path(used).name == folder.name:
                others.append(record.name)
    if others:
        print(f"{folder} is kept: the runs {', '.join(others)} use it")
        return
    for path in paths:
        if path.is_file():
            path.unlink()
            print(f"{path} removed")


def runs_tasks(argv: list[str]) -> bool:
    """Whether doit's command line ``argv`` (without the program) runs tasks: its first word is
    no other doit command than ``run`` (doit's default)."""
    from doit.doit_cmd import DoitMain

    commands = {command.get_name() for command in DoitMain.DOIT_CMDS}
    return not argv or argv[0] not in commands or argv[0] == "run"


def plan() -> Plan:
    """The plan of the command line's runs; exits with one line on a bad one. When doit is to
    run tasks, the locks of the runs are taken now, before it starts the processes that run
    them (``-n N``), which then share them."""
    try:
        planned = Plan(runs_asked(command_line_variables()))
        if runs_tasks(sys.argv[1:]):
            take_claimed()
        return planned
    except BertError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
