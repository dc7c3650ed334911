"""The workflow. ``doit`` runs data -> init -> train -> evaluate -> report -> plots; ``doit list``
lists the tasks; ``doit params=other.yaml`` reads another parameters file.

Each task runs one stage (``python -m bert <stage>``) and declares the files it reads (including
the package modules it runs), the files it writes, and the parameters it reads, so that it reruns
when, and only when, one of them changes. The stages themselves live in ``bert/stages.py``.
"""

import sys

from doit import get_var
from doit.tools import config_changed

from bert.errors import ParamsError
from bert.workflow.launch import stage_command
from bert.workflow.layout import Layout
from bert.workflow.params import load_params
from bert.workflow.stages import (
    PICTURES,
    STAGES,
    Stage,
    leave_interrupts_to_stages,
    module_files,
    plots_available,
    stage,
)

DOIT_CONFIG = {
    "default_tasks": [s.name for s in STAGES if s.in_default_run],
    "backend": "json",  # safe everywhere (unlike dbm); the state lives in .doit.json
    "dep_file": ".doit.json",
    "verbosity": 2,  # show the stages' own output (tables, progress, errors) as it comes
}

PARAMS_FILE = get_var("params", "params.yaml")
try:
    PARAMS = load_params(PARAMS_FILE)
    TRAIN_COMMAND = stage_command(PARAMS, PARAMS_FILE)  # under mpiexec for several processes
except ParamsError as error:
    sys.exit(f"error: {error}")
LAYOUT = Layout()
leave_interrupts_to_stages()


def stage_task(s: Stage, command: tuple[str, ...] = (), parameters: str = "") -> dict:
    """The doit task running stage ``s`` as ``python -m bert <command>`` (default: its name),
    rerun when ``PARAMS.stage_params(parameters)`` (default: its name) changes."""
    return {
        "doc": s.doc,
        "actions": [[sys.executable, "-m", "bert", *(command or (s.name,)),
                     "--params", PARAMS_FILE]],
        "file_dep": [*LAYOUT.files(s.inputs, PARAMS), *module_files(s.module)],
        "targets": LAYOUT.files(s.outputs, PARAMS),
        "uptodate": [config_changed(PARAMS.stage_params(parameters or s.name))],
        "clean": True,
    }


def task_data():
    return stage_task(stage("data"))


def task_init():
    return stage_task(stage("init"))


def task_train():
    return {**stage_task(stage("train")), "actions": [TRAIN_COMMAND]}


def task_evaluate():
    return stage_task(stage("evaluate"))


def task_report():
    return stage_task(stage("report"))


def task_export():
    return stage_task(stage("export"))


def task_plots():
    """Draw the pictures of the run under artifacts/plots/ (needs matplotlib): one sub-task
    per picture (``plots:curves``, …), so each is redrawn only when its own inputs change."""
    if not plots_available():  # one task that says why, writes nothing and is then up to date
        return {**stage_task(stage("plots")), "file_dep": module_files("bert.workflow.stages"),
                "targets": [], "clean": []}
    return ({**stage_task(picture, ("plots", picture.name), "plots"), "name": picture.name}
            for picture in PICTURES)
