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

Every file holds the vocabulary as the string dataset ``vocab`` (token id i is entry i; for the
synthetic language ``[PAD] [CLS] [SEP] [MASK] t4 t5 ...``), and every dataset and group says
what it is (``h5io.About``: ``description``, ``units``, axis labels).

Root attributes of every file: ``description``, ``split`` (train, test, probe_nsp, probe_sop),
``sentence_task`` (the task of its examples), ``nsp_labels`` (what that array's labels mean;
absent without a sentence task, as is the array) and ``masking`` (dynamic: the training file
holds the unmasked tokens and no ``mlm_labels``, ``bert.data.masking`` masks them each epoch),
besides those of every file (``bert.storage.h5io``). Files of schema version 1 (the text
vocabulary as newline-joined UTF-8 bytes ``vocab/utf8``, no synthetic vocabulary) still read.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bert.data.examples import LABEL_MEANINGS, make_examples, optimum
from bert.data.language import Language, draw_language
from bert.data.masking import MaskingSpec, continuations, unmasked
from bert.data.tokens import NUM_SPECIAL, NUM_TEXT_SPECIAL, SPECIAL_TOKENS, token_name
from bert.errors import DataFileError, ParamsError, remake_hint
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
EXAMPLE_AXES = ("example", "position")
LANGUAGE_ABOUT = {
    "language/topic_prior": h5io.About("the probability of each topic", "", ("topic",)),
    "language/start": h5io.About(
        "P(first token of a segment = c | topic k), each topic's stationary distribution over "
        f"the content tokens; content token c is token id c + {NUM_SPECIAL}", "",
        ("topic", "content token")),
    "language/transition": h5io.About(
        "P(next token = c' | token c, topic k): each topic's Markov chain over the content "
        f"tokens, every row sums to 1; content token c is token id c + {NUM_SPECIAL}", "",
        ("topic", "content token", "next content token")),
}
LANGUAGE_GROUP = ("the synthetic language the examples were drawn from (bert.data.language): "
                  "K topics, each a Markov chain over C content tokens")
SCORES_GROUP = ("{what} of this file's examples, as attributes: losses in nats (mean "
                "cross-entropy, natural logarithm), accuracies as fractions of the examples, "
                "num_* as counts")
FILE_DESCRIPTIONS = {
    "train": "BERT pretraining examples (MLM{task}): the training set",
    "test": "BERT pretraining examples (MLM{task}): the test set, with {scores}",
    "probe_nsp": "NSP probe set: next-sentence pairs cut as the test set is, so that a model "
                 "trained with any sentence task is scored on NSP; with {scores}",
    "probe_sop": "SOP probe set: sentence-order pairs cut as the test set is, so that a model "
                 "trained with any sentence task is scored on SOP; with {scores}",
}
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


def example_about(params: DataParams, split: str) -> dict[str, h5io.About]:
    """What each example array of a split's file is (``h5io.About``), its labels' encodings
    spelled out."""
    task = split_task(params, split)
    pair = task != "none"
    layout = "[CLS] A [SEP] B [SEP]" if pair else "[CLS] x [SEP]"
    masked = ("the original tokens, unmasked: the masks are drawn afresh each epoch "
              "(bert.data.masking)" if split_attrs(params, split)["masking"] == "dynamic" else
              "a position selected for prediction holds [MASK] (80%), a random token (10%) or "
              "its own token (10%)")
    about = {
        "input_ids": h5io.About(f"the token ids the model reads: {layout}, then [PAD] (the "
                                f"vocab dataset names them); {masked}", "", EXAMPLE_AXES),
        "token_type_ids": h5io.About(
            "the segment of each position: 0 for [CLS] A [SEP] and the padding, 1 for B [SEP]"
            if pair else "the segment of each position: 0 everywhere (one segment)", "",
            EXAMPLE_AXES),
        "attention_mask": h5io.About("1 at a token, 0 at padding", "", EXAMPLE_AXES),
        "mlm_labels": h5io.About("the original token id at each position selected for "
                                 "masked-language-model prediction, -100 where no token is "
                                 "predicted (the loss ignores those)", "", EXAMPLE_AXES),
    }
    if task in LABEL_MEANINGS:
        about["nsp_labels"] = h5io.About(
            f"the {task.upper()} label of each example (transformers' next_sentence_label): "
            "0 = {}, 1 = {}".format(*LABEL_MEANINGS[task]), "", ("example",))
    return about


