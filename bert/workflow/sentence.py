"""The sentence task of a run (``data.sentence_task``: nsp, sop or none) and the names of its
scores, for every stage that scores, stores or shows them.

A run's sentence scores are named after its task: ``test_nsp_accuracy`` under NSP,
``test_sop_accuracy`` under SOP (the same head, ``cls.seq_relationship``, on the other task's
labels), and none at all without a sentence task, as the optimum's keys are
(``bayes_<task>_accuracy``, ``bert.data.examples.optimum``). Files written before the tasks
existed hold NSP scores without saying so: :func:`task_of` reads them as NSP.
"""

from __future__ import annotations

from collections.abc import Mapping

SENTENCE_TASKS = ("nsp", "sop", "none")  # the values of data.sentence_task
LABELLED_TASKS = ("nsp", "sop")  # the tasks with a sentence label, which the sentence head learns


def has_sentence_label(task: str) -> bool:
    """Whether examples of ``task`` carry a sentence label (``nsp_labels``)."""
    return task in LABELLED_TASKS


def task_name(task: str) -> str:
    """How a task is written in tables and pictures: NSP, SOP."""
    return task.upper()


def score_keys(task: str) -> tuple[str, ...]:
    """The scores measured on examples of ``task``: the MLM loss and accuracy, then the
    sentence task's loss and accuracy (``<task>_loss``, ``<task>_accuracy``) when it has a
    label."""
    sentence = (f"{task}_loss", f"{task}_accuracy") if has_sentence_label(task) else ()
    return ("mlm_loss", "mlm_accuracy", *sentence)


def task_of(document: Mapping) -> str:
    """The sentence task a metrics document (or a dataset file's attributes) was made for; one
    written before the tasks existed is NSP."""
    return document.get("sentence_task", "nsp")
