"""The data files read back and checked: their example arrays, attributes, vocabulary,
tokenizer, optimum and what dynamic masking needs (what the files hold:
``bert.data.datasets``, which writes them).

Each read checks the file (``bert.storage.h5io``: its schema, version, the shapes and dtypes of
its datasets) and, when given the data parameters, that it was made from exactly those. Files
of schema version 1 (the text vocabulary as newline-joined UTF-8 bytes ``vocab/utf8``, no
synthetic vocabulary) still read.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bert.data.masking import MaskingSpec, continuations
from bert.data.tokens import NUM_SPECIAL, NUM_TEXT_SPECIAL, synthetic_vocab, token_name
from bert.errors import DataFileError, remake_hint
from bert.storage import h5io

if TYPE_CHECKING:
    from bert.data.params import DataParams
    from bert.data.tokenizer import TextTokenizer

SCHEMA = "bert-from-scratch/dataset"
SCHEMA_VERSION = 2  # 2: the vocab dataset, descriptions, origin, str attributes
READABLE_VERSIONS = (1, 2)
FIX = remake_hint("data")
EXAMPLE_SPECS = {
    "input_ids": h5io.Spec(("N", "T"), "u"),
    "token_type_ids": h5io.Spec(("N", "T"), "u"),
    "attention_mask": h5io.Spec(("N", "T"), "u"),
    "mlm_labels": h5io.Spec(("N", "T"), "i"),
    "nsp_labels": h5io.Spec(("N",), "u"),
}
LANGUAGE_SPECS = {
    "language/topic_prior": h5io.Spec(("K",), "f"),
    "language/start": h5io.Spec(("K", "C"), "f"),
    "language/transition": h5io.Spec(("K", "C", "C"), "f"),
}
VOCAB_SPECS = {"vocab": h5io.Spec(("V",), "S")}
VOCAB_V1_SPECS = {"vocab/utf8": h5io.Spec(("S",), "u")}  # text data, schema version 1
ALL_SPECS = {**EXAMPLE_SPECS, **LANGUAGE_SPECS, **VOCAB_SPECS, **VOCAB_V1_SPECS}


def corpus_digest(path: str | Path) -> str | None:
    """The SHA-256 of the text a dataset file was made from; None for synthetic data."""
    return _read(path, (), None).attrs.get("corpus_sha256")


def example_names(attrs: dict) -> tuple[str, ...]:
    """The example arrays a dataset file holds, from its root attributes (a file written
    before the sentence tasks and dynamic masking holds all five)."""
    task = attrs.get("sentence_task", "nsp")
    return tuple(name for name in EXAMPLE_SPECS
                 if not (name == "nsp_labels" and task == "none")
                 and not (name == "mlm_labels" and attrs.get("masking") == "dynamic"))


def _read(path: str | Path, names: tuple[str, ...], params: DataParams | None,
          fix: str = FIX) -> h5io.H5Contents:
    """The file's attributes and ``names`` (with its example arrays: ``"examples"``)."""
    dims = {} if params is None else {"T": params.sequence_length, "C": params.num_content,
                                      "K": params.num_topics, "V": params.vocab_size}
    attrs = h5io.read(path, schema=SCHEMA, schema_version=READABLE_VERSIONS, specs={}, fix=fix,
                      names=()).attrs
    examples = example_names(attrs)
    names = tuple(n for name in names for n in (examples if name == "examples" else (name,)))
    contents = h5io.read(path, schema=SCHEMA, schema_version=READABLE_VERSIONS,
                         specs={**{n: EXAMPLE_SPECS[n] for n in examples},
                                **{n: ALL_SPECS[n] for n in names}}, fix=fix,
                         names=names, dims=dims)
    if params is not None and contents.attrs["params"] != params.to_dict():
        changed = sorted(key for key, value in params.to_dict().items()
                         if contents.attrs["params"].get(key) != value)
        raise DataFileError(f"{path}: made with other data parameters "
                            f"(data.{', data.'.join(changed)}); {fix}")
    return contents


