"""The data stage: the train and test sets the ``data:`` parameters describe, under ``data/``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bert.data.datasets import TEXT_PHASES, make_datasets
from bert.workflow.layout import Layout
from bert.workflow.progress import phase_bar

if TYPE_CHECKING:  # the values are read, the module's code does not run
    from bert.workflow.params import Params


def make_data(params: Params, layout: Layout) -> tuple[Path, Path]:
    """Write ``data/train.h5``, ``data/test.h5`` and the probe sets ``data/probe_nsp.h5`` and
    ``data/probe_sop.h5`` (from ``data.text_files`` under the project folder for text data, with
    a progress bar over its phases); return the train and test paths."""
    if params.data.source != "text":
        return make_datasets(params.data, layout.data_dir, layout.root)
    with phase_bar(params.logging.progress_bar, "data", TEXT_PHASES) as begin:
        return make_datasets(params.data, layout.data_dir, layout.root, begin)
