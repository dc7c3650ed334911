"""The data stage on text files: corpus, WordPiece vocabulary, masked pairs, baselines.

The documents are split into a training and a test set (by document); the WordPiece vocabulary
is learnt on the training documents alone; each set's pairs are cut ``dupe_factor`` times over
(fresh draws each pass), shuffled, masked and written in the layout of the synthetic sets, with
the vocabulary under ``vocab/``. The test file holds the baselines (there is no optimum: the
distribution that wrote the text is unknown).

The probe sets (``probe_nsp``, ``probe_sop``) are the NSP and SOP pairs of the test documents,
cut as the test set is. Under ``data.sentence_task: none`` the examples are RoBERTa's
FULL-SENTENCES (``bert.data.pairs.full_sentences``); each pass walks the documents in a random
order.

Random draws: the split, the training examples, the test examples and each probe set have their
own generator spawned from ``data.random_seed``.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bert.data.corpus import Document, read_corpus, split_train_test, text_bytes, text_paths
from bert.data.examples import MASK_FRACTION, RANDOM_FRACTION, num_examples
from bert.data.masking import continuations
from bert.data.pairs import (
    TokenDocument,
    document_pairs,
    full_sentences,
    masked_examples,
    pack,
    pack_sequences,
)
from bert.data.tokenizer import TextTokenizer, count_words
from bert.data.tokens import NUM_TEXT_SPECIAL, TEXT_SPECIAL_TOKENS
from bert.data.wordpiece import alphabet, learn
from bert.errors import DataFileError, ParamsError
from bert.storage.memory import gib, require_memory

if TYPE_CHECKING:
    from bert.data.pairs import Pair
    from bert.data.params import DataParams

log = logging.getLogger(__name__)

RUN_WORDS = 1024  # words of a sentence encoded in one piece (a line of text can be megabytes)
ENCODE_BATCH = 8192  # runs encoded at once
TEXT_MEMORY_PER_BYTE = 80  # peak memory of the data stage per byte of text, an upper estimate
# (measured: 29 bytes per byte on prose, 49 without sentence ends, 65 on one 15 MB line, above
# the 50 MB of the interpreter and the libraries)


def learn_tokenizer(documents: list[Document], vocab_size: int, lowercase: bool) -> TextTokenizer:
    """The WordPiece tokenizer learnt from ``documents``. Raises ParamsError when
    ``vocab_size`` cannot hold the specials and the alphabet, or exceeds what the text gives."""
    words = count_words((" ".join(d) for d in documents), lowercase)
    least = NUM_TEXT_SPECIAL + len(alphabet(words))
    if vocab_size < least:
        raise ParamsError(f"data.vocab_size is {vocab_size}, too small for the "
                          f"{NUM_TEXT_SPECIAL} special tokens and the {least - NUM_TEXT_SPECIAL} "
                          f"characters of the training text; set it to at least {least}")
    vocab = learn(words, vocab_size, TEXT_SPECIAL_TOKENS)
    if len(vocab) < vocab_size:
        raise ParamsError(f"data.vocab_size is {vocab_size}, but the training text gives only "
                          f"{len(vocab)} pieces (every word is whole); set it to {len(vocab)} "
                          "or add text")
    return TextTokenizer(vocab, lowercase)


def _runs(sentence: str) -> list[str]:
    """A sentence as runs of at most RUN_WORDS words (whitespace is a word boundary for
    WordPiece too, so the runs' ids, put end to end, are the sentence's)."""
    if sentence.count(" ") < RUN_WORDS:  # the usual case, without splitting
        return [sentence]
    words = sentence.split()
    return [" ".join(words[i:i + RUN_WORDS]) for i in range(0, len(words), RUN_WORDS)]


def cut(ids: list[int], max_tokens: int) -> list[list[int]]:
    """A sentence of more than ``max_tokens`` tokens, which no example could hold, cut into
    near-equal pieces of at most half that (so that they pair up as sentences do); a shorter
    one as it is."""
    if len(ids) <= max_tokens:
        return [ids]
    pieces = -(-len(ids) // max(1, max_tokens // 2))
    bounds = [len(ids) * i // pieces for i in range(pieces + 1)]
    return [ids[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def tokenize(tokenizer: TextTokenizer, documents: list[Document],
             max_tokens: int) -> list[TokenDocument]:
    """Each document as lists of WordPiece ids; sentences without a token are dropped, longer
    ones than ``max_tokens`` cut (see ``cut``). The text is encoded ENCODE_BATCH runs at a time,
    so that no more than that is held as the library's encodings at once."""
    runs = [(d, s, run) for d, document in enumerate(documents)
            for s, sentence in enumerate(document) for run in _runs(sentence)]
    sentences: list[list[list[int]]] = [[[] for _ in document] for document in documents]
    for start in range(0, len(runs), ENCODE_BATCH):
        batch = runs[start:start + ENCODE_BATCH]
        for (d, s, _), ids in zip(batch, tokenizer.encode_corpus([r for *_, r in batch]),
                                  strict=True):
            sentences[d][s] += ids
    tokenized = [[piece for ids in document if ids for piece in cut(ids, max_tokens)]
                 for document in sentences]
    return [d for d in tokenized if d]


