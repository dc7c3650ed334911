"""The picture ``curves``: the MLM and sentence-task (NSP or SOP) losses per step (smoothed)
and per epoch on the training and the test set, beside the Bayes-optimal scores and the
baselines (without a sentence task, a note in the sentence panel); the test accuracies; the
learning rate; the gradient norm; the throughput. The per-epoch numbers are those
``python -m bert curves`` prints (``bert.views.curves``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bert.data.loading import load_optimum
from bert.views.curves import epoch_spans, load_history, moving_average, smoothing_window
from bert.views.figures import EPOCH_MEAN, RAW, SMOOTH, TEST, new_figure, save
from bert.views.inputs import sentence_task
from bert.workflow.sentence import has_sentence_label, task_name

CURVES_INCHES = (13.0, 13.5)  # width, height of curves.png: three rows of two panels
# line colour and style of each optimum and baseline
REFERENCES = {"Bayes-optimal": ("tab:green", "--"), "unigram": ("tab:purple", ":"),
              "uniform": ("0.35", "-."), "chance": ("0.35", "-."),
              "topics only": ("tab:olive", ":")}


def _reference(ax, name: str, value: float | None, what: str = "") -> None:
    """A horizontal line at an optimum or a baseline, labelled with its name and value; none
    for a missing value (text data has no optimum)."""
    if value is None:
        return
    color, style = REFERENCES[name]
    ax.axhline(value, color=color, linestyle=style, linewidth=1.3,
               label=f"{name}{' ' + what if what else ''} {value:.3f}")


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
