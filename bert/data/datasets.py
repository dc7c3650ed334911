"""The data stage: draw the language, cut the train and test sets, score the optimum, write HDF5.

``data/train.h5`` and ``data/test.h5`` hold the five example arrays (``N`` examples of length
``T``), the drawn language under ``language/`` and, in the test file, the Bayes-optimal scores
and baselines as attributes of the group ``optimum``. With ``data.source: text`` the examples
come from text files (``bert.data.text``): the files hold the WordPiece vocabulary under
``vocab/`` instead of the language, and the test file only the baselines (group ``baselines``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bert.data.examples import make_examples, optimum
from bert.data.language import Language, draw_language
from bert.data.tokens import token_name
from bert.errors import DataFileError, ParamsError, remake_hint
from bert.storage import h5io

if TYPE_CHECKING:
    from bert.data.params import DataParams
    from bert.data.tokenizer import TextTokenizer

SCHEMA = "bert-from-scratch/dataset"
SCHEMA_VERSION = 1
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
VOCAB_SPECS = {"vocab/utf8": h5io.Spec(("S",), "u")}
ALL_SPECS = {**EXAMPLE_SPECS, **LANGUAGE_SPECS, **VOCAB_SPECS}
# The phases of the data stage on text, in order, as ``make_datasets`` reports them.
TEXT_PHASES = ("reading the text", "learning the vocabulary", "encoding the text",
               "cutting the training pairs", "cutting the test pairs", "writing the files")


def generators(random_seed: int) -> dict[str, np.random.Generator]:
    """Independent generators for the language, the train set and the test set."""
    language, train, test = np.random.SeedSequence(random_seed).spawn(3)
    return {"language": np.random.default_rng(language), "train": np.random.default_rng(train),
            "test": np.random.default_rng(test)}


def build_language(params: DataParams) -> Language:
    """The language drawn from ``params.random_seed``."""
    return draw_language(generators(params.random_seed)["language"], params.num_content,
                         params.num_topics, params.successors, params.concentration,
                         params.transition_noise, params.random_next_topic == "same")


def build_split(params: DataParams, language: Language, split: str) -> dict[str, np.ndarray]:
    """The examples of ``split`` ("train" or "test"): the arrays of ``EXAMPLE_SPECS``."""
    batches = {"train": params.num_train_batches, "test": params.num_test_batches}[split]
    return make_examples(generators(params.random_seed)[split], language,
                         batches * params.batch_size, params.sequence_length,
                         params.mask_probability, params.short_sequence_probability)


def make_datasets(params: DataParams, out_dir: str | Path, root: str | Path = ".",
                  begin: Callable[[str], object] = lambda phase: None) -> tuple[Path, Path]:
    """Write ``out_dir/train.h5`` and ``out_dir/test.h5``; return their paths.

    root: the project folder, from which ``data.text_files`` are read. begin: for text data,
    called with each of ``TEXT_PHASES`` as it starts.
    """
    out_dir = Path(out_dir)
    if params.source == "text":
        return make_text_datasets(params, out_dir, Path(root), begin)
    language = build_language(params)
    language_arrays = {"language/topic_prior": language.topic_prior,
                       "language/start": language.start,
                       "language/transition": language.transition}
    paths = []
    for split in ("train", "test"):
        examples = build_split(params, language, split)
        group_attrs = {}
        if split == "test" and not (examples["mlm_labels"] >= 0).any():
            raise ParamsError(f"data.mask_probability is {params.mask_probability}: the test set "
                              "has no masked token to score, so no MLM loss and no optimum; "
                              "raise it (or data.num_test_batches)")
        if split == "test":
            group_attrs["optimum"] = optimum(language, examples, params.mask_probability)
        paths.append(h5io.write(out_dir / f"{split}.h5", {**examples, **language_arrays},
                                schema=SCHEMA, schema_version=SCHEMA_VERSION,
                                params=params.to_dict(), attrs={"split": split},
                                group_attrs=group_attrs))
    return paths[0], paths[1]


def make_text_datasets(params: DataParams, out_dir: Path, root: Path,
                       begin: Callable[[str], object]) -> tuple[Path, Path]:
    """The data stage on text files (``bert.data.text``); ``begin`` is called with each of
    ``TEXT_PHASES`` as it starts."""
    from bert.data.text import baselines, build_text_sets, vocab_array

    tokenizer, train, test, digest = build_text_sets(params, root, begin)
    begin("writing the files")
    vocab = {"vocab/utf8": vocab_array(tokenizer.vocab)}
    paths = []
    for split, examples in (("train", train), ("test", test)):
        group_attrs = {}
        if split == "test":
            group_attrs["baselines"] = baselines(train, test, params.vocab_size)
        paths.append(h5io.write(out_dir / f"{split}.h5", {**examples, **vocab}, schema=SCHEMA,
                                schema_version=SCHEMA_VERSION, params=params.to_dict(),
                                attrs={"split": split, "corpus_sha256": digest},
                                group_attrs=group_attrs))
    return paths[0], paths[1]


def corpus_digest(path: str | Path) -> str | None:
    """The SHA-256 of the text a dataset file was made from; None for synthetic data."""
    return _read(path, (), None).attrs.get("corpus_sha256")


def _read(path: str | Path, names: tuple[str, ...], params: DataParams | None,
          fix: str = FIX) -> h5io.H5Contents:
    dims = {} if params is None else {"T": params.sequence_length, "C": params.num_content,
                                      "K": params.num_topics}
    contents = h5io.read(path, schema=SCHEMA, schema_version=SCHEMA_VERSION,
                         specs={**EXAMPLE_SPECS, **{n: ALL_SPECS[n] for n in names}}, fix=fix,
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
    """The five example arrays of a dataset file, read into memory, by name.

    input_ids, token_type_ids, attention_mask (N, T) unsigned; mlm_labels (N, T) signed, -100
    where nothing is predicted; nsp_labels (N,). With ``params``, the file must have been made
    from exactly these data parameters. fix: what to do about a bad file (default: remake it).
    """
    return _read(path, tuple(EXAMPLE_SPECS), params, fix).arrays


def dataset_params(path: str | Path) -> dict:
    """The data parameters a dataset file was made from."""
    return _read(path, (), None).attrs["params"]


def load_vocab(path: str | Path) -> list[str] | None:
    """The WordPiece vocabulary of a text dataset file (id order); None for a synthetic one."""
    if dataset_params(path).get("source", "synthetic") != "text":
        return None
    from bert.data.text import vocab_from_array

    return vocab_from_array(_read(path, tuple(VOCAB_SPECS), None).arrays["vocab/utf8"])


def load_tokenizer(path: str | Path) -> TextTokenizer:
    """The WordPiece tokenizer of an export directory (its ``tokenizer.json``) or of a text
    dataset file (its vocabulary and ``data.lowercase``). Raises DataFileError when there is
    none."""
    from bert.data.tokenizer import TextTokenizer, from_export

    if Path(path).is_dir():
        return from_export(path)
    vocab = load_vocab(path)
    if vocab is None:
        raise DataFileError(f"{path}: synthetic data has no tokenizer; give a dataset made "
                            "with data.source: text, or an export directory of one")
    return TextTokenizer(vocab, bool(dataset_params(path)["lowercase"]))


def token_namer(path: str | Path) -> Callable[[int], str]:
    """How the tokens of a dataset file are written: its WordPiece pieces for text, ``t17``
    for the synthetic language."""
    vocab = load_vocab(path)
    return token_name if vocab is None else vocab.__getitem__


def load_optimum(path: str | Path) -> dict[str, float]:
    """The Bayes-optimal scores and the baselines stored in a test file.

    Keys: bayes_mlm_loss, bayes_nsp_loss, bayes_nsp_accuracy, topic_only_nsp_accuracy,
    uniform_mlm_loss, unigram_mlm_loss, chance_nsp_loss, chance_nsp_accuracy, num_mlm_labels,
    num_examples. A text test set has no optimum: its dict lacks the ``bayes_`` and
    ``topic_only_`` keys.
    """
    contents = _read(path, (), None)
    for group in ("optimum", "baselines"):
        if group in contents.group_attrs:
            return contents.group_attrs[group]
    raise DataFileError(f"{path}: has no optimum (is it a training set?); {FIX}")
