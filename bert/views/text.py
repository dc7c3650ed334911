"""What a run has learnt, as data and as text: the training curves against the optimum, the
attention maps of an example and the model's guesses at its masked positions.

The pictures (``bert.views.plots``) draw what these functions return, and the commands
``python -m bert curves | attention | predict`` print it, so both show the same numbers.

Shape letters: ``B`` batch, ``T`` sequence, ``L`` layers, ``NH`` heads, ``V`` vocabulary,
``T'`` the tokens of one example without its padding.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bert.core.config import BertConfig
from bert.core.labels import IGNORE_INDEX
from bert.core.layers import softmax
from bert.core.model import predict
from bert.data.datasets import dataset_attrs, load_dataset, load_optimum, token_namer
from bert.data.examples import num_examples
from bert.data.tokens import token_name
from bert.errors import ConfigError, DataFileError
from bert.storage.checkpoint import load_weights
from bert.workflow.gap import gap
from bert.workflow.layout import read_fix
from bert.workflow.report import read_history
from bert.workflow.sentence import has_sentence_label, task_name, task_of

TOP_K = 3  # guesses shown per masked position
NO_OPTIMUM = ("gaps and Bayes-optimal: – (text data has no optimum: the distribution that "
              "wrote the text is unknown)")


# --- inputs ------------------------------------------------------------------------------------


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


# --- attention ---------------------------------------------------------------------------------

def attention_probabilities(
    params: Mapping[str, np.ndarray],
    config: BertConfig,
    input_ids: np.ndarray,
    token_type_ids: np.ndarray,
    attention_mask: np.ndarray,
) -> np.ndarray:
    """Attention probabilities (L, B, NH, T, T) of every layer, in inference (no dropout).

    ``[l, b, h, i, j]``: how much query position i attends to key position j in head h of
    layer l; each row sums to 1 and padded keys get 0.
    """
    nowhere = np.zeros(input_ids.shape, dtype=bool)  # the MLM head is not needed here
    out = predict(params, config, input_ids, token_type_ids, attention_mask, nowhere)
    return np.stack(out["attentions"])


def attention_maps(
    params: Mapping[str, np.ndarray], config: BertConfig, examples: Examples, row: int = 0
) -> np.ndarray:
    """The attention probabilities (L, NH, T', T') of example ``row``, padding cut off."""
    arrays = {name: a[row:row + 1] for name, a in examples.arrays.items()}
    probs = attention_probabilities(params, config, arrays["input_ids"],
                                    arrays["token_type_ids"], arrays["attention_mask"])
    n = examples.length(row)
    return probs[:, 0, :, :n, :n]


def attention_window(length: int, size: int, first: int = 0) -> range:
    """The positions of an example of ``length`` tokens that are shown when at most ``size``
    fit: all of them, or ``size`` of them from ``first`` (moved back to end at the last)."""
    if length <= size:
        return range(length)
    first = min(max(first, 0), length - size)
    return range(first, first + size)


def format_attention(tokens: Sequence[str], probs: np.ndarray, k: int = TOP_K) -> list[str]:
    """One line per query token: the ``k`` keys it attends to most, with the probabilities.

    probs: (T', T') of one head.
    """
    width = max(len(t) for t in tokens)
    lines = [f"{'pos':>4}  {'token':<{width}}  attends most to (token@position probability)"]
    for i, token in enumerate(tokens):
        top = np.argsort(-probs[i], kind="stable")[:k]
        cells = "".join(f"{tokens[j] + '@' + str(j):<{width + 4}} {probs[i, j]:.2f}   "
                        for j in top)
        lines.append(f"{i:>4}  {token:<{width}}  {cells}".rstrip())
    return lines


# --- masked predictions ------------------------------------------------------------------------


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


# --- training curves ---------------------------------------------------------------------------


def load_history(path: str | Path) -> dict:
    """The training history written by the train stage (``artifacts/history.json``)."""
    return read_history(Path(path), read_fix(path, "training history"))


def moving_average(values: Sequence[float], window: int) -> np.ndarray:
    """Trailing means over ``window`` values (fewer at the start), one per value."""
    values = np.asarray(values, dtype=np.float64)
    sums = np.cumsum(np.r_[0.0, values])
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(ends - window, 0)
    return (sums[ends] - sums[starts]) / (ends - starts)


def epoch_spans(history: Mapping) -> list[tuple[int, int]]:
    """The steps each epoch record of a history covers, as (step before its first, its last):
    the span over which its means (training losses, throughput) were taken."""
    batches = history.get("batches_per_epoch") or 0
    return [(max(record["step"] - batches, 0), record["step"]) for record in history["epochs"]]


def smoothing_window(num_steps: int) -> int:
    """The moving-average window for a curve of ``num_steps`` steps: about 1/50 of it."""
    return max(1, num_steps // 50)


@dataclass(frozen=True)
class EpochColumn:
    """A column of the per-epoch table: its header, the epoch record key it shows, the optimum
    key when it shows the gap to it, and the optimum key it shows in each reference row."""

    header: str
    key: str
    gap_to: str | None = None
    references: Mapping[str, str] = field(default_factory=dict)  # row name -> optimum key


def epoch_columns(task: str) -> tuple[EpochColumn, ...]:
    """The columns of the per-epoch table of a run of sentence task ``task``: MLM's, then the
    task's (NSP, SOP; none without a sentence task)."""
    name = task_name(task)
    mlm = (EpochColumn("MLM train", "train_mlm_loss"),
           EpochColumn("MLM test", "test_mlm_loss", references={
               "Bayes-optimal": "bayes_mlm_loss", "unigram": "unigram_mlm_loss",
               "uniform/chance": "uniform_mlm_loss"}),
           EpochColumn("MLM gap", "test_mlm_loss", "bayes_mlm_loss"))
    accuracy = EpochColumn("MLM acc", "test_mlm_accuracy")
    if not has_sentence_label(task):
        return (*mlm, accuracy)
    return (*mlm,
            EpochColumn(f"{name} train", f"train_{task}_loss"),
            EpochColumn(f"{name} test", f"test_{task}_loss", references={
                "Bayes-optimal": f"bayes_{task}_loss", "uniform/chance": f"chance_{task}_loss"}),
            EpochColumn(f"{name} gap", f"test_{task}_loss", f"bayes_{task}_loss"),
            accuracy,
            EpochColumn(f"{name} acc", f"test_{task}_accuracy", references={
                "Bayes-optimal": f"bayes_{task}_accuracy",
                f"topics only ({name})": f"topic_only_{task}_accuracy",
                "uniform/chance": f"chance_{task}_accuracy"}),
            EpochColumn("acc gap", f"test_{task}_accuracy", f"bayes_{task}_accuracy"))


