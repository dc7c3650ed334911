"""The ``data:`` section of the parameters: where the text comes from and the examples cut from it.

It lives with the data, since it is the input of everything under ``bert/data``; the workflow's
other sections are in ``bert.workflow.params``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from bert.data.tokens import NUM_SPECIAL
from bert.fields import Section, param

SYNTHETIC_MAX_VOCAB = 4096  # its transition matrices are (K, C, C)


@dataclass(frozen=True)
class DataParams(Section):
    """The ``data:`` section: the source of the text (the synthetic language or text files) and
    the examples cut from it.

    Under ``source: text`` the keys marked *synthetic only* are ignored, and ``vocab_size`` may
    go up to 65536 (the synthetic language stops at 4096). Changing a ``data:`` key reruns the
    data stage and every stage after it (init too for ``vocab_size`` and ``sequence_length``).
    """

    source: str = param("synthetic", "where the text comes from: synthetic (the drawn language, "
                        "with a known optimum) or text (data.text_files)",
                        choices=("synthetic", "text"))
    text_files: tuple[str, ...] = param((), "source text: the UTF-8 files read (a list of paths "
                                        "or globs, relative to the project folder; only read by "
                                        "text)")
    sentence_per_line: bool = param(False, "text format: one sentence per line, a blank line "
                                    "between documents (else sentences end at . ! ? and a "
                                    "space; only read by text)")
    test_fraction: float = param(0.1, "share of the documents held out as the test set, at "
                                 "least one (only read by text)", low=0.0, high=1.0,
                                 open_low=True)
    lowercase: bool = param(True, "lowercase and strip accents before WordPiece (only read by "
                            "text)")
    whole_word_masking: bool = param(False, "mask all the WordPiece pieces of a word together "
                                     "(only read by text)")
    dupe_factor: int = param(1, "passes over the corpus, each with fresh pairs and masks (only "
                             "read by text)", low=1)
    random_seed: int = param(
        0, "seed of every random draw of the data stage (language, train set, test set)", low=0
    )
    vocab_size: int = param(
        64, "vocabulary size, counting the 4 special tokens [PAD] [CLS] [SEP] [MASK] (text: the "
        "WordPiece vocabulary, counting [UNK] as a fifth)", low=NUM_SPECIAL + 2, high=65536,
    )
    sequence_length: int = param(
        32, "tokens per example, [CLS] A [SEP] B [SEP] and padding included", low=5, high=4096
    )
    sentence_task: str = param(
        "nsp", "the sentence task of the examples: nsp (BERT: B follows A, or is cut from "
        "another document), sop (ALBERT: two consecutive segments, in order or swapped) or none "
        "(RoBERTa: one stream of text, [CLS] x [SEP], no sentence label); probe_nsp.h5 and "
        "probe_sop.h5 score any model on both", choices=("nsp", "sop", "none"),
    )
    batch_size: int = param(
        32, "examples per batch (synthetic: each set holds a whole number of batches)", low=1
    )
    num_train_batches: int = param(1000, "batches in the training set (train.h5; "
                                   "synthetic only)", low=1)
    num_test_batches: int = param(
        40, "batches in the test set (test.h5), on which the optimum is computed "
        "(synthetic only)", low=1
    )
    mask_probability: float = param(
        0.15, "probability that a content token is selected for MLM (then 80% [MASK], "
        "10% random content token, 10% unchanged)", low=0.0, high=1.0, open_low=True,
    )
    masking: str = param(
        "static", "MLM masks of the training set: static (drawn once, stored in train.h5) or "
        "dynamic (drawn afresh each epoch from training.random_seed, the epoch and the example; "
        "train.h5 holds the unmasked tokens); the test set's masks are always fixed",
        choices=("static", "dynamic"),
    )
    short_sequence_probability: float = param(
        0.1, "probability that an example is shorter than sequence_length and padded",
        low=0.0, high=1.0,
    )
    num_topics: int = param(
        4, "topics of the language; each document has one, each topic its own Markov chain "
        "(synthetic only)", low=1, high=256,
    )
    successors: int = param(
        3, "tokens each token can be followed by within a topic (the sparsity of the chain; "
        "synthetic only)", low=1,
    )
    concentration: float = param(
        1.0, "Dirichlet concentration of the successor probabilities: small is predictable, "
        "large is near uniform over the successors (synthetic only)", low=0.0, open_low=True,
    )
    transition_noise: float = param(
        0.02, "probability that a transition ignores the chain and draws a uniform content "
        "token (1 gives a uniform language; synthetic only)", low=0.0, high=1.0,
        open_low=True,
    )
    random_next_topic: str = param(
        "any", "topic of the document a random B (NSP label 1) is cut from: any (drawn "
        "independently, as BERT's random documents) or same (A's topic, so that only the "
        "transition across [SEP] tells the labels apart; synthetic only)", choices=("any", "same"),
    )

    @property
    def num_content(self) -> int:
        """Content tokens: ids NUM_SPECIAL .. vocab_size - 1."""
        return self.vocab_size - NUM_SPECIAL

    def problems(self) -> Iterator[tuple[str, str]]:
        if self.source == "text":
            if not self.text_files:
                yield "text_files", ("is empty but data.source is text; list the text files "
                                     "(paths or globs relative to the project folder)")
            return
        if self.vocab_size > SYNTHETIC_MAX_VOCAB:
            yield "vocab_size", (f"is {self.vocab_size}; the synthetic language has at most "
                                 f"{SYNTHETIC_MAX_VOCAB} tokens; lower it")
        if self.successors > self.num_content:
            yield "successors", (
                f"is {self.successors} but there are only {self.num_content} content tokens "
                f"(vocab_size - {NUM_SPECIAL}); set it to at most {self.num_content}"
            )