def all_pairs(rng: np.random.Generator, documents: list[TokenDocument],
              fallback: list[TokenDocument], sequence_length: int, short: float,
              dupe_factor: int, sentence_task: str = "nsp") -> list[Pair]:
    """Every pair of ``sentence_task`` (nsp or sop) of ``dupe_factor`` passes over the
    documents, shuffled. A random B comes from another document of the same set, or from
    ``fallback`` when the set has one document."""
    pairs = []
    for _ in range(dupe_factor):
        for i in range(len(documents)):
            others = [*documents[:i], *documents[i + 1:]] or fallback
            pairs += document_pairs(rng, documents, i, sequence_length, short, others,
                                    sentence_task)
    return [pairs[i] for i in rng.permutation(len(pairs))]


def all_sequences(rng: np.random.Generator, documents: list[TokenDocument],
                  sequence_length: int, short: float, dupe_factor: int) -> list[list[int]]:
    """The full-sentence sequences of ``dupe_factor`` passes over the documents, each pass in
    a random order of the documents, shuffled."""
    sequences = []
    for _ in range(dupe_factor):
        order = rng.permutation(len(documents))
        sequences += full_sentences(rng, [documents[i] for i in order], sequence_length, short)
    return [sequences[i] for i in rng.permutation(len(sequences))]


def unmasked_examples(rng: np.random.Generator, documents: list[TokenDocument],
                      fallback: list[TokenDocument], params: DataParams,
                      sentence_task: str) -> dict[str, np.ndarray]:
    """The packed, unmasked examples of ``sentence_task`` cut from ``documents``."""
    t, short = params.sequence_length, params.short_sequence_probability
    if sentence_task == "none":
        return pack_sequences(all_sequences(rng, documents, t, short, params.dupe_factor), t)
    pairs = all_pairs(rng, documents, fallback, t, short, params.dupe_factor, sentence_task)
    return pack(pairs, t, params.vocab_size)


def context_free_loss(frequencies: np.ndarray, seen: np.ndarray, target: np.ndarray) -> float:
    """Mean -log P(target | the token seen at the position, the position was selected) with
    tokens assumed i.i.d. with ``frequencies`` (C,); seen, target (M,) content indices, seen -1
    for [MASK]. The closed form of ``bert.data.language.context_free_posterior``."""
    c, keep = len(frequencies), 1.0 - MASK_FRACTION - RANDOM_FRACTION
    shown = seen >= 0
    y = np.where(shown, seen, 0)
    likelihood = np.where(shown, RANDOM_FRACTION / c + keep * (target == y), 1.0)
    evidence = np.where(shown, RANDOM_FRACTION / c + keep * frequencies[y], 1.0)
    return float(-np.mean(np.log(frequencies[target] * likelihood / evidence)))


def baselines(train: dict[str, np.ndarray], test: dict[str, np.ndarray],
              vocab_size: int, sentence_task: str = "nsp") -> dict[str, float]:
    """The unigram (training-set token frequencies, add-one smoothed) and uniform MLM losses
    of the test labels, and chance on the sentence task (keys as
    ``bert.data.examples.optimum``'s)."""
    first = NUM_TEXT_SPECIAL
    labels = train["mlm_labels"].astype(np.int64)
    original = np.where(labels >= 0, labels, train["input_ids"])
    counts = np.bincount(original[original >= first] - first, minlength=vocab_size - first)
    labelled = test["mlm_labels"] >= 0
    target = test["mlm_labels"][labelled].astype(np.int64) - first
    seen = test["input_ids"][labelled].astype(np.int64)
    seen = np.where(seen >= first, seen - first, -1)
    c = vocab_size - first
    return {"unigram_mlm_loss": context_free_loss((counts + 1) / (counts.sum() + c), seen, target),
            "uniform_mlm_loss": context_free_loss(np.full(c, 1.0 / c), seen, target),
            **({} if sentence_task == "none" else {f"chance_{sentence_task}_loss": math.log(2.0),
                                                    f"chance_{sentence_task}_accuracy": 0.5}),
            "num_mlm_labels": int(target.shape[0]), "num_examples": num_examples(test)}