def vocab_about(params: DataParams) -> dict[str, h5io.About]:
    """What the vocab dataset is."""
    what = ("the special tokens, then the WordPiece pieces learnt from the text (## starts a "
            "piece that continues a word)" if params.source == "text" else
            "the special tokens, then the content tokens of the synthetic language")
    return {"vocab": h5io.About(f"the vocabulary in id order, token id i is entry i: {what}",
                                "", ("token id",))}


def file_attrs(params: DataParams, split: str) -> dict[str, str]:
    """The root attributes of a split's file: its description and ``split_attrs``."""
    task = split_task(params, split)
    scores = ("the exact optimum and the baselines in the group optimum"
              if params.source == "synthetic" else "the baselines in the group baselines")
    description = FILE_DESCRIPTIONS[split].format(
        task=f" + {task.upper()}" if task != "none" else "", scores=scores)
    return {"description": description, **split_attrs(params, split)}


def synthetic_vocab(vocab_size: int) -> list[str]:
    """The synthetic language's vocabulary in id order: ``[PAD] [CLS] [SEP] [MASK] t4 ...``."""
    return [*SPECIAL_TOKENS, *map(token_name, range(NUM_SPECIAL, vocab_size))]


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
                       "language/transition": language.transition,
                       "vocab": np.array(synthetic_vocab(params.vocab_size))}
    paths = []
    for split in SPLITS:
        examples = build_split(params, language, split)
        group_attrs = {"language": {"description": LANGUAGE_GROUP}}
        if split == "test" and not (examples["mlm_labels"] >= 0).any():
            raise ParamsError(f"data.mask_probability is {params.mask_probability}: the test set "
                              "has no masked token to score, so no MLM loss and no optimum; "
                              "raise it (or data.num_test_batches)")
        if split != "train":
            scores = optimum(language, examples, params.mask_probability,
                             sentence_task=split_task(params, split))
            group_attrs["optimum"] = {"description": SCORES_GROUP.format(
                what="The exact Bayes-optimal scores and the baselines"), **scores}
        paths.append(h5io.write(out_dir / f"{split}.h5",
                                {**stored(params, split, examples), **language_arrays},
                                schema=SCHEMA, schema_version=SCHEMA_VERSION,
                                about={**example_about(params, split), **LANGUAGE_ABOUT,
                                       **vocab_about(params)},
                                creator="bert.data.datasets.make_datasets",
                                params=params.to_dict(), attrs=file_attrs(params, split),
                                group_attrs=group_attrs))
    return paths[0], paths[1]


def make_text_datasets(params: DataParams, out_dir: Path, root: Path,
                       begin: Callable[[str], object]) -> tuple[Path, Path]:
    """The data stage on text files (``bert.data.text``); ``begin`` is called with each of
    ``TEXT_PHASES`` as it starts."""
    from bert.data.text import baselines, build_text_sets

    tokenizer, sets, digest = build_text_sets(params, root, {split: split_task(params, split)
                                                            for split in SPLITS}, begin)
    begin("writing the files")
    vocab = {"vocab": np.array(tokenizer.vocab)}
    paths = []
    for split in SPLITS:
        group_attrs = {}
        if split != "train":
            scores = baselines(sets["train"], sets[split], params.vocab_size,
                               split_task(params, split))
            group_attrs["baselines"] = {"description": SCORES_GROUP.format(
                what="The baselines"), **scores}
        paths.append(h5io.write(out_dir / f"{split}.h5",
                                {**stored(params, split, sets[split]), **vocab},
                                schema=SCHEMA, schema_version=SCHEMA_VERSION,
                                about={**example_about(params, split), **vocab_about(params)},
                                creator="bert.data.datasets.make_text_datasets",
                                params=params.to_dict(),
                                attrs={**file_attrs(params, split), "corpus_sha256": digest},
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
