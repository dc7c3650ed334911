"""The data stage: draw the language, cut the train, test and probe sets, score the optimum,
write HDF5.

``data/train.h5`` and ``data/test.h5`` hold the example arrays (``N`` examples of length ``T``)
of ``data.sentence_task``, the drawn language under ``language/`` and, in the test file, the
Bayes-optimal scores and baselines as attributes of the group ``optimum``. ``data/probe_nsp.h5``
and ``data/probe_sop.h5`` hold a test set's worth of NSP and of SOP pairs, each with its optimum,
so that a model trained with any sentence task can be scored on both. With ``data.source:
text`` the examples come from text files (``bert.data.text``): the files hold the WordPiece
vocabulary under ``vocab/`` instead of the language, and the test and probe files only the
baselines (group ``baselines``).

Root attributes of every file: ``split`` (train, test, probe_nsp, probe_sop), ``sentence_task``
(the task of its examples), ``nsp_labels`` (what that array's labels mean; absent without a
sentence task, as is the array) and ``masking`` (dynamic: the training file holds the unmasked
tokens and no ``mlm_labels``, ``bert.data.masking`` masks them each epoch).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bert.data.examples import LABEL_MEANINGS, make_examples, optimum
from bert.data.language import Language, draw_language
from bert.data.masking import MaskingSpec, continuations, unmasked
from bert.data.tokens import NUM_SPECIAL, NUM_TEXT_SPECIAL, token_name
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
               "cutting the examples", "writing the files")
SPLITS = ("train", "test", "probe_nsp", "probe_sop")  # the data stage's files, data/<split>.h5


def generators(random_seed: int) -> dict[str, np.random.Generator]:
    """Independent generators for the language and each split (the probes' streams come after
    the others', which they leave as they were)."""
    streams = np.random.SeedSequence(random_seed).spawn(1 + len(SPLITS))
    return dict(zip(("language", *SPLITS), map(np.random.default_rng, streams), strict=True))


def split_task(params: DataParams, split: str) -> str:
    """The sentence task of a split's examples: a probe's own, else ``data.sentence_task``."""
    return split.removeprefix("probe_") if split.startswith("probe_") else params.sentence_task


def split_attrs(params: DataParams, split: str) -> dict[str, str]:
    """The root attributes that say what a split's file holds (see the module docstring)."""
    task = split_task(params, split)
    masking = params.masking if split == "train" else "static"
    return {"split": split, "sentence_task": task, "masking": masking,
            **({"nsp_labels": "0: {}, 1: {}".format(*LABEL_MEANINGS[task])}
               if task in LABEL_MEANINGS else {})}


def stored(params: DataParams, split: str, examples: dict[str, np.ndarray]) -> dict:
    """The example arrays as a split's file stores them: unmasked in a dynamically masked
    training set."""
    return unmasked(examples) if split_attrs(params, split)["masking"] == "dynamic" else examples


def build_language(params: DataParams) -> Language:
    """The language drawn from ``params.random_seed``."""
    return draw_language(generators(params.random_seed)["language"], params.num_content,
                         params.num_topics, params.successors, params.concentration,
                         params.transition_noise, params.random_next_topic == "same")


def build_split(params: DataParams, language: Language, split: str) -> dict[str, np.ndarray]:
    """The masked examples of ``split`` (one of SPLITS): the arrays of ``EXAMPLE_SPECS``."""
    batches = params.num_train_batches if split == "train" else params.num_test_batches
    return make_examples(generators(params.random_seed)[split], language,
                         batches * params.batch_size, params.sequence_length,
                         params.mask_probability, params.short_sequence_probability,
                         split_task(params, split))


def make_datasets(params: DataParams, out_dir: str | Path, root: str | Path = ".",
                  begin: Callable[[str], object] = lambda phase: None) -> tuple[Path, Path]:
    """Write ``out_dir/<split>.h5`` for every split of SPLITS; return the train and test paths.

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
    for split in SPLITS:
        examples = build_split(params, language, split)
        group_attrs = {}
        if split == "test" and not (examples["mlm_labels"] >= 0).any():
            raise ParamsError(f"data.mask_probability is {params.mask_probability}: the test set "
                              "has no masked token to score, so no MLM loss and no optimum; "
                              "raise it (or data.num_test_batches)")
        if split != "train":
            group_attrs["optimum"] = optimum(language, examples, params.mask_probability,
                                             sentence_task=split_task(params, split))
        paths.append(h5io.write(out_dir / f"{split}.h5",
                                {**stored(params, split, examples), **language_arrays},
                                schema=SCHEMA, schema_version=SCHEMA_VERSION,
                                params=params.to_dict(), attrs=split_attrs(params, split),
                                group_attrs=group_attrs))
    return paths[0], paths[1]


def make_text_datasets(params: DataParams, out_dir: Path, root: Path,
                       begin: Callable[[str], object]) -> tuple[Path, Path]:
    """The data stage on text files (``bert.data.text``); ``begin`` is called with each of
    ``TEXT_PHASES`` as it starts."""
    from bert.data.text import baselines, build_text_sets, vocab_array

    tokenizer, sets, digest = build_text_sets(params, root, {split: split_task(params, split)
                                                            for split in SPLITS}, begin)
    begin("writing the files")
    vocab = {"vocab/utf8": vocab_array(tokenizer.vocab)}
    paths = []
    for split in SPLITS:
        group_attrs = {}
        if split != "train":
            group_attrs["baselines"] = baselines(sets["train"], sets[split], params.vocab_size,
                                                 split_task(params, split))
        paths.append(h5io.write(out_dir / f"{split}.h5",
                                {**stored(params, split, sets[split]), **vocab},
                                schema=SCHEMA, schema_version=SCHEMA_VERSION,
                                params=params.to_dict(),
                                attrs={**split_attrs(params, split), "corpus_sha256": digest},
                                group_attrs=group_attrs))
    return paths[0], paths[1]


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
                                      "K": params.num_topics}
    attrs = h5io.read(path, schema=SCHEMA, schema_version=SCHEMA_VERSION, specs={}, fix=fix,
                      names=()).attrs
    examples = example_names(attrs)
    names = tuple(n for name in names for n in (examples if name == "examples" else (name,)))
    contents = h5io.read(path, schema=SCHEMA, schema_version=SCHEMA_VERSION,
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
            return contents.group_attrs[group]
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
