"""One example of a dataset file as text: its tokens, segments, masked positions and sentence
label."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from bert.data.datasets import dataset_attrs, load_vocab
from bert.data.examples import LABEL_MEANINGS
from bert.data.tokens import CLS, MASK, SEP, token_name
from bert.data.wordpiece import PREFIX
from bert.views.text import load_examples


def format_example(arrays: dict[str, np.ndarray], index: int,
                   token_name: Callable[[int], str] = token_name,
                   sentence_task: str = "nsp") -> str:
    """Example ``index`` of the arrays of a dataset file of ``sentence_task``, as lines of text,
    tokens written by ``token_name``."""
    ids = arrays["input_ids"][index].astype(int)  # (T,)
    digits = "".join
    lines = [
        " ".join(token_name(t) for t in ids),
        f"token_type_ids  {digits(str(t) for t in arrays['token_type_ids'][index])}",
        f"attention_mask  {digits(str(m) for m in arrays['attention_mask'][index])}",
    ]
    if "nsp_labels" in arrays:
        label = int(arrays["nsp_labels"][index])
        lines.append(f"{sentence_task.upper()} label {label}: "
                     f"{LABEL_MEANINGS[sentence_task][label]}")
    else:
        lines.append("no sentence label (data.sentence_task: none)")
    if "mlm_labels" not in arrays:
        lines.append("no MLM labels: the masks are drawn afresh each epoch (data.masking: "
                     "dynamic); the tokens are the originals")
        return "\n".join(lines)
    labels = arrays["mlm_labels"][index].astype(int)  # (T,)
    masked = np.flatnonzero(labels >= 0)
    lines.append(f"MLM labels at {len(masked)} position{'s' if len(masked) != 1 else ''}"
                 + (":" if len(masked) else ""))
    for position in masked:
        seen, original = ids[position], labels[position]
        how = ("masked" if seen == MASK else "unchanged" if seen == original
               else "random replacement")
        lines.append(f"  position {position:>3}  {token_name(seen):>6}  original "
                     f"{token_name(original):<6}  ({how})")
    return "\n".join(lines)


def show(path: str | Path, index: int) -> str:
    """Example ``index`` of the dataset file ``path`` as text, headed by where it comes from."""
    examples = load_examples(path, [index])
    task = dataset_attrs(path).get("sentence_task", "nsp")
    text = format_example(examples.arrays, 0, examples.name, task)
    if load_vocab(path) is not None:  # text data: the two segments as words too
        text += "\n" + "\n".join(segment_words(examples.arrays, 0, examples.name))
    return f"{path}, example {examples.indices[0]} of {examples.count}\n" + text


def segment_words(arrays: dict[str, np.ndarray], index: int,
                  token_name: Callable[[int], str]) -> list[str]:
    """Segments A and B of a text example as words: its WordPiece pieces joined (``##``)."""
    ids = arrays["input_ids"][index].astype(int)  # (T,)
    types = arrays["token_type_ids"][index]
    inside = (arrays["attention_mask"][index] == 1) & (ids != CLS) & (ids != SEP)
    lines = []
    for segment, label in ((0, "A"), (1, "B")):
        pieces = " ".join(token_name(t) for t in ids[inside & (types == segment)])
        if pieces:  # without a sentence task, one segment
            lines.append(f"{label}: " + pieces.replace(f" {PREFIX}", ""))
    return lines