def corpus_digest(paths: list[Path]) -> str:
    """The SHA-256 of the files' contents, in order (a run trained on other text is another
    run)."""
    digest = hashlib.sha256()
    for path in paths:
        data = path.read_bytes()
        digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


def require_text_memory(paths: list[Path], params: DataParams) -> None:
    """ResourceError, before a byte is read, when the text of ``paths`` cannot be read and cut
    into examples in the machine's memory (about TEXT_MEMORY_PER_BYTE bytes per byte of text)."""
    size = text_bytes(paths)
    require_memory(TEXT_MEMORY_PER_BYTE * size, f"data.text_files: the text ({gib(size)} GiB)",
                   "use fewer or smaller files")


def num_tokens(documents: list[TokenDocument]) -> int:
    return sum(len(sentence) for document in documents for sentence in document)


def held_tokens(examples: dict[str, np.ndarray], sentence_task: str) -> int:
    """The tokens of the documents that unmasked examples hold: every content token, but those
    of an NSP random B (label 1), which are another document's text."""
    held = (examples["input_ids"] >= NUM_TEXT_SPECIAL) & (examples["attention_mask"] == 1)
    if sentence_task == "nsp":
        held &= ~((examples["token_type_ids"] == 1) & (examples["nsp_labels"][:, None] == 1))
    return int(held.sum())


def build_text_sets(params: DataParams, root: Path, splits: dict[str, str],
                    begin: Callable[[str], object] = lambda phase: None,
                    ) -> tuple[TextTokenizer, dict, str]:
    """The tokenizer, the masked example arrays of each split by name, and the corpus digest.

    splits: the sentence task of each split, by name, in the order of their random streams:
    ``train`` first (cut from the training documents), then the others (from the test ones).
    ``begin`` is called with the name of each phase as it starts
    (``bert.data.datasets.TEXT_PHASES``).
    """
    begin("reading the text")
    paths = text_paths(params.text_files, root)
    require_text_memory(paths, params)
    documents = read_corpus(paths, params.sentence_per_line)
    split, *streams = (np.random.default_rng(s) for s in
                       np.random.SeedSequence(params.random_seed).spawn(1 + len(splits)))
    train_docs, test_docs = split_train_test(documents, params.test_fraction, split)
    begin("learning the vocabulary")
    tokenizer = learn_tokenizer(train_docs, params.vocab_size, params.lowercase)
    max_tokens = params.sequence_length - 3
    begin("encoding the text")
    train_tokens = tokenize(tokenizer, train_docs, max_tokens)
    test_tokens = tokenize(tokenizer, test_docs, max_tokens)
    if not train_tokens or not test_tokens or len(train_tokens) + len(test_tokens) < 2:
        raise DataFileError(f"{', '.join(params.text_files)}: too few documents with a token "
                            "left after normalisation; add text")
    continuation = continuations(tokenizer.vocab) if params.whole_word_masking else None
    begin("cutting the examples")
    sets, said = {}, []
    for (name, task), rng in zip(splits.items(), streams, strict=True):
        docs, fallback = ((train_tokens, test_tokens) if name == "train"
                          else (test_tokens, train_tokens))
        examples = unmasked_examples(rng, docs, fallback, params, task)
        if name in ("train", "test"):
            held = held_tokens(examples, task)
            what = "training" if name == "train" else name
            said.append(f"{num_examples(examples):,} {what} examples hold "
                        f"{held / max(1, params.dupe_factor * num_tokens(docs)):.0%} of the "
                        f"{num_tokens(docs):,} tokens of {len(docs):,} documents")
        sets[name] = masked_examples(rng, examples, NUM_TEXT_SPECIAL, params.vocab_size,
                                     continuation, params.mask_probability)
    log.info("text: %s (per pass; the rest is cut from pairs longer than data.sequence_length "
             "- 3 tokens)", "; ".join(said))
    if not (sets["test"]["mlm_labels"] >= 0).any():
        raise ParamsError(f"data.mask_probability is {params.mask_probability}: the test set "
                          "has no masked token to score, so no MLM loss; raise it or add text")
    if num_examples(sets["train"]) < params.batch_size:
        raise DataFileError(f"{', '.join(params.text_files)}: only {num_examples(sets['train'])} "
                            f"training examples, fewer than data.batch_size "
                            f"({params.batch_size}); lower data.batch_size or add text")
    return tokenizer, sets, corpus_digest(paths)


def vocab_array(vocab: list[str]) -> np.ndarray:
    """The vocabulary as UTF-8 bytes, one piece per line (a piece holds no whitespace)."""
    return np.frombuffer("\n".join(vocab).encode("utf-8"), dtype=np.uint8)


def vocab_from_array(array: np.ndarray) -> list[str]:
    """The vocabulary stored by ``vocab_array``."""
    return array.tobytes().decode("utf-8").split("\n")
