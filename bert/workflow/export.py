"""The export stage: the trained model as a transformers directory."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bert.storage.interop import export_model
from bert.workflow.layout import Layout
from bert.workflow.provenance import check_trained_model

if TYPE_CHECKING:  # the values are read, the module's code does not run
    from bert.workflow.params import Params


def export(params: Params, layout: Layout = Layout()) -> Path:
    """Write ``artifacts/export/`` from ``artifacts/model.h5``, once it is checked to be the
    trained model of ``params``."""
    check_trained_model(params, layout)
    return export_model(layout.model_weights, layout.export_dir)
