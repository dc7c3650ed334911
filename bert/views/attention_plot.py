"""The picture ``attention``: the attention probabilities of one test example, every head of
every layer, tokens on the axes and padding cut off; the picture grows with the sequence, up to
a window of ``ATTENTION_WINDOW`` tokens, so that its labels keep their size. The probabilities
are those ``python -m bert attention`` prints (``bert.views.attention``).

Shape letters: ``L`` layers, ``NH`` heads, ``T'`` the tokens of the example without its padding.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from bert.views.attention import attention_maps, attention_window
from bert.views.figures import MASKED, new_figure, save, text_inches
from bert.views.inputs import load_examples, load_model

ATTENTION_EXAMPLE = 0  # the test example whose attention is drawn
ATTENTION_PANEL = 4.0  # inches: the least width and height of a panel (one head of one layer)
ATTENTION_WINDOW = 64  # tokens at most on each axis of attention.png; more are a window of them
TOKEN_FONT = 6.75  # points of the token labels of attention.png (9.375 pixels at 100 dpi)
TOKEN_CELL = 0.125  # inches per token along the axes of attention.png: a label and a gap
# inches of attention.png around and between its panels, besides the token labels: for the
# title above, the name of an axis left and below, the colour bar right, and the title of a
# panel between two rows
ROOM_TITLE, ROOM_AXIS, ROOM_COLORBAR, GAP_ROW, GAP_COLUMN = 1.0, 0.5, 1.25, 0.375, 0.25


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
