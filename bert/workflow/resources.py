"""Refusing parameters whose stages cannot fit in the machine's memory, before anything runs.

The estimates are rough upper bounds of the largest arrays each stage holds at once, made from
the model's and the data's sizes (``bert.core.costs``), so that parameters that cannot run are
refused with one line rather than by a MemoryError deep inside a stage.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from bert.core.costs import activation_bytes, weights_bytes
from bert.storage.memory import gib, machine_bytes
from bert.workflow.params import bert_config

if TYPE_CHECKING:
    from bert.workflow.params import Params


def memory_problems(params: Params) -> Iterator[tuple[str, str]]:
    """Stages whose estimated peak memory exceeds the machine's, as ``(what, message)``; the
    message names the keys behind the largest part of the estimate.

    Rough upper estimates of the largest arrays each stage holds at once (``8`` bytes a float64,
    ``itemsize`` for the model's dtype). Text data has no synthetic language, and the size of
    its sets follows from the text: the data stage estimates that from the files before reading
    them.
    """
    d, t = params.data, params.training
    k, c, seq = d.num_topics, d.num_content, d.sequence_length
    itemsize = 8 if t.dtype == "float64" else 4
    synthetic = d.source == "synthetic"
    examples = (d.num_train_batches + d.num_test_batches) * d.batch_size if synthetic else 0
    sets = "data.num_train_batches, data.num_test_batches or data.batch_size"
    # the (K, C, C) transition table and its working copies, the optimum's messages (at least
    # one example's (T, K, C) forward and backward arrays)
    language = 3 * k * c * c * 8 + 3 * max(256e6, 2 * seq * k * c * 8) if synthetic else 0
    config = bert_config(params)
    weights = weights_bytes(config, itemsize)
    model = "the model: sizes or data.vocab_size"
    stages = {  # per stage, its parts: (bytes, the keys to lower)
        "data": [(language, "data.num_topics or data.vocab_size"),
                 (examples * seq * 16, sets)],
        # weights, gradients, two AdamW moments, a batch's activations, the data in memory
        "train": [(4 * weights, model),
                  (2 * activation_bytes(config, d.batch_size, seq, itemsize),
                   "data.batch_size, data.sequence_length or the model: sizes"),
                  (examples * seq * 8, sets)],
        "evaluate": [(weights, model),
                     (activation_bytes(config, params.evaluation.batch_size, seq, itemsize),
                      "evaluation.batch_size or the model: sizes"),
                     (examples * seq * 8, sets)],
    }
    for stage, parts in stages.items():
        need = sum(size for size, _ in parts)
        if need > machine_bytes():
            keys = max(parts, key=lambda part: part[0])[1]
            yield f"the {stage} stage", (f"needs ~{gib(need)} GiB; the machine has "
                                         f"{gib(machine_bytes())}; lower {keys}")
