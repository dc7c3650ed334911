"""The plots stage: the pictures of a run under ``artifacts/plots/``, as PNG and/or SVG files
(``plots.formats``).

- ``curves``: the MLM and sentence-task (NSP or SOP) losses per step (smoothed) and per epoch on
  the training and the test set, beside the Bayes-optimal scores and the baselines (without a
  sentence task, a note in the sentence panel); the test accuracies; the learning rate; the
  gradient norm; the throughput.
- ``attention``: the attention probabilities of one test example, every head of every layer,
  tokens on the axes and padding cut off; the picture grows with the sequence, up to a window of
  ``ATTENTION_WINDOW`` tokens, so that its labels keep their size.
- ``predictions``: for a few test examples, the input with its masked positions, the true tokens
  and the model's top-3 with their probabilities, laid out by the widths the renderer measures,
  so that no two pieces of text overlap whatever the tokens.

The numbers come from ``bert.views.text``, which the text commands print. matplotlib is an optional
extra (``pip install -e '.[plots]'``), imported only here and only when a picture is drawn; the
figures are rendered without pyplot. A picture's size in pixels follows from its content alone
(no tight bounding box), and the files carry no timestamp, version or random id, so the same run
gives the same bytes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bert.data.datasets import load_optimum
from bert.storage.atomic import replacing
from bert.views.text import (
    TOP_K,
    ExampleGuesses,
    attention_maps,
    attention_window,
    epoch_spans,
    first_masked_examples,
    load_examples,
    load_history,
    load_model,
    masked_predictions,
    moving_average,
    nsp_line,
    sentence_task,
    smoothing_window,
)
from bert.workflow.layout import Layout
from bert.workflow.sentence import has_sentence_label, task_name
from bert.workflow.stages import PICTURES
from bert.workflow.tasks import run_part

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from bert.workflow.params import Params

log = logging.getLogger(__name__)

DPI = 100  # pixels per inch of every picture; a picture is int(inches * DPI) pixels wide and
# high (Agg drops the fraction), and every size in inches below is exact in binary
CURVES_INCHES = (13.0, 13.5)  # width, height of curves.png: three rows of two panels
ATTENTION_EXAMPLE = 0  # the test example whose attention is drawn
ATTENTION_PANEL = 4.0  # inches: the least width and height of a panel (one head of one layer)
ATTENTION_WINDOW = 64  # tokens at most on each axis of attention.png; more are a window of them
TOKEN_FONT = 6.75  # points of the token labels of attention.png (9.375 pixels at 100 dpi)
TOKEN_CELL = 0.125  # inches per token along the axes of attention.png: a label and a gap
# inches of attention.png around and between its panels, besides the token labels: for the
# title above, the name of an axis left and below, the colour bar right, and the title of a
# panel between two rows
ROOM_TITLE, ROOM_AXIS, ROOM_COLORBAR, GAP_ROW, GAP_COLUMN = 1.0, 0.5, 1.25, 0.375, 0.25
PREDICTION_EXAMPLES = 4  # the first test examples with a masked position are shown
PREDICTIONS_WIDTH = 11.0  # inches, at least (wider when the table of guesses needs it)
LINE = 0.1875  # inches per line of text in predictions.png
MARGIN = 0.25  # inches around the text of predictions.png
INDENT = 0.25  # inches before an example's input tokens in predictions.png
COLUMN_GAP = 0.25  # inches between the columns of the table in predictions.png
FONT_SIZE = 9  # points, of the text of predictions.png
SVG_SALT = "bert-from-scratch"  # the salt of the ids in an SVG (else drawn at random each time)
METADATA = {"png": {"Software": None}, "svg": {"Creator": None, "Date": None}}  # none that varies

# Colours (matplotlib's default cycle) and line styles, shared by every picture.
TEST, SMOOTH, RAW, EPOCH_MEAN = "tab:orange", "tab:blue", "0.8", "navy"
RIGHT, WRONG, MASKED, HEADER = "tab:green", "0.15", "tab:red", "0.4"
REFERENCES = {"Bayes-optimal": ("tab:green", "--"), "unigram": ("tab:purple", ":"),
              "uniform": ("0.35", "-."), "chance": ("0.35", "-."),
              "topics only": ("tab:olive", ":")}


# --- common ------------------------------------------------------------------------------------


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


def _reference(ax, name: str, value: float | None, what: str = "") -> None:
    """A horizontal line at an optimum or a baseline, labelled with its name and value; none
    for a missing value (text data has no optimum)."""
    if value is None:
        return
    color, style = REFERENCES[name]
    ax.axhline(value, color=color, linestyle=style, linewidth=1.3,
               label=f"{name}{' ' + what if what else ''} {value:.3f}")


# --- training curves ---------------------------------------------------------------------------


def draw_curves(history_path: str | Path, test_path: str | Path, *out: str | Path) -> list[Path]:
    """curves: losses per step and per epoch against the optimum, accuracies, learning rate,
    gradient norm and throughput."""
    from matplotlib.ticker import LogFormatter

    history, optimum = load_history(history_path), load_optimum(test_path)
    task, name = sentence_task(test_path), task_name(sentence_task(test_path))
    per_step, epochs = history["steps"], history["epochs"]
    steps = np.arange(1, len(per_step["loss_total"]) + 1)
    window = smoothing_window(len(steps))
    epoch_steps = [record["step"] for record in epochs]
    spans = np.array(epoch_spans(history)).reshape(-1, 2)  # (epochs, first and last step)
    figure = new_figure(CURVES_INCHES)
    (mlm, nsp), (accuracy, rate), (norm, speed) = figure.subplots(3, 2, sharex=True)

    def per_step_curve(ax, values, what: str) -> None:
        """Every step's value (grey) and its moving mean (blue)."""
        if window > 1:
            ax.plot(steps, values, color=RAW, linewidth=0.6, label=f"{what} batch")
        ax.plot(steps, moving_average(values, window), color=SMOOTH, linewidth=1.5,
                label=f"{what}, mean of {window} steps" if window > 1 else f"{what} batch")

    def epoch_means(ax, values, label: str) -> None:
        """One segment per epoch over the steps it is the mean of."""
        ax.hlines(values, spans[:, 0], spans[:, 1], color=EPOCH_MEAN, linewidth=2.5,
                  label=label)

    panels = [(mlm, "MLM", "mlm", "mlm", (("Bayes-optimal", "bayes_mlm_loss"),
                                          ("unigram", "unigram_mlm_loss"),
                                          ("uniform", "uniform_mlm_loss")))]
    if has_sentence_label(task):  # the per-step history holds the sentence loss as loss_nsp
        panels.append((nsp, name, "nsp", task, (("Bayes-optimal", f"bayes_{task}_loss"),
                                                ("chance", f"chance_{task}_loss"))))
    else:
        nsp.set_axis_off()
        nsp.text(0.5, 0.5, "no sentence task (data.sentence_task: none):\nno sentence loss, "
                 "the pooler and the sentence head untrained", ha="center", va="center",
                 transform=nsp.transAxes)
    for ax, what, step_key, key, lines in panels:
        per_step_curve(ax, per_step[f"loss_{step_key}"], "training")
        epoch_means(ax, [r[f"train_{key}_loss"] for r in epochs],
                    "training set, mean over each epoch")
        ax.plot(epoch_steps, [r[f"test_{key}_loss"] for r in epochs], "s-", color=TEST,
                label="test set, end of epoch")
        for reference, optimum_key in lines:
            _reference(ax, reference, optimum.get(optimum_key))
        bottom, top = ax.get_ylim()
        lowest = min(optimum[k] for _, k in lines if k in optimum)
        ax.set_ylim(min(bottom, lowest - 0.04 * (top - lowest)), top)  # the floor off the edge
        ax.set_title(f"{what} loss")
        ax.set_ylabel(f"{what} loss (nats per {'masked token' if key == 'mlm' else 'example'})")
    if has_sentence_label(task):
        accuracy.plot(epoch_steps, [r[f"test_{task}_accuracy"] for r in epochs], "s-",
                      color=TEST, label=f"{name}, test set")
    accuracy.plot(epoch_steps, [r["test_mlm_accuracy"] for r in epochs], "^-",
                  color="tab:brown", label="MLM, test set")
    if has_sentence_label(task):
        _reference(accuracy, "Bayes-optimal", optimum.get(f"bayes_{task}_accuracy"), name)
        _reference(accuracy, "topics only", optimum.get(f"topic_only_{task}_accuracy"), name)
        _reference(accuracy, "chance", optimum[f"chance_{task}_accuracy"], name)
    accuracy.set_ylim(0, 1.02)
    accuracy.set_title("Test accuracy at the end of each epoch")
    accuracy.set_ylabel("accuracy")
    rate.plot(steps, per_step["learning_rate"], color="tab:red")
    rate.set_title("Learning rate")
    rate.set_ylabel("learning rate")
    rate.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    per_step_curve(norm, per_step["grad_norm"], "training")
    if len(steps):
        norm.set_yscale("log")
        for ticks in (norm.yaxis.set_major_formatter, norm.yaxis.set_minor_formatter):
            ticks(LogFormatter(labelOnlyBase=False))  # 2, 3, 5, not 2×10⁰
    norm.set_title("Gradient norm, before clipping")
    norm.set_ylabel("gradient norm (L2, all parameters)")
    epoch_means(speed, [r["tokens_per_second"] for r in epochs], "mean over each epoch")
    speed.set_ylim(0, 1.15 * max([r["tokens_per_second"] for r in epochs], default=1.0))
    speed.set_title("Training throughput")
    speed.set_ylabel("tokens per second")
    batches = history.get("batches_per_epoch") or max(len(steps), 1)
    losses = [ax for ax, *_ in panels]
    for ax in (*losses, accuracy, rate, norm, speed):
        ax.grid(alpha=0.3)
        ax.set_xlim(0, max(len(steps), 1) * 1.015)  # room for the last epoch's markers
    for ax in (*losses, accuracy, norm, speed):
        ax.legend(fontsize=8, loc="best", framealpha=0.9)
    for ax in (norm, speed):
        ax.set_xlabel("optimizer step")
    for ax in losses:
        top = ax.secondary_xaxis("top", functions=(lambda s: s / batches,
                                                   lambda e: e * batches))
        top.set_xlabel("epoch")
    against = ("the optimum" if "bayes_mlm_loss" in optimum else
               "the baselines (text data has no optimum: the distribution that wrote it is "
               "unknown)")
    figure.suptitle(f"Training against {against} ({len(epochs)} epochs of {batches} steps)")
    return save(figure, *out)


