"""What the text views and the pictures read: some examples of a dataset file, and the model
to run on them, checked to fit them.

Shape letters: ``B`` examples, ``T`` sequence, ``T'`` the tokens of one example without its
padding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bert.core.config import BertConfig
from bert.core.labels import IGNORE_INDEX
from bert.data.examples import num_examples
from bert.data.loading import dataset_attrs, load_dataset, token_namer
from bert.data.tokens import token_name
from bert.errors import DataFileError
from bert.storage.checkpoint import load_weights
from bert.workflow.layout import read_fix
from bert.workflow.sentence import task_of


@dataclass(frozen=True)
class Examples:
    """Some examples of a dataset file: its arrays, ``(B, T)`` and ``(B,)``."""

    path: Path
    indices: tuple[int, ...]  # their numbers in the file
    count: int  # examples in the file
    arrays: dict[str, np.ndarray]
    name: Callable[[int], str] = field(default=token_name)  # how a token id is written
    task: str = "nsp"  # the sentence task of the file's examples (nsp_labels: its labels)

    def length(self, row: int) -> int:
        """Tokens of example ``row`` before its padding."""
        return int(self.arrays["attention_mask"][row].sum())

    def tokens(self, row: int) -> list[str]:
        """The names of the T' input tokens of example ``row``, padding cut off."""
        return [self.name(int(t)) for t in self.arrays["input_ids"][row, :self.length(row)]]

    def masked(self, row: int) -> np.ndarray:
        """The positions of example ``row`` that carry an MLM label, ascending (none in a
        training file masked dynamically, which holds no labels)."""
        return np.flatnonzero(self.labelled()[row])

    def labelled(self) -> np.ndarray:
        """(B, T) bool: the positions that carry an MLM label."""
        if "mlm_labels" not in self.arrays:
            return np.zeros(self.arrays["input_ids"].shape, dtype=bool)
        return self.arrays["mlm_labels"] != IGNORE_INDEX


def dataset_fix(path: str | Path) -> str:
    """What to do about a bad dataset file: remake it if it is the workflow's, else check it."""
    return read_fix(path, "dataset")


def load_examples(path: str | Path, indices: Sequence[int]) -> Examples:
    """Examples ``indices`` of a dataset file (negative numbers count from the end)."""
    path = Path(path)
    arrays = load_dataset(path, fix=dataset_fix(path))
    count = num_examples(arrays)
    for index in indices:
        if not -count <= index < count:
            raise DataFileError(f"{path}: has {count} examples, no example {index}; "
                                f"pick an index in 0..{count - 1}")
    rows = [index % count for index in indices]
    return Examples(path, tuple(rows), count, {name: a[rows] for name, a in arrays.items()},
                    token_namer(path), sentence_task(path))


def sentence_task(path: str | Path) -> str:
    """The sentence task of a dataset file's examples: nsp, sop or none."""
    return task_of(dataset_attrs(path))


def first_masked_examples(path: str | Path, number: int) -> Examples:
    """The first ``number`` examples of a dataset file with at least one MLM label."""
    arrays = load_dataset(path, fix=dataset_fix(path))
    rows = np.flatnonzero((arrays["mlm_labels"] != IGNORE_INDEX).any(axis=1))[:number]
    return load_examples(path, [int(row) for row in rows])


def load_model(path: str | Path, examples: Examples) -> tuple[BertConfig, dict[str, np.ndarray]]:
    """The architecture and weights of a weights file, checked to fit ``examples``."""
    config, weights = load_weights(path, read_fix(path, "weights file"))
    ids = examples.arrays["input_ids"]
    if ids.max(initial=0) >= config.vocab_size or ids.shape[1] > config.max_position_embeddings:
        raise DataFileError(
            f"{path}: made for {config.vocab_size} tokens and sequences of at most "
            f"{config.max_position_embeddings}, which {examples.path} does not fit; use the "
            "model trained on this data (run `doit`)")
    return config, weights
