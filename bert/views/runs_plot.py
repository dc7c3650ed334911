"""The picture of ``python -m bert runs --plot FILE``: every run's test MLM loss after each
epoch, one line per run, against the optimum of its test set (one dashed line per distinct
optimum: runs on the same data share it)."""

from __future__ import annotations

from pathlib import Path

from bert.views.plots import new_figure, save
from bert.views.runs import RunStatus, curves, optima


def draw_runs(runs: list[RunStatus], out: str | Path) -> Path:
    """Draw the runs' test MLM curves into ``out`` (its suffix chooses PNG or SVG)."""
    if Path(out).suffix not in (".png", ".svg"):
        from bert.errors import OutputError

        raise OutputError(f"--plot {out}: name a .png or .svg file")
    figure = new_figure((10.0, 6.0))
    ax = figure.subplots()
    for name, points in curves(runs).items():
        if points:
            steps, losses = zip(*points, strict=True)
            ax.plot(steps, losses, "o-", markersize=3, linewidth=1.2, label=name)
    for label, value in optima(runs).items():
        ax.axhline(value, color="tab:green", linestyle="--", linewidth=1.0,
                   label=f"Bayes-optimal {label}")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("test MLM loss (nats per masked token)")
    ax.set_title(f"{len(runs)} runs: test MLM loss at the end of each epoch")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper right", ncols=2 if len(runs) > 12 else 1)
    return save(figure, out)[0]
