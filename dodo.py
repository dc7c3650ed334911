"""The workflow. ``doit`` runs data -> init -> train -> evaluate -> report; ``doit list`` lists
the tasks; ``doit params=other.yaml`` reads another parameters file.

Each task runs one stage (``python -m bert <stage>``) and declares the files it reads (including
the package modules it runs), the files it writes, and the parameters it reads, so that it reruns
when, and only when, one of them changes. The stages themselves live in ``bert/stages.py``.
"""

import sys

from doit import get_var
from doit.tools import config_changed

from bert.errors import ParamsError
from bert.layout import Layout
from bert.params import load_params
from bert.stages import STAGES, leave_interrupts_to_stages, module_files, stage

DOIT_CONFIG = {
    "default_tasks": [s.name for s in STAGES],
    "backend": "json",  # safe everywhere (unlike dbm); the state lives in .doit.json
    "dep_file": ".doit.json",
    "verbosity": 2,  # show the stages' own output (tables, progress, errors) as it comes
}

PARAMS_FILE = get_var("params", "params.yaml")
try:
    PARAMS = load_params(PARAMS_FILE)
except ParamsError as error:
    sys.exit(f"error: {error}")
LAYOUT = Layout()
leave_interrupts_to_stages()


def stage_task(name: str) -> dict:
    """The doit task of stage ``name``."""
    s = stage(name)
    return {
        "doc": s.doc,
        "actions": [[sys.executable, "-m", "bert", name, "--params", PARAMS_FILE]],
        "file_dep": [*LAYOUT.files(s.inputs, PARAMS), *module_files(s.module)],
        "targets": LAYOUT.files(s.outputs, PARAMS),
        "uptodate": [config_changed(PARAMS.stage_params(name))],
        "clean": True,
    }


def task_data():
    return stage_task("data")


def task_init():
    return stage_task("init")


def task_train():
    return stage_task("train")


def task_evaluate():
    return stage_task("evaluate")


def task_report():
    return stage_task("report")