# the rows under the per-epoch table, in order; a task's topic-only row comes second
REFERENCE_ROWS = ("Bayes-optimal", "topics only ({})", "unigram", "uniform/chance")


def format_epochs(history: Mapping, optimum: Mapping[str, float],
                  task: str = "nsp") -> list[str]:
    """The per-epoch records of a history of sentence task ``task`` against the optimum, as a
    fixed-width table.

    Losses in nats; a gap is how much worse than the Bayes-optimal score the test score is
    (``bert.workflow.gap``).
    """
    def cell(value: float | None) -> str:
        return f"{'–':>10}" if value is None else f"{value:>10.4f}"

    columns = epoch_columns(task)
    left = f"{'epoch':>5} {'step':>7} {'lr':>9}"
    lines = [left + "".join(f"{column.header:>10}" for column in columns)]
    for record in history["epochs"]:
        cells = "".join(
            cell(record[c.key] if c.gap_to is None else None if c.gap_to not in optimum
                 else gap(c.key, record[c.key], optimum[c.gap_to]))
            for c in columns)
        lines.append(f"{record['epoch']:>5} {record['step']:>7} {record['learning_rate']:>9.2e}"
                     + cells)
    for name in REFERENCE_ROWS:
        name = name.format(task_name(task))
        keys = [column.references.get(name) for column in columns]
        if not any(key in optimum for key in keys):  # e.g. no optimum for text data
            continue
        cells = "".join(f"{'':>10}" if key is None else cell(optimum.get(key)) for key in keys)
        lines.append((f"{name:<23}" + cells).rstrip())
    if "bayes_mlm_loss" not in optimum:
        lines.append(NO_OPTIMUM)
    return lines


# --- the commands ------------------------------------------------------------------------------


def curves_text(history_path: str | Path, test_path: str | Path) -> str:
    """``python -m bert curves``: the per-epoch table of a history against the optimum."""
    history = load_history(history_path)
    optimum, task = load_optimum(test_path), sentence_task(test_path)
    steps = len(history["steps"]["loss_total"])
    head = (f"{history_path}: {len(history['epochs'])} epochs, {steps} steps of "
            f"{history.get('tokens_per_step', '?')} tokens; optimum of {test_path}")
    if not history["epochs"]:
        return head + "\nno epoch finished yet"
    return "\n".join([head, *format_epochs(history, optimum, task)])


def predict_text(test_path: str | Path, index: int, model_path: str | Path) -> str:
    """``python -m bert predict``: the model's guesses for one example, as text."""
    examples = load_examples(test_path, [index])
    config, weights = load_model(model_path, examples)
    (example,) = masked_predictions(weights, config, examples)
    head = f"{test_path}, example {example.index} of {examples.count}; model {model_path}"
    return "\n".join([head, *format_predictions(example)])


def attention_text(
    test_path: str | Path, index: int, model_path: str | Path,
    layer: int | None = None, head: int | None = None,
) -> str:
    """``python -m bert attention``: where each token attends most, for one head or all."""
    examples = load_examples(test_path, [index])
    config, weights = load_model(model_path, examples)
    for what, value, count in (("layer", layer, config.num_hidden_layers),
                               ("head", head, config.num_attention_heads)):
        if value is not None and not 0 <= value < count:
            raise ConfigError(f"{model_path}: has {count} {what}s, no {what} {value}; "
                              f"pick a {what} in 0..{count - 1}")
    probs = attention_maps(weights, config, examples)  # (L, NH, T', T')
    tokens = examples.tokens(0)
    lines = [f"{test_path}, example {examples.indices[0]} of {examples.count}; model "
             f"{model_path}", "input: " + " ".join(tokens)]
    layers = range(config.num_hidden_layers) if layer is None else [layer]
    heads = range(config.num_attention_heads) if head is None else [head]
    for i in layers:
        for h in heads:
            lines += ["", f"layer {i}, head {h}", *format_attention(tokens, probs[i, h])]
    return "\n".join(lines)
