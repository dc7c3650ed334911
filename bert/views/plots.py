"""The plots stage: the pictures of a run under ``artifacts/plots/``, as PNG and/or SVG files
(``plots.formats``), one module each:

- ``curves`` (``bert.views.curves_plot``): the losses per step and per epoch against the
  optimum, the test accuracies, the learning rate, the gradient norm, the throughput.
- ``attention`` (``bert.views.attention_plot``): the attention probabilities of one test
  example, every head of every layer.
- ``predictions`` (``bert.views.predictions_plot``): the model's top-3 at the masked positions
  of a few test examples.

Each picture is a record of ``bert.workflow.stages.PICTURES``, drawn on its own; what they are
drawn with is in ``bert.views.figures``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bert.workflow.layout import Layout
from bert.workflow.stages import PICTURES
from bert.workflow.tasks import run_part

if TYPE_CHECKING:
    from bert.workflow.params import Params


def draw(layout: Layout, pictures: Sequence[str], params: Params | None = None) -> list[Path]:
    """Draw the pictures called ``pictures`` (curves, attention, predictions) of a project, as
    their records in ``bert.workflow.stages.PICTURES`` say, in the formats of ``params`` (PNG
    without); return the files written."""
    records = {picture.name: picture for picture in PICTURES}
    return [path for name in pictures for path in run_part(records[name], layout, params)]
