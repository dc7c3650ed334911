"""Reading a text corpus: files to documents to sentences, and the train/test split.

The format: UTF-8 files; documents separated by one or more blank lines, and every file starts
a new document. Inside a document a newline is a space, and a sentence ends after ``.``, ``!``
or ``?`` followed by whitespace, or after ``。``, ``！`` or ``？``. With ``sentence_per_line``
(google-research/bert's format) each line is one sentence instead.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bert.errors import DataFileError, ParamsError
from bert.storage.memory import machine_bytes
from bert.storage.reading import NotReadable, problem_at, read_regular

Document = list[str]  # its sentences
_BLANK_LINES = re.compile(r"\n[ \t\r\f\v]*\n\s*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])\s*")


def text_paths(patterns: Sequence[str], root: Path) -> list[Path]:
    """The files ``patterns`` name (paths or globs relative to ``root``), in order, each once.

    A pattern that names an existing path is that path (``notes[1].txt`` is that file, not
    ``notes1.txt``); else, with glob characters, it is a glob, whose matching files are sorted.
    Raises ParamsError for a missing path, one that is not a file (a folder, a device, ...) or
    an empty glob.
    """
    paths: list[Path] = []
    for pattern in patterns:
        full = pattern if Path(pattern).is_absolute() else str(root / pattern)
        if glob.has_magic(pattern) and not os.path.lexists(full):
            matches = sorted(Path(p) for p in glob.glob(full, recursive=True) if Path(p).is_file())
            if not matches:
                raise ParamsError(f"data.text_files: {pattern!r} matches no file; fix the glob "
                                  "(it is relative to the project folder)")
        else:
            matches = [Path(full)]
            problem = problem_at(full)
            if problem == "does not exist":
                raise ParamsError(f"data.text_files: {full} does not exist; fix the path (it is "
                                  "relative to the project folder)")
            if problem is not None:
                example = f", e.g. '{pattern.rstrip('/')}/*.txt'" if Path(full).is_dir() else ""
                raise ParamsError(f"data.text_files: {full} {problem}; name text files{example}")
        paths += [p for p in matches if p not in paths]
    return paths


def text_bytes(paths: Sequence[Path]) -> int:
    """The size of the files, in bytes (before any of them is read)."""
    return sum(path.stat().st_size for path in paths)


def read_text(path: Path) -> str:
    """The text of a UTF-8 file; invalid bytes raise DataFileError naming the byte offset."""
    try:
        data = read_regular(path, machine_bytes())
    except NotReadable as e:  # replaced since it was named (text_paths checks it)
        raise DataFileError(f"{path}: {e.problem}; name text files in data.text_files") from None
    except OSError as e:
        raise DataFileError(f"{path}: cannot be read ({e.strerror}); check the file") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataFileError(f"{path}: invalid UTF-8 at byte {e.start}; convert the file to "
                            "UTF-8 (e.g. iconv -t UTF-8) or remove it from data.text_files"
                            ) from None


def split_documents(text: str, sentence_per_line: bool) -> list[Document]:
    """The documents of one file's text, each a list of non-empty sentences."""
    documents = []
    for block in _BLANK_LINES.split(text.replace("\r\n", "\n")):
        if sentence_per_line:
            sentences = [line.strip() for line in block.split("\n")]
        else:
            sentences = [s.strip() for s in _SENTENCE_END.split(" ".join(block.split()))]
        sentences = [s for s in sentences if s]
        if sentences:
            documents.append(sentences)
    return documents


def read_corpus(paths: Sequence[Path], sentence_per_line: bool) -> list[Document]:
    """Every document of the files, in order. Raises DataFileError for fewer than 2 documents."""
    documents = [d for path in paths for d in split_documents(read_text(path), sentence_per_line)]
    names = ", ".join(str(p) for p in paths)
    if not documents:
        raise DataFileError(f"{names}: no text (the corpus is empty); give data.text_files "
                            "some text")
    if len(documents) < 2:
        raise DataFileError(f"{names}: only 1 document, and next sentence prediction needs "
                            "another; separate documents by a blank line or add files")
    return documents


def split_train_test(documents: list[Document], test_fraction: float,
                     rng: np.random.Generator) -> tuple[list[Document], list[Document]]:
    """A random share ``test_fraction`` of the documents (at least one) as the test set; the
    rest, in their order, as the training set. Raises ParamsError when none is left to train."""
    num_test = max(1, round(test_fraction * len(documents)))
    if num_test >= len(documents):
        raise ParamsError(f"data.test_fraction is {test_fraction}, which leaves no training "
                          f"document of {len(documents)}; lower it or add documents")
    test = set(rng.permutation(len(documents))[:num_test].tolist())
    return ([d for i, d in enumerate(documents) if i not in test],
            [d for i, d in enumerate(documents) if i in test])
