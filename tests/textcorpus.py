"""Small text corpora written by the tests, and the params that read them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bert.data.params import DataParams
from bert.workflow.loader import params_from_mapping

WORDS = ("the cat dog bird sat ran flew over under a big small red blue green house tree river "
         "quickly slowly jumped sang played with and near far café naïve über Straße 42 3.14 "
         "unbelievable reorganisation").split()


def sentence(rng: np.random.Generator) -> str:
    words = [WORDS[i] for i in rng.integers(len(WORDS), size=int(rng.integers(3, 10)))]
    return " ".join(words).capitalize() + str(rng.choice([".", "!", "?"]))


def write_corpus(folder: Path, num_files: int = 2, docs_per_file: int = 6, seed: int = 0,
                 sentences: int = 8) -> list[Path]:
    """``num_files`` files of ``docs_per_file`` documents (blank-line separated), sentences
    wrapped over lines as prose is."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for f in range(num_files):
        docs = []
        for _ in range(docs_per_file):
            text = " ".join(sentence(rng) for _ in range(sentences))
            words = text.split()
            docs.append("\n".join(" ".join(words[i:i + 9]) for i in range(0, len(words), 9)))
        path = folder / f"part{f}.txt"
        path.write_text("\n\n".join(docs) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


TEXT_DATA = {"source": "text", "text_files": ["corpus/*.txt"], "vocab_size": 120,
             "sequence_length": 24, "batch_size": 8, "test_fraction": 0.2}


def text_params(**data: object) -> DataParams:
    return params_from_mapping({"data": {**TEXT_DATA, **data}}).data
