"""The results table the evaluate stage prints: the model beside the optimum and the baselines,
then its sentence head on the NSP and SOP probe sets."""

from __future__ import annotations

from collections.abc import Mapping

from bert.workflow.gap import gap
from bert.workflow.sentence import has_sentence_label, task_name, task_of


def comparison_rows(metrics: Mapping, optimum: Mapping[str, float]) -> list[tuple]:
    """Rows (what, model, Bayes-optimal, unigram, uniform/chance, gap) for the results table.

    The sentence rows are those of the metrics' task (``sentence_task``: NSP, SOP; none
    without one). The gap is how much worse than the optimum the model is
    (``bert.workflow.gap``). Without an optimum (text data) the Bayes-optimal and gap cells are
    None.
    """
    test, train, task = metrics["test"], metrics["train"], task_of(metrics)
    sentence = [
        (f"test {task_name(task)} loss", f"{task}_loss", test,
         optimum.get(f"bayes_{task}_loss"), None, optimum[f"chance_{task}_loss"]),
        (f"test {task_name(task)} accuracy", f"{task}_accuracy", test,
         optimum.get(f"bayes_{task}_accuracy"), None, optimum[f"chance_{task}_accuracy"]),
    ] if has_sentence_label(task) else []
    rows = [
        ("test MLM loss", "mlm_loss", test, optimum.get("bayes_mlm_loss"),
         optimum["unigram_mlm_loss"], optimum["uniform_mlm_loss"]),
        *sentence,
        ("test MLM accuracy", "mlm_accuracy", test, None, None, None),
        ("train MLM loss", "mlm_loss", train, None, None, None),
    ]
    return [(what, scores[key], best, unigram, uniform,
             None if best is None else gap(key, scores[key], best))
            for what, key, scores, best, unigram, uniform in rows]


def probe_rows(probes: Mapping) -> list[tuple]:
    """Rows (what, model, Bayes-optimal, topics only, chance, gap) of the sentence head on each
    probe set (``probes`` of the metrics), accuracy and loss; None where there is nothing
    (topics only has no loss; text data has no optimum)."""
    rows = []
    for probe, part in probes.items():
        scores, optimum = part["scores"], part["optimum"]
        for kind, topics in (("accuracy", optimum.get(f"topic_only_{probe}_accuracy")),
                             ("loss", None)):
            key = f"{probe}_{kind}"
            best = optimum.get(f"bayes_{key}")
            rows.append((f"{task_name(probe)} probe {kind}", scores[key], best, topics,
                         optimum[f"chance_{key}"],
                         None if best is None else gap(key, scores[key], best)))
    return rows


NO_OPTIMUM = ("Bayes-opt and gap: – (text data has no optimum: the distribution that wrote "
              "the text is unknown)")


COMPARISON_HEADER = ("", "model", "Bayes-opt", "unigram", "uniform", "gap")
PROBE_HEADER = ("sentence head", *COMPARISON_HEADER[1:3], "topics", "chance", "gap")


def format_table(rows: list[tuple], header: tuple[str, ...] = COMPARISON_HEADER) -> str:
    """The comparison rows as a fixed-width text table; a note when there is no optimum."""
    lines = [f"{header[0]:<18}" + "".join(f"{h:>11}" for h in header[1:])]
    for what, *values in rows:
        cells = "".join(f"{'-':>11}" if v is None else f"{v:>11.4f}" for v in values)
        lines.append(f"{what:<18}{cells}")
    if all(row[2] is None for row in rows):
        lines.append(NO_OPTIMUM)
    return "\n".join(lines)


def results_table(metrics: Mapping) -> str:
    """The table of the evaluate stage's metrics (``artifacts/metrics.json``), and under it the
    table of the probes when the metrics have them."""
    table = format_table(comparison_rows(metrics, metrics["optimum"]))
    if "probes" not in metrics:
        return table
    return table + "\n\n" + format_table(probe_rows(metrics["probes"]), PROBE_HEADER)
