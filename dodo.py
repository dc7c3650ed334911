"""The workflow. ``doit`` runs data -> init -> train -> evaluate -> report -> plots; ``doit list``
lists the tasks; ``doit params=other.yaml`` reads another parameters file.

Each task runs one stage (``python -m bert <stage>``) as its record in
``bert/workflow/stages.py`` describes it: it reruns when, and only when, a file it reads
changes, a file it writes is missing, one of the parameters it reads changes, or the code it runs
changes (comments and docstrings aside: see ``bert.workflow.tasks.code_fingerprint``).
"""

import sys

from doit import get_var
from doit.tools import config_changed

from bert.errors import BertError
from bert.workflow.interrupts import leave_interrupts_to_stages
from bert.workflow.launch import stage_command
from bert.workflow.layout import Layout
from bert.workflow.loader import load_params
from bert.workflow.lock import hold_project_lock
from bert.workflow.report import clean_results
from bert.workflow.stages import STAGES, Stage, stage
from bert.workflow.tasks import STAGE_IO, available, code_fingerprint, keep_output_in_order

DOIT_CONFIG = {
    "default_tasks": [s.name for s in STAGES if s.in_default_run],
    "backend": "sqlite3",  # transactional: a full disk or a kill never leaves it corrupt
    "dep_file": ".doit.db",
    "verbosity": 2,  # show the stages' own output (tables, progress, errors) as it comes
}

PARAMS_FILE = get_var("params", "params.yaml")
LAYOUT = Layout()
try:
    hold_project_lock(LAYOUT.root)  # for the life of this doit; its stages run under it
    PARAMS = load_params(PARAMS_FILE)
    TRAIN_COMMAND = stage_command(PARAMS, PARAMS_FILE)  # under mpiexec for several processes
except BertError as error:
    sys.exit(f"error: {error}")
leave_interrupts_to_stages()
keep_output_in_order()


def stage_task(record: Stage, *command: str) -> dict:
    """The doit task running ``python -m bert <command>`` (default: the record's name)."""
    return {
        "doc": record.doc,
        "actions": [[sys.executable, "-m", "bert", *(command or (record.name,)),
                     "--params", PARAMS_FILE]],
        "file_dep": LAYOUT.files(record.inputs, PARAMS),
        "targets": LAYOUT.files(record.outputs, PARAMS),
        "uptodate": [config_changed({"params": PARAMS.subset(record.reads),
                                     "code": code_fingerprint(record.modules)})],
        "clean": True,
        "io": STAGE_IO,
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
    # clean removes the results file only if the report stage wrote it
    return {**stage_task(stage("report")), "clean": [(clean_results, [LAYOUT.results(PARAMS)])]}


def task_export():
    return stage_task(stage("export"))


def task_plots():
    """Draw the pictures of the run under artifacts/plots/ (needs matplotlib).

    One sub-task per picture (``plots:curves``, …), so each is redrawn only when its own inputs
    change; ``doit list`` shows the first line above."""
    plots = stage("plots")
    if not available(plots):  # one task that says why, writes nothing and is then up to date
        return stage_task(plots)
    return ({**stage_task(picture, "plots", picture.name),
             "name": picture.name} for picture in plots.parts)
