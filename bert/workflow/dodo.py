"""The doit tasks of the workflow; a project's ``dodo.py`` imports them (``python -m bert
init-project DIR`` writes one). ``doit`` runs data -> init -> train -> evaluate -> report -> plots
for the run of ``params.yaml``; ``doit section.key=value`` for another run with that key changed,
``doit params=FILE`` for another parameters file, ``doit sweep=FILE -n 2`` for every run of a
sweep, two at a time. ``doit list`` lists the tasks, ``python -m bert runs`` the runs. Which runs
and which tasks: ``bert.workflow.plan``. See docs/workflow.md and docs/experiments.md.
"""

from bert.workflow.interrupts import leave_interrupts_to_stages

leave_interrupts_to_stages()  # first: Ctrl-C stops doit wherever it is (a stage stops first)

from bert.workflow.plan import DOIT_CONFIG, plan  # noqa: E402 (doit reads DOIT_CONFIG)
from bert.workflow.tasks import keep_output_in_order  # noqa: E402

__all__ = ["DOIT_CONFIG", "task_data", "task_init", "task_train", "task_evaluate", "task_report",
           "task_plots", "task_export"]

keep_output_in_order()
PLAN = plan()  # the runs the command line asks for (one line and exit 2 on a bad one)


def task_data():
    """Draw the synthetic language or read the text; write the data sets."""
    yield from PLAN.shared("data")


def task_init():
    """Initialize the model's weights as transformers does."""
    yield from PLAN.shared("init")


def task_train():
    """Train each run, resuming from its newest valid checkpoint."""
    yield from PLAN.per_run("train")


def task_evaluate():
    """Score each trained model against the optimum and print the table."""
    yield from PLAN.per_run("evaluate")


def task_report():
    """Write each run's results JSON."""
    yield from PLAN.per_run("report")


def task_plots():
    """Draw each run's pictures (needs matplotlib)."""
    yield from PLAN.plots()


def task_export():
    """Export each trained model as a transformers directory (not in the default run)."""
    yield from PLAN.per_run("export")
