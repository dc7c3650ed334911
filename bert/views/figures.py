"""What every picture is drawn with: a figure of a given size in inches on the Agg canvas (no
pyplot), the colours the pictures share, the width of a text as the renderer draws it, and the
saving of a figure as PNG or SVG.

matplotlib is an optional extra (``pip install -e '.[plots]'``), imported only when a picture is
drawn. A picture's size in pixels follows from its content alone (no tight bounding box), and
the files carry no timestamp, version or random id, so the same run gives the same bytes.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from bert.storage.atomic import replacing

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

DPI = 100  # pixels per inch of every picture; a picture is int(inches * DPI) pixels wide and
# high (Agg drops the fraction), and every size in inches of a picture is exact in binary
SVG_SALT = "bert-from-scratch"  # the salt of the ids in an SVG (else drawn at random each time)
METADATA = {"png": {"Software": None}, "svg": {"Creator": None, "Date": None}}  # none that varies

# Colours (matplotlib's default cycle), shared by every picture.
TEST, SMOOTH, RAW, EPOCH_MEAN = "tab:orange", "tab:blue", "0.8", "navy"
RIGHT, WRONG, MASKED, HEADER = "tab:green", "0.15", "tab:red", "0.4"


def new_figure(inches: tuple[float, float], layout: str | None = "constrained") -> Figure:
    """An empty figure of ``inches`` (width, height) drawn by the Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=inches, dpi=DPI, layout=layout)
    FigureCanvasAgg(figure)
    return figure


def save(figure: Figure, *paths: str | Path) -> list[Path]:
    """Write the figure to each path atomically, in the format its suffix names (``.png`` or
    ``.svg``), without metadata or ids that would vary between runs."""
    import matplotlib

    written = []
    for path in map(Path, paths):
        kind = path.suffix.removeprefix(".")
        if kind not in METADATA:
            raise ValueError(f"{path}: not a format the plots stage writes ({', '.join(METADATA)})")
        with replacing(path) as tmp, matplotlib.rc_context({"svg.hashsalt": SVG_SALT}):
            figure.savefig(tmp, format=kind, dpi=DPI, metadata=METADATA[kind])
        log.info("picture written to %s", path)
        written.append(path)
    return written


def text_inches(figure: Figure, text: str, **style) -> float:
    """The width of ``text`` in ``style`` as Agg renders it, in inches."""
    probe = figure.text(0, 0, text, parse_math=False, **style)
    width = probe.get_window_extent(figure.canvas.get_renderer()).width / DPI
    probe.remove()
    return width
