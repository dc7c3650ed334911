"""The picture ``predictions``: for a few test examples, the input with its masked positions, the
true tokens and the model's top-3 with their probabilities, laid out by the widths the renderer
measures, so that no two pieces of text overlap whatever the tokens. The guesses are those
``python -m bert predict`` prints (``bert.views.predictions``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bert.views.figures import HEADER, MASKED, RIGHT, WRONG, new_figure, save, text_inches
from bert.views.inputs import first_masked_examples, load_model
from bert.views.predictions import TOP_K, ExampleGuesses, masked_predictions, nsp_line

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PREDICTION_EXAMPLES = 4  # the first test examples with a masked position are shown
PREDICTIONS_WIDTH = 11.0  # inches, at least (wider when the table of guesses needs it)
LINE = 0.1875  # inches per line of text in predictions.png
MARGIN = 0.25  # inches around the text of predictions.png
INDENT = 0.25  # inches before an example's input tokens in predictions.png
COLUMN_GAP = 0.25  # inches between the columns of the table in predictions.png
FONT_SIZE = 9  # points, of the text of predictions.png

STYLES = {  # of the text of predictions.png, each at FONT_SIZE, in the colours of KEY
    "title": {"family": "sans-serif", "weight": "bold", "color": WRONG},
    "key": {"family": "sans-serif", "color": WRONG},
    "heading": {"family": "monospace", "weight": "bold", "color": WRONG},
    "token": {"family": "monospace", "color": WRONG},
    "masked": {"family": "monospace", "weight": "bold", "color": MASKED},
    "right": {"family": "monospace", "weight": "bold", "color": RIGHT},
    "header": {"family": "monospace", "color": HEADER},
}
# What each colour of predictions.png means, written under its title in that colour.
KEY = (
    (("red:", "masked"), ("an input token at a position with an MLM label, where the model "
                          "guesses the original token (it sees [MASK], a random token or the "
                          "original there)", "key")),
    (("green:", "right"), ("a guess that is the true token;", "key"), ("black:", "token"),
     ("the other tokens and guesses;", "key"), ("grey:", "header"),
     ("the headings of the tables", "key")),
)


@dataclass(frozen=True)
class Placed:
    """A piece of text of predictions.png and where it goes."""

    text: str
    x: float  # inches from the left edge to its start (its end when ``align`` is "right")
    line: int  # lines from the top
    style: str  # a key of STYLES
    align: str = "left"


class Page:
    """Lines of text laid out from the top left of a figure, each piece measured as the renderer
    draws it, so that no piece overlaps another whatever its length."""

    def __init__(self, figure: Figure, width: float) -> None:
        self.figure, self.width = figure, width
        self.placed: list[Placed] = []
        self.line, self.x = 0, MARGIN  # where the next piece of the current line goes
        self.widths: dict[tuple[str, str], float] = {}
        self.gap = self.measure("0", "token")  # between pieces: a space of the monospace font

    def measure(self, text: str, style: str) -> float:
        """The width of ``text`` in ``style``, in inches."""
        if (text, style) not in self.widths:
            self.widths[text, style] = text_inches(self.figure, text, fontsize=FONT_SIZE,
                                                   **STYLES[style])
        return self.widths[text, style]

    def flow(self, text: str, style: str, indent: float = MARGIN) -> None:
        """Write ``text`` after what the line holds, a gap apart, or at ``indent`` on the next
        line when it does not fit."""
        width = self.measure(text, style)
        if self.x > indent and self.x + width > self.width - MARGIN:
            self.newline(indent)
        self.placed.append(Placed(text, self.x, self.line, style))
        self.x += width + self.gap

    def cell(self, text: str, style: str, x: float, align: str = "left") -> None:
        """Write ``text`` at ``x`` inches on the current line."""
        self.placed.append(Placed(text, x, self.line, style, align))

    def newline(self, indent: float = MARGIN) -> None:
        self.line, self.x = self.line + 1, indent

    def render(self) -> Figure:
        """Size the figure to the finished lines (those before the current one), draw them."""
        height = 2 * MARGIN + LINE * self.line
        self.figure.set_size_inches(self.width, height)
        for piece in self.placed:
            self.figure.text(piece.x / self.width,
                             1 - (MARGIN + (piece.line + 0.8) * LINE) / height, piece.text,
                             ha=piece.align, fontsize=FONT_SIZE, parse_math=False,
                             **STYLES[piece.style])
        return self.figure


def predictions_figure(results: Sequence[ExampleGuesses]) -> Figure:
    """The page of predictions.png: a title and a key to its colours, then per example its NSP
    line, its input (wrapped, masked positions in red) and a table of the model's guesses."""
    page = Page(new_figure((PREDICTIONS_WIDTH, PREDICTIONS_WIDTH), layout=None),
                PREDICTIONS_WIDTH)
    header = [("pos", "header"), ("input", "header"), ("true", "header"),
              *((f"guess {i + 1}", "header") for i in range(TOP_K))]
    tables = [[[(str(guess.position), "token"), (guess.shown, "token"), (guess.true, "token"),
                *((f"{name} {p:.3f}", "right" if name == guess.true else "token")
                  for name, p in guess.top)] for guess in example.guesses]
              for example in results]  # per example, a row of (text, style) per masked position
    widths = [max(page.measure(*cell) for cell in column)
              for column in zip(header, *(row for rows in tables for row in rows), strict=True)]
    starts = MARGIN + INDENT + np.cumsum([0.0, *(w + COLUMN_GAP for w in widths[:-1])])
    page.width = max(PREDICTIONS_WIDTH, starts[-1] + widths[-1] + MARGIN)

    def table_row(cells: list[tuple[str, str]]) -> None:
        page.cell(*cells[0], starts[0] + widths[0], align="right")  # the position, a number
        for start, cell in zip(starts[1:], cells[1:], strict=True):
            page.cell(*cell, start)
        page.newline()

    page.flow(f"The model's top {TOP_K} guesses at the masked positions of test examples "
              f"{', '.join(str(e.index) for e in results)}", "title")
    for line in KEY:
        page.newline()
        for text, style in line:
            page.flow(text, style, indent=MARGIN + INDENT)
    page.newline()
    for example, rows in zip(results, tables, strict=True):
        page.newline()
        page.flow(f"test example {example.index}.  {nsp_line(example)}", "heading")
        page.newline(MARGIN + INDENT)
        masked = {guess.position for guess in example.guesses}
        for position, token in enumerate(example.tokens):
            page.flow(token, "masked" if position in masked else "token", MARGIN + INDENT)
        page.newline()
        for row in (header, *rows):
            table_row(row)
    return page.render()


def draw_predictions(
    model_path: str | Path, test_path: str | Path, *out: str | Path,
    number: int = PREDICTION_EXAMPLES,
) -> list[Path]:
    """predictions: the model's top-3 at the masked positions of a few test examples."""
    examples = first_masked_examples(test_path, number)
    config, weights = load_model(model_path, examples)
    return save(predictions_figure(masked_predictions(weights, config, examples)), *out)
