"""The results table the evaluate stage prints: the model beside the optimum and the baselines."""

from __future__ import annotations

from collections.abc import Mapping

from bert.workflow.gap import gap


def comparison_rows(metrics: Mapping, optimum: Mapping[str, float]) -> list[tuple]:
    """Rows (what, model, Bayes-optimal, unigram, uniform/chance, gap) for the results table.

    The gap is how much worse than the optimum the model is (``bert.workflow.gap``). Without
    an optimum (text data) the Bayes-optimal and gap cells are None.
    """
    test, train = metrics["test"], metrics["train"]
    rows = [
        ("test MLM loss", "mlm_loss", test, optimum.get("bayes_mlm_loss"),
         optimum["unigram_mlm_loss"], optimum["uniform_mlm_loss"]),
        ("test NSP loss", "nsp_loss", test, optimum.get("bayes_nsp_loss"), None,
         optimum["chance_nsp_loss"]),
        ("test NSP accuracy", "nsp_accuracy", test, optimum.get("bayes_nsp_accuracy"), None,
         optimum["chance_nsp_accuracy"]),
        ("test MLM accuracy", "mlm_accuracy", test, None, None, None),
        ("train MLM loss", "mlm_loss", train, None, None, None),
    ]
    return [(what, scores[key], best, unigram, uniform,
             None if best is None else gap(key, scores[key], best))
            for what, key, scores, best, unigram, uniform in rows]


NO_OPTIMUM = ("Bayes-opt and gap: – (text data has no optimum: the distribution that wrote "
              "the text is unknown)")


def format_table(rows: list[tuple]) -> str:
    """The comparison rows as a fixed-width text table; a note when there is no optimum."""
    header = ("", "model", "Bayes-opt", "unigram", "uniform", "gap")
    lines = [f"{header[0]:<18}" + "".join(f"{h:>11}" for h in header[1:])]
    for what, *values in rows:
        cells = "".join(f"{'-':>11}" if v is None else f"{v:>11.4f}" for v in values)
        lines.append(f"{what:<18}{cells}")
    if all(row[2] is None for row in rows):
        lines.append(NO_OPTIMUM)
    return "\n".join(lines)


def results_table(metrics: Mapping) -> str:
    """The table of the evaluate stage's metrics (``artifacts/metrics.json``)."""
    return format_table(comparison_rows(metrics, metrics["optimum"]))
