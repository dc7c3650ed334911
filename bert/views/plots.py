"""The plots stage: the pictures of a run as PNG files under ``artifacts/plots/``.

- ``curves.png``: the MLM and NSP losses per step (smoothed) and per epoch on the training
  and the test set, beside the Bayes-optimal scores and the baselines; the test accuracies;
  the learning rate.
- ``attention.png``: the attention probabilities of one test example, every head of every
  layer, tokens on the axes and padding cut off.
- ``predictions.png``: for a few test examples, the input with its masked positions, the true
  tokens and the model's top-3 with their probabilities.

The numbers come from ``bert.views.text``, which the text commands print. matplotlib is an optional
extra (``pip install -e '.[plots]'``), imported only here and only when a picture is drawn; the
figures are rendered by the non-interactive Agg canvas, without pyplot. A picture's size in
pixels follows from its content alone (no tight bounding box), and the PNG carries no
timestamp or version, so the same run gives the same files.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bert.data.datasets import load_optimum
from bert.storage.atomic import replacing
from bert.views.text import (
    TOP_K,
    ExampleGuesses,
    attention_maps,
    first_masked_examples,
    load_examples,
    load_history,
    load_model,
    masked_predictions,
    moving_average,
    nsp_line,
    prediction_header,
    smoothing_window,
)
from bert.workflow.layout import Layout
from bert.workflow.stages import PICTURES
from bert.workflow.tasks import run_part

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

DPI = 100  # pixels per inch of every picture; a picture is int(inches * DPI) pixels wide and
# high (Agg drops the fraction), and every size in inches below is exact in binary
CURVES_INCHES = (13.0, 9.0)  # width, height of curves.png
ATTENTION_EXAMPLE = 0  # the test example whose attention is drawn
ATTENTION_PANEL = 4.0  # inches per head and per layer in attention.png
ATTENTION_MARGINS = (1.5, 1.5)  # inches added to the panels' width and height
PREDICTION_EXAMPLES = 4  # the first test examples with a masked position are shown
PREDICTIONS_WIDTH = 11.0  # inches
LINE = 0.1875  # inches per line of text in predictions.png
MARGIN = 0.25  # inches above and below the text of predictions.png
TOKENS_PER_LINE = 16  # input tokens per line in predictions.png
FONT_SIZE = 9  # points, of the text of predictions.png
CELL = 8  # characters per input token in predictions.png

# Colours (matplotlib's default cycle) and line styles, shared by every picture.
TRAIN, TEST, SMOOTH, RAW = "tab:blue", "tab:orange", "tab:blue", "0.8"
RIGHT, WRONG, MASKED = "tab:green", "0.15", "tab:red"
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


def save(figure: Figure, path: str | Path) -> Path:
    """Write the figure as a PNG atomically, without metadata that would vary between runs."""
    path = Path(path)
    with replacing(path) as tmp:
        figure.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})
    log.info("picture written to %s", path)
    return path


def _reference(ax, name: str, value: float | None, what: str = "") -> None:
    """A horizontal line at an optimum or a baseline, labelled with its name and value; none
    for a missing value (text data has no optimum)."""
    if value is None:
        return
    color, style = REFERENCES[name]
    ax.axhline(value, color=color, linestyle=style, linewidth=1.3,
               label=f"{name}{' ' + what if what else ''} {value:.3f}")


# --- training curves ---------------------------------------------------------------------------


def draw_curves(history_path: str | Path, test_path: str | Path, out: str | Path) -> Path:
    """curves.png: losses per step and per epoch against the optimum, accuracies, rate."""
    history, optimum = load_history(history_path), load_optimum(test_path)
    per_step, epochs = history["steps"], history["epochs"]
    steps = np.arange(1, len(per_step["loss_total"]) + 1)
    window = smoothing_window(len(steps))
    epoch_steps = [record["step"] for record in epochs]
    figure = new_figure(CURVES_INCHES)
    (mlm, nsp), (accuracy, rate) = figure.subplots(2, 2, sharex=True)
    for ax, what, key, lines in (
        (mlm, "MLM", "mlm", (("Bayes-optimal", "bayes_mlm_loss"),
                             ("unigram", "unigram_mlm_loss"), ("uniform", "uniform_mlm_loss"))),
        (nsp, "NSP", "nsp", (("Bayes-optimal", "bayes_nsp_loss"),
                             ("chance", "chance_nsp_loss"))),
    ):
        if window > 1:
            ax.plot(steps, per_step[f"loss_{key}"], color=RAW, linewidth=0.6,
                    label="training batch")
        ax.plot(steps, moving_average(per_step[f"loss_{key}"], window), color=SMOOTH,
                linewidth=1.5,
                label=f"training, mean of {window} steps" if window > 1 else "training batch")
        ax.plot(epoch_steps, [r[f"train_{key}_loss"] for r in epochs], "o", color=TRAIN,
                markeredgecolor="white", label="training set, epoch mean")
        ax.plot(epoch_steps, [r[f"test_{key}_loss"] for r in epochs], "s-", color=TEST,
                label="test set, end of epoch")
        for name, optimum_key in lines:
            _reference(ax, name, optimum.get(optimum_key))
        bottom, top = ax.get_ylim()
        lowest = min(optimum[k] for _, k in lines if k in optimum)
        ax.set_ylim(min(bottom, lowest - 0.04 * (top - lowest)), top)  # the floor off the edge
        ax.set_title(f"{what} loss")
        ax.set_ylabel(f"{what} loss (nats per {'masked token' if key == 'mlm' else 'example'})")
    accuracy.plot(epoch_steps, [r["test_nsp_accuracy"] for r in epochs], "s-", color=TEST,
                  label="NSP, test set")
    accuracy.plot(epoch_steps, [r["test_mlm_accuracy"] for r in epochs], "^-",
                  color="tab:brown", label="MLM, test set")
    _reference(accuracy, "Bayes-optimal", optimum.get("bayes_nsp_accuracy"), "NSP")
    _reference(accuracy, "topics only", optimum.get("topic_only_nsp_accuracy"), "NSP")
    _reference(accuracy, "chance", optimum["chance_nsp_accuracy"], "NSP")
    accuracy.set_ylim(0, 1.02)
    accuracy.set_title("Test accuracy at the end of each epoch")
    accuracy.set_ylabel("accuracy")
    rate.plot(steps, per_step["learning_rate"], color="tab:red")
    rate.set_title("Learning rate")
    rate.set_ylabel("learning rate")
    rate.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    batches = history.get("batches_per_epoch") or max(len(steps), 1)
    for ax in (mlm, nsp, accuracy, rate):
        ax.grid(alpha=0.3)
        ax.set_xlim(0, max(len(steps), 1) * 1.015)  # room for the last epoch's markers
    for ax in (mlm, nsp, accuracy):
        ax.legend(fontsize=8, loc="best", framealpha=0.9)
    for ax in (accuracy, rate):
        ax.set_xlabel("optimizer step")
    for ax in (mlm, nsp):
        top = ax.secondary_xaxis("top", functions=(lambda s: s / batches,
                                                   lambda e: e * batches))
        top.set_xlabel("epoch")
    against = ("the optimum" if "bayes_mlm_loss" in optimum else
               "the baselines (text data has no optimum: the distribution that wrote it is "
               "unknown)")
    figure.suptitle(f"Training against {against} ({len(epochs)} epochs of {batches} steps)")
    return save(figure, out)


# --- attention maps ----------------------------------------------------------------------------


def attention_inches(num_layers: int, num_heads: int) -> tuple[float, float]:
    """The size of attention.png: one panel per head (columns) and per layer (rows)."""
    return (num_heads * ATTENTION_PANEL + ATTENTION_MARGINS[0],
            num_layers * ATTENTION_PANEL + ATTENTION_MARGINS[1])


def draw_attention(
    model_path: str | Path, test_path: str | Path, out: str | Path,
    index: int = ATTENTION_EXAMPLE,
) -> Path:
    """attention.png: every head of every layer on test example ``index``."""
    from matplotlib.colors import PowerNorm

    examples = load_examples(test_path, [index])
    config, weights = load_model(model_path, examples)
    probs = attention_maps(weights, config, examples)  # (L, NH, T', T')
    tokens, masked = examples.tokens(0), set(examples.masked(0).tolist())
    num_layers, num_heads, n, _ = probs.shape
    figure = new_figure(attention_inches(num_layers, num_heads))
    axes = figure.subplots(num_layers, num_heads, squeeze=False, sharex=True, sharey=True)
    font = min(8.0, 0.75 * ATTENTION_PANEL * 72 / n)  # points: the labels may not overlap
    norm = PowerNorm(gamma=0.5, vmin=0.0, vmax=1.0)  # a square-root scale shows small weights
    for (layer, head), ax in np.ndenumerate(axes):
        image = ax.imshow(probs[layer, head], norm=norm, cmap="viridis",
                          interpolation="nearest")
        ax.set_title(f"layer {layer}, head {head}", fontsize=10)
        ax.set_xticks(range(n), tokens, rotation=90, fontsize=font)
        ax.set_yticks(range(n), tokens, fontsize=font)
        ax.tick_params(length=2, pad=1)
        for labels in (ax.get_xticklabels(), ax.get_yticklabels()):
            for position, label in enumerate(labels):
                if position in masked:
                    label.set_color(MASKED)
    figure.colorbar(image, ax=axes, shrink=0.8, label="attention probability (square-root scale)")
    figure.supxlabel("key: the token attended to")
    figure.supylabel("query: the token attending")
    length = examples.arrays["input_ids"].shape[1]
    cut = f" of {length}, padding cut off" if n < length else ""
    figure.suptitle(f"Attention on test example {examples.indices[0]} ({n} tokens{cut})\n"
                    "red: positions with an MLM label")
    return save(figure, out)


# --- masked predictions ------------------------------------------------------------------------


def prediction_lines(examples: Sequence[ExampleGuesses]) -> int:
    """The lines of text in predictions.png: a title, then per example its NSP line, its input,
    a table header and one row per masked position, examples separated by a blank line."""
    return 1 + sum(3 + math.ceil(len(e.tokens) / TOKENS_PER_LINE) + len(e.guesses)
                   for e in examples)


def predictions_inches(examples: Sequence[ExampleGuesses]) -> tuple[float, float]:
    """The size of predictions.png: a fixed width, a height that fits its lines."""
    return PREDICTIONS_WIDTH, 2 * MARGIN + LINE * prediction_lines(examples)


def _char_width(figure: Figure) -> float:
    """The advance of one character of the monospace font, in inches, as Agg renders it
    (hinting rounds it to whole pixels)."""
    probe = figure.text(0, 0, "0" * 100, fontsize=FONT_SIZE, family="monospace")
    width = probe.get_window_extent(figure.canvas.get_renderer()).width / 100 / DPI
    probe.remove()
    return width


def draw_predictions(
    model_path: str | Path, test_path: str | Path, out: str | Path,
    number: int = PREDICTION_EXAMPLES,
) -> Path:
    """predictions.png: the model's top-3 at the masked positions of a few test examples."""
    examples = first_masked_examples(test_path, number)
    config, weights = load_model(model_path, examples)
    results = masked_predictions(weights, config, examples)
    inches = predictions_inches(results)
    figure = new_figure(inches, layout=None)
    char = _char_width(figure)
    line = 0

    def text(column: float, value: str, **style) -> None:
        """Write ``value`` at a character column of the current line."""
        x = (MARGIN + column * char) / inches[0]
        y = 1 - (MARGIN + (line + 0.8) * LINE) / inches[1]
        figure.text(x, y, value, **{"fontsize": FONT_SIZE, "family": "monospace", **style})

    text(0, f"The model's top {TOP_K} guesses at the masked positions of test examples "
            f"{', '.join(map(str, examples.indices))} (green: the true token)",
         weight="bold", family="sans-serif")
    line += 1
    header = prediction_header()
    columns = [header.index(f"guess {i + 1}") for i in range(TOP_K)]
    for row, example in enumerate(results):
        text(0, f"test example {example.index}.  {nsp_line(example)}", weight="bold")
        line += 1
        masked = set(examples.masked(row).tolist())
        for position, token in enumerate(example.tokens):
            if position and position % TOKENS_PER_LINE == 0:
                line += 1
            column = 2 + (position % TOKENS_PER_LINE) * CELL
            text(column, token, color=MASKED if position in masked else WRONG,
                 weight="bold" if position in masked else "normal")
        line += 1
        text(0, header, color="0.4")
        line += 1
        for guess in example.guesses:
            text(0, f"{guess.position:>4}  {guess.shown:<7} {guess.true:<7}")
            for column, (name, p) in zip(columns, guess.top, strict=True):
                right = name == guess.true
                text(column, f"{name} {p:.3f}", color=RIGHT if right else WRONG,
                     weight="bold" if right else "normal")
            line += 1
        line += 1
    return save(figure, out)


# --- the stage ---------------------------------------------------------------------------------


def draw(layout: Layout, pictures: Sequence[str]) -> list[Path]:
    """Draw the pictures called ``pictures`` (curves, attention, predictions) of a project, as
    their records in ``bert.workflow.stages.PICTURES`` say."""
    records = {picture.name: picture for picture in PICTURES}
    return [run_part(records[name], layout) for name in pictures]
