"""The model's guesses on some examples: its top tokens at each position that carries an MLM
label and its probability for the sentence task, and ``python -m bert predict``, which prints
them. The picture (``bert.views.predictions_plot``) draws the same guesses.

Shape letters: ``B`` examples, ``T`` sequence, ``V`` vocabulary, ``M`` the positions with an
MLM label, ``T'`` the tokens of one example without its padding.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bert.core.config import BertConfig
from bert.core.layers import softmax
from bert.core.model import predict
from bert.views.inputs import Examples, load_examples, load_model
from bert.workflow.sentence import task_name

TOP_K = 3  # guesses shown per masked position


@dataclass(frozen=True)
class MaskedGuess:
    """The model at one position that carries an MLM label."""

    position: int
    shown: str  # the token the model sees there: [MASK], a random token or the original
    true: str  # the original token, the label
    top: list[tuple[str, float]]  # the k most probable tokens with their probabilities

    @property
    def hit(self) -> bool:
        """Whether the most probable token is the true one."""
        return self.top[0][0] == self.true


@dataclass(frozen=True)
class ExampleGuesses:
    """The model on one example: its guesses at the masked positions and for the sentence
    task."""

    index: int  # the example's number in its file
    tokens: list[str]  # the T' input tokens, padding cut off
    nsp_label: int | None  # the sentence label (NSP 0: B follows A; SOP 0: in order), or None
    is_next: float  # the model's probability of sentence label 0
    guesses: list[MaskedGuess]
    task: str = "nsp"  # the sentence task of the example


# what sentence labels 0 and 1 say in a line of text, and what the probability of 0 is of
SENTENCE_WORDS = {"nsp": ("B follows A", "B is random", "that B follows A"),
                  "sop": ("A and B in order", "A and B swapped", "that A and B are in order")}


def masked_predictions(
    params: Mapping[str, np.ndarray], config: BertConfig, examples: Examples, k: int = TOP_K
) -> list[ExampleGuesses]:
    """The model's top ``k`` tokens at every labelled position of each example, and its
    probability of sentence label 0, in inference (no dropout)."""
    a = examples.arrays
    labelled = examples.labelled()  # (B, T)
    out = predict(params, config, a["input_ids"], a["token_type_ids"], a["attention_mask"],
                  mlm_positions=labelled)
    mlm_probs = softmax(out["mlm_logits"].astype(np.float64))  # (M, V), row-major positions
    nsp_probs = softmax(out["nsp_logits"].astype(np.float64))  # (B, 2)
    results, m = [], 0
    for row, index in enumerate(examples.indices):
        guesses = []
        for position in examples.masked(row):
            top = np.argsort(-mlm_probs[m], kind="stable")[:k]
            name = examples.name
            guesses.append(MaskedGuess(
                int(position), name(int(a["input_ids"][row, position])),
                name(int(a["mlm_labels"][row, position])),
                [(name(int(t)), float(mlm_probs[m, t])) for t in top]))
            m += 1
        label = int(a["nsp_labels"][row]) if "nsp_labels" in a else None
        results.append(ExampleGuesses(index, examples.tokens(row), label,
                                      float(nsp_probs[row, 0]), guesses, examples.task))
    return results


def nsp_line(example: ExampleGuesses) -> str:
    """The sentence label of an example and the model's belief, in words."""
    if example.nsp_label is None:
        return "no sentence label (data.sentence_task: none)"
    zero, one, belief = SENTENCE_WORDS[example.task]
    truth = f"{one} (label 1)" if example.nsp_label else f"{zero} (label 0)"
    return (f"{task_name(example.task)}: {truth}; the model's probability {belief}: "
            f"{example.is_next:.2f}")


def prediction_header(k: int = TOP_K) -> str:
    return f"{'pos':>4}  {'input':<7} {'true':<7} " + "".join(
        f"{'guess ' + str(i + 1):<15}" for i in range(k)).rstrip()


def prediction_row(guess: MaskedGuess) -> str:
    """One table row; ``*`` marks the true token among the guesses."""
    cells = "".join(f"{name + ' ' + f'{p:.3f}' + ('*' if name == guess.true else ''):<15}"
                    for name, p in guess.top)
    return f"{guess.position:>4}  {guess.shown:<7} {guess.true:<7} {cells}".rstrip()


def format_predictions(example: ExampleGuesses) -> list[str]:
    """An example's input, its NSP line and the table of guesses, as lines of text."""
    lines = ["input: " + " ".join(example.tokens), nsp_line(example)]
    if not example.guesses:
        return [*lines, "no position of this example carries an MLM label"]
    hits = sum(g.hit for g in example.guesses)
    return [*lines, f"MLM: {hits} of {len(example.guesses)} positions guessed right "
            "(* marks the true token)", prediction_header(),
            *(prediction_row(g) for g in example.guesses)]


def predict_text(test_path: str | Path, index: int, model_path: str | Path) -> str:
    """``python -m bert predict``: the model's guesses for one example, as text."""
    examples = load_examples(test_path, [index])
    config, weights = load_model(model_path, examples)
    (example,) = masked_predictions(weights, config, examples)
    head = f"{test_path}, example {example.index} of {examples.count}; model {model_path}"
    return "\n".join([head, *format_predictions(example)])