def load_dataset(
    path: str | Path, params: DataParams | None = None, fix: str = FIX
) -> dict[str, np.ndarray]:
    """The example arrays of a dataset file, read into memory, by name.

    input_ids, token_type_ids, attention_mask (N, T) unsigned; mlm_labels (N, T) signed, -100
    where nothing is predicted (absent from a training set masked dynamically: see
    ``bert.data.masking``); nsp_labels (N,), the sentence task's label (absent without a
    sentence task; ``num_examples`` counts the examples either way). With ``params``, the file
    must have been made from exactly these data parameters. fix: what to do about a bad file
    (default: remake it).
    """
    return _read(path, ("examples",), params, fix).arrays


def dataset_attrs(path: str | Path) -> dict:
    """The root attributes of a dataset file: split, sentence_task, masking, params, ..."""
    return _read(path, (), None).attrs


def dataset_params(path: str | Path) -> dict:
    """The data parameters a dataset file was made from."""
    return _read(path, (), None).attrs["params"]


def load_vocab(path: str | Path) -> list[str] | None:
    """The WordPiece vocabulary of a text dataset file (id order); None for a synthetic one."""
    attrs = dataset_attrs(path)
    if attrs["params"].get("source", "synthetic") != "text":
        return None
    if attrs["schema_version"] == 1:
        from bert.data.text import vocab_from_array

        return vocab_from_array(_read(path, tuple(VOCAB_V1_SPECS), None).arrays["vocab/utf8"])
    return list(_read(path, tuple(VOCAB_SPECS), None).arrays["vocab"])


def load_tokenizer(path: str | Path) -> TextTokenizer:
    """The tokenizer of an export directory (its ``tokenizer.json``) or of a dataset file: the
    WordPiece tokenizer of text data (its vocabulary and ``data.lowercase``), the synthetic
    language's (``bert.data.tokenizer.SyntheticTokenizer``) for synthetic data."""
    from bert.data.tokenizer import SyntheticTokenizer, TextTokenizer, from_export

    if Path(path).is_dir():
        return from_export(path)
    vocab = load_vocab(path)
    if vocab is None:
        return SyntheticTokenizer(synthetic_vocab(dataset_params(path)["vocab_size"]))
    return TextTokenizer(vocab, bool(dataset_params(path)["lowercase"]))


def token_namer(path: str | Path) -> Callable[[int], str]:
    """How the tokens of a dataset file are written: its WordPiece pieces for text, ``t17``
    for the synthetic language."""
    vocab = load_vocab(path)
    return token_name if vocab is None else vocab.__getitem__


def load_optimum(path: str | Path) -> dict[str, float]:
    """The Bayes-optimal scores and the baselines stored in a test or probe file.

    Keys, with ``<task>`` the file's sentence task (nsp or sop): bayes_mlm_loss,
    bayes_<task>_loss, bayes_<task>_accuracy, topic_only_<task>_accuracy, uniform_mlm_loss,
    unigram_mlm_loss, chance_<task>_loss, chance_<task>_accuracy, num_mlm_labels, num_examples
    (``bert.data.examples.optimum``); without a sentence task, no ``<task>`` keys. A text test
    set has no optimum: its dict lacks the ``bayes_`` and ``topic_only_`` keys.
    """
    contents = _read(path, (), None)
    for group in ("optimum", "baselines"):
        if group in contents.group_attrs:
            return {key: value for key, value in contents.group_attrs[group].items()
                    if key != "description"}
    raise DataFileError(f"{path}: has no optimum (is it a training set?); {FIX}")


def masking_spec(path: str | Path) -> MaskingSpec:
    """What ``bert.data.masking`` needs to mask the examples of a dataset file: its
    mask_probability, its content ids (and, with whole-word masking, its ``##`` pieces)."""
    params = dataset_params(path)
    if params.get("source", "synthetic") != "text":
        return MaskingSpec(params["mask_probability"], NUM_SPECIAL, params["vocab_size"])
    vocab = load_vocab(path)
    return MaskingSpec(params["mask_probability"], NUM_TEXT_SPECIAL, params["vocab_size"],
                       continuations(vocab) if params["whole_word_masking"] else None)