# --- attention maps ----------------------------------------------------------------------------


def attention_panel(tokens: int) -> float:
    """The side of a panel of attention.png in inches: ``TOKEN_CELL`` per token, at least
    ``ATTENTION_PANEL``."""
    return max(ATTENTION_PANEL, tokens * TOKEN_CELL)


def attention_inches(num_layers: int, num_heads: int, tokens: int,
                     label: float) -> tuple[float, float]:
    """The size of attention.png: a square panel per head (columns) and per layer (rows), the
    room around and between them, and token labels ``label`` inches long."""
    panel = attention_panel(tokens)
    return (ROOM_AXIS + label + num_heads * panel + (num_heads - 1) * GAP_COLUMN + ROOM_COLORBAR,
            ROOM_TITLE + num_layers * panel + (num_layers - 1) * GAP_ROW + label + ROOM_AXIS)


def text_inches(figure: Figure, text: str, **style) -> float:
    """The width of ``text`` in ``style`` as Agg renders it, in inches."""
    probe = figure.text(0, 0, text, parse_math=False, **style)
    width = probe.get_window_extent(figure.canvas.get_renderer()).width / DPI
    probe.remove()
    return width


def draw_attention(
    model_path: str | Path, test_path: str | Path, *out: str | Path,
    index: int = ATTENTION_EXAMPLE, first: int = 0,
) -> list[Path]:
    """attention: every head of every layer on test example ``index``; of an example longer
    than ``ATTENTION_WINDOW`` tokens, that many from token ``first`` on both axes."""
    from matplotlib.colors import PowerNorm

    examples = load_examples(test_path, [index])
    config, weights = load_model(model_path, examples)
    probs = attention_maps(weights, config, examples)  # (L, NH, T', T')
    num_layers, num_heads, n, _ = probs.shape
    shown = attention_window(n, ATTENTION_WINDOW, first)
    probs = probs[:, :, shown.start:shown.stop, shown.start:shown.stop]
    tokens = examples.tokens(0)[shown.start:shown.stop]
    masked = {p - shown.start for p in examples.masked(0).tolist() if p in shown}
    figure = new_figure((ATTENTION_PANEL, ATTENTION_PANEL), layout=None)
    label = math.ceil(8 * max(text_inches(figure, t, fontsize=TOKEN_FONT) for t in tokens)) / 8
    width, height = attention_inches(num_layers, num_heads, len(shown), label)
    figure.set_size_inches(width, height)
    panel = attention_panel(len(shown))
    left, bottom = ROOM_AXIS + label, ROOM_AXIS + label  # inches, the panels' lower left corner
    right, top = width - ROOM_COLORBAR, height - ROOM_TITLE
    axes = figure.subplots(num_layers, num_heads, squeeze=False, sharex=True, sharey=True,
                           gridspec_kw={"left": left / width, "right": right / width,
                                        "bottom": bottom / height, "top": top / height,
                                        "wspace": GAP_COLUMN / panel, "hspace": GAP_ROW / panel})
    norm = PowerNorm(gamma=0.5, vmin=0.0, vmax=1.0)  # a square-root scale shows small weights
    for (layer, head), ax in np.ndenumerate(axes):
        image = ax.imshow(probs[layer, head], norm=norm, cmap="viridis",
                          interpolation="nearest")
        ax.set_title(f"layer {layer}, head {head}", fontsize=10)
        ax.set_xticks(range(len(shown)), tokens, rotation=90, fontsize=TOKEN_FONT,
                      parse_math=False)
        ax.set_yticks(range(len(shown)), tokens, fontsize=TOKEN_FONT, parse_math=False)
        ax.tick_params(length=2, pad=1)
        for labels in (ax.get_xticklabels(), ax.get_yticklabels()):
            for position, text in enumerate(labels):
                if position in masked:
                    text.set_color(MASKED)
    # the colour bar: 0.15 inch wide, 0.25 inch right of the panels, 80% of their height
    bar = figure.add_axes(((right + 0.25) / width, (bottom + 0.1 * (top - bottom)) / height,
                           0.15 / width, 0.8 * (top - bottom) / height))
    figure.colorbar(image, cax=bar, label="attention probability (square-root scale)")
    figure.supxlabel("key: the token attended to", y=0.125 / height)
    figure.supylabel("query: the token attending", x=0.125 / width)
    length = examples.arrays["input_ids"].shape[1]
    cut = f" of {length}, padding cut off" if n < length else ""
    window = (f"; tokens {shown.start}–{shown.stop - 1} shown, a window of at most "
              f"{ATTENTION_WINDOW}" if len(shown) < n else "")
    figure.suptitle(f"Attention on test example {examples.indices[0]} ({n} tokens{cut}{window})"
                    "\nred: positions with an MLM label", y=1 - 0.125 / height, va="top")
    return save(figure, *out)


# --- masked predictions ------------------------------------------------------------------------


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


# --- the stage ---------------------------------------------------------------------------------


def draw(layout: Layout, pictures: Sequence[str], params: Params | None = None) -> list[Path]:
    """Draw the pictures called ``pictures`` (curves, attention, predictions) of a project, as
    their records in ``bert.workflow.stages.PICTURES`` say, in the formats of ``params`` (PNG
    without); return the files written."""
    records = {picture.name: picture for picture in PICTURES}
    return [path for name in pictures for path in run_part(records[name], layout, params)]
