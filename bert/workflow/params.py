"""The parameters of ``params.yaml``: one frozen dataclass per section, one validating loader.

Each section is a frozen dataclass whose fields are declared with :func:`param`: a default, a
help text (it becomes the README documentation) and, for numbers, an allowed range. The loader
rejects unknown keys (suggesting the closest known one), wrong types (a bool is not an int; an
int is accepted where a float is expected) and out-of-range values, then asks the section for
its cross-field problems. Every failure is one :class:`ParamsError` line that names the key as
``section.key`` and says what to do.

Adding a section: write a ``Section`` dataclass, then add a field of that type to ``Params``.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
import math
import re
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

import yaml

from bert.core.config import BertConfig
from bert.data.tokens import NUM_SPECIAL, PAD
from bert.errors import ParamsError, ResourceError, bounded
from bert.storage.memory import gib, machine_bytes, weights_bytes
from bert.workflow.layout import output_path_problem

S = TypeVar("S", bound="Section")
SYNTHETIC_MAX_VOCAB = 4096  # its transition matrices are (K, C, C)

# PyYAML (YAML 1.1) reads 1e-3 as a string; a float field accepts such strings.
_FLOAT_STRING = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def param(
    default: Any,
    help: str,
    *,
    low: float | None = None,
    high: float | None = None,
    open_low: bool = False,
    choices: tuple[str, ...] | None = None,
) -> Any:
    """A dataclass field with its help text and allowed values stored as metadata.

    ``low``/``high`` bound numbers (inclusive; ``open_low`` excludes ``low``); ``choices`` lists
    the allowed strings.
    """
    metadata = {"help": help, "range": (low, high), "open_low": open_low, "choices": choices}
    return field(default=default, metadata=metadata)


class Section:
    """Behaviour shared by every section dataclass."""

    def problems(self) -> Iterator[tuple[str, str]]:
        """Cross-field inconsistencies as ``(key, message with the fix)``; none by default."""
        return iter(())

    def to_dict(self) -> dict[str, Any]:
        """The section as a plain dict with sorted keys (for fingerprints and file attributes);
        a tuple of strings becomes a list."""
        return {f.name: _plain(getattr(self, f.name))
                for f in sorted(dataclasses.fields(self), key=lambda f: f.name)}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True)
class DataParams(Section):
    """The ``data:`` section: the source of the text (the synthetic language or text files) and
    the examples cut from it."""

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
    batch_size: int = param(
        32, "examples per batch (synthetic: each set holds a whole number of batches)", low=1
    )
    num_train_batches: int = param(1000, "batches in the training set (data/train.h5; "
                                   "synthetic only)", low=1)
    num_test_batches: int = param(
        40, "batches in the test set (data/test.h5), on which the optimum is computed "
        "(synthetic only)", low=1
    )
    mask_probability: float = param(
        0.15, "probability that a content token is selected for MLM (then 80% [MASK], "
        "10% random content token, 10% unchanged)", low=0.0, high=1.0, open_low=True,
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


@dataclass(frozen=True)
class LoggingParams(Section):
    """The ``logging:`` section. Changing it reruns nothing."""

    level: str = param("INFO", "messages shown on the console and written to the log file",
                       choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    file: str = param("artifacts/logs/bert.log", "the log file (rotated): a file inside "
                      "artifacts/ that is not one of the workflow's own")
    max_bytes: int = param(1_000_000, "size at which the log file is rotated", low=1024)
    backup_count: int = param(3, "rotated log files kept", low=0)
    progress_bar: bool = param(True, "show a progress bar with running losses while training")

    def problems(self) -> Iterator[tuple[str, str]]:
        problem = output_path_problem(self.file, "logs/bert.log")
        if problem:
            yield "file", problem


@functools.cache
def _config_comments() -> dict[str, str]:
    """The comment of each ``BertConfig`` field (one per field, as in nanoGPT's ``GPTConfig``),
    read from its source."""
    source = inspect.getsource(BertConfig)
    return dict(re.findall(r"^    (\w+): [^=\n]+=[^#\n]+#\s*(.+)$", source, re.M))


def as_config(field: str, note: str = "") -> str:
    """The help text of a parameter that is ``BertConfig.<field>``: that field's own comment."""
    return f"{_config_comments()[field]} (BertConfig.{field}){note}"


@dataclass(frozen=True)
class ModelParams(Section):
    """The ``model:`` section: the BERT architecture (vocabulary and length come from data)."""

    dim_model: int = param(64, as_config("hidden_size"), low=1)
    num_heads: int = param(4, as_config("num_attention_heads"), low=1)
    dim_ff: int = param(128, as_config("intermediate_size"), low=1)
    num_layers: int = param(2, as_config("num_hidden_layers"), low=1)
    hidden_dropout: float = param(0.0, as_config("hidden_dropout_prob", "; BERT used 0.1, the "
                                                 "demo learns faster without"),
                                  low=0.0, high=0.99)
    attention_dropout: float = param(0.0, as_config("attention_probs_dropout_prob",
                                                    "; BERT used 0.1"), low=0.0, high=0.99)
    initializer_range: float = param(0.05, as_config("initializer_range", "; BERT used 0.02, "
                                                     "the demo learns faster from 0.05"),
                                     low=0.0, open_low=True)
    layer_norm_eps: float = param(1e-12, as_config("layer_norm_eps"), low=0.0, open_low=True)
    random_seed: int = param(0, "seed of the weight initialization", low=0)
    init_from: str = param("", "start from these weights instead of a random initialization: a "
                           "transformers directory (config.json + model.safetensors) or one of "
                           "our .h5 weight or checkpoint files; its architecture must be the one "
                           "model: and data: describe (empty: random)")

    def problems(self) -> Iterator[tuple[str, str]]:
        if self.dim_model % self.num_heads:
            yield "num_heads", (f"is {self.num_heads}, which does not divide model.dim_model "
                                f"({self.dim_model}); choose a divisor of it")


@dataclass(frozen=True)
class TrainingParams(Section):
    """The ``training:`` section: optimization, checkpoints and the training randomness."""

    epochs: int = param(4, "passes over the training set; raising it continues the same run "
                        "(past training.decay_steps at the linear schedule's rate of 0)", low=1)
    learning_rate: float = param(4e-3, "peak learning rate of AdamW", low=0.0, open_low=True)
    lr_schedule: str = param("linear", "shape of the rate after warmup: linear (to 0 at "
                             "decay_steps, then 0), inverse_sqrt (learning_rate * "
                             "sqrt(warmup_steps / step), so more epochs go on smoothly) or "
                             "constant",
                             choices=("linear", "constant", "inverse_sqrt"))
    warmup_steps: int = param(300, "steps over which the rate rises linearly from 0", low=0)
    decay_steps: int = param(4000, "step at which the linear schedule reaches 0 (a step "
                             "count, not tied to epochs: the default is the default run's "
                             "last step; only read by linear)", low=1)
    mlm_loss_weight: float = param(1.0, "weight of the MLM loss in the total loss", low=0.0)
    nsp_loss_weight: float = param(
        0.25, "weight of the NSP loss in the total loss (BERT: 1; the demo's MLM learns faster "
        "at 0.25)", low=0.0,
    )
    weight_decay: float = param(0.01, "decoupled weight decay (not on biases and LayerNorm)",
                                low=0.0)
    adam_beta1: float = param(0.9, "AdamW first-moment decay", low=0.0, high=0.999999)
    adam_beta2: float = param(0.999, "AdamW second-moment decay", low=0.0, high=0.999999)
    adam_epsilon: float = param(1e-6, "AdamW epsilon", low=0.0, open_low=True)
    max_grad_norm: float = param(1.0, "clip the global gradient norm to this (0: no clipping)",
                                 low=0.0)
    checkpoint_every_steps: int = param(500, "also checkpoint every this many steps (0: only "
                                        "at the end of each epoch)", low=0)
    keep_checkpoints: int = param(3, "newest checkpoints kept per run", low=1)
    random_seed: int = param(0, "seed of the example order and of dropout", low=0)
    dtype: str = param("float32", "floating-point type of weights and computation",
                       choices=("float32", "float64"))
    threads: int = param(0, "compute threads per process, which run the micro-batches (one "
                         "each at a time) when there are several, else the elementwise chains "
                         "and the matrix products of the batch (BLAS on one thread each; 0: "
                         "one per CPU, shared among the processes of a host); the results do "
                         "not depend on it", low=0)
    processes: int = param(1, "MPI ranks that share each batch (data parallel; needs the mpi "
                           "extra); above 1 the train stage runs under training.mpiexec. The "
                           "result does not depend on it, so a run may resume under another "
                           "count", low=1)
    micro_batches: int = param(1, "equal parts each batch is cut into (gradient accumulation; "
                               "the ranks share them, each process runs its share on its "
                               "threads); a multiple of processes, dividing data.batch_size",
                               low=1)
    mpiexec: str = param("mpiexec", "the MPI launcher, with its arguments (e.g. srun, or "
                         "mpiexec -f hosts); looked up next to the Python interpreter first, "
                         "then on PATH")

    def problems(self) -> Iterator[tuple[str, str]]:
        if self.micro_batches % self.processes:
            yield "micro_batches", (f"is {self.micro_batches}, not a multiple of "
                                    f"training.processes ({self.processes}); make it one")
        if self.lr_schedule == "linear" and self.decay_steps <= self.warmup_steps:
            yield "decay_steps", (f"is {self.decay_steps}, not after training.warmup_steps "
                                  f"({self.warmup_steps}); make it larger")
        if self.mlm_loss_weight == 0 and self.nsp_loss_weight == 0:
            yield "mlm_loss_weight", "and training.nsp_loss_weight are both 0; make one positive"


@dataclass(frozen=True)
class EvaluationParams(Section):
    """The ``evaluation:`` section: scoring the trained model and the results file."""

    batch_size: int = param(256, "examples per forward pass when scoring", low=1)
    train_examples: int = param(4096, "training examples scored for train_mlm_loss, the first "
                                "ones of the set (0: all)", low=0)
    results_file: str = param("artifacts/results.json", "where the results JSON is written: a "
                              "file inside artifacts/ that is not one of the workflow's own")

    def problems(self) -> Iterator[tuple[str, str]]:
        problem = output_path_problem(self.results_file, "results.json")
        if problem:
            yield "results_file", problem


@dataclass(frozen=True)
class Params:
    """Every section of ``params.yaml``; a missing section takes its defaults."""

    logging: LoggingParams = field(default_factory=LoggingParams)
    data: DataParams = field(default_factory=DataParams)
    model: ModelParams = field(default_factory=ModelParams)
    training: TrainingParams = field(default_factory=TrainingParams)
    evaluation: EvaluationParams = field(default_factory=EvaluationParams)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """All sections as nested plain dicts with sorted keys."""
        return {f.name: getattr(self, f.name).to_dict() for f in dataclasses.fields(self)}

    def problems(self) -> Iterator[tuple[str, str]]:
        """Problems across sections: two outputs in one file, micro-batches that do not divide
        the batch, more memory than the machine."""
        log, results = PurePosixPath(self.logging.file), PurePosixPath(self.evaluation.results_file)
        if results == log or results.name.startswith(f"{log.name}.") and (
                results.parent == log.parent):
            yield "evaluation.results_file", (f"is {bounded(str(results))}, the log file or one "
                                              "of its rotated copies; choose another name")
        batch_size, micro_batches = self.data.batch_size, self.training.micro_batches
        if batch_size % micro_batches:
            yield "data.batch_size", (f"is {batch_size}, not a multiple of "
                                      f"training.micro_batches ({micro_batches}); make it one")
        yield from memory_problems(self)

    def subset(self, keys: tuple[str, ...]) -> dict[str, dict[str, Any]]:
        """The parameters named by ``keys``, nested as in the file: each key is a section
        (``"model"``), one parameter (``"training.dtype"``) or, with a leading ``-``, a parameter
        left out of a section taken whole (``"-evaluation.results_file"``)."""
        everything = self.to_dict()
        chosen: dict[str, dict[str, Any]] = {}
        for key in keys:
            section, _, name = key.removeprefix("-").partition(".")
            if key.startswith("-"):
                del chosen[section][name]
            elif name:
                chosen.setdefault(section, {})[name] = everything[section][name]
            else:
                chosen[section] = dict(everything[section])
        return chosen


def memory_problems(params: Params) -> Iterator[tuple[str, str]]:
    """Stages whose estimated peak memory exceeds the machine's, as ``(what, message)``.

    Rough upper estimates of the largest arrays each stage holds at once (``8`` bytes a float64,
    ``itemsize`` for the model's dtype), so that parameters that cannot run are refused before
    anything is written rather than by a MemoryError deep inside a stage.
    """
    d, m, t = params.data, params.model, params.training
    k, c, seq = d.num_topics, d.num_content, d.sequence_length
    itemsize = 8 if t.dtype == "float64" else 4
    examples = (d.num_train_batches + d.num_test_batches) * d.batch_size
    # data: the (K, C, C) transition table and its working copies, the optimum's messages
    # (at least one example's (T, K, C) forward and backward arrays), the example arrays
    data = 3 * k * c * c * 8 + 3 * max(256e6, 2 * seq * k * c * 8) + examples * seq * 16
    weights = weights_bytes(bert_config(params), itemsize)

    def activations(batch: int) -> float:  # per layer: (B, T, H|F) arrays and (B, NH, T, T) ones
        per_layer = batch * seq * (12 * m.dim_model + 4 * m.dim_ff + 4 * m.num_heads * seq)
        head = batch * seq * (d.vocab_size + 4 * m.dim_model)
        return (m.num_layers * per_layer + head) * itemsize

    # train: weights, gradients, two AdamW moments, a batch's activations, the data in memory
    train = 4 * weights + 2 * activations(d.batch_size) + examples * seq * 8
    evaluate = weights + activations(params.evaluation.batch_size) + examples * seq * 8
    fixes = {"data": "lower data.num_topics or data.vocab_size",
             "train": "lower the model: sizes or data.batch_size",
             "evaluate": "lower evaluation.batch_size or the model: sizes"}
    for stage, need in (("data", data), ("train", train), ("evaluate", evaluate)):
        if need > machine_bytes():
            yield f"the {stage} stage", (f"needs ~{gib(need)} GiB; the machine has "
                                         f"{gib(machine_bytes())}; {fixes[stage]}")


def bert_config(params: Params) -> BertConfig:
    """The architecture the parameters describe."""
    m, d = params.model, params.data
    return BertConfig(
        vocab_size=d.vocab_size, hidden_size=m.dim_model, num_hidden_layers=m.num_layers,
        num_attention_heads=m.num_heads, intermediate_size=m.dim_ff,
        max_position_embeddings=d.sequence_length, hidden_dropout_prob=m.hidden_dropout,
        attention_probs_dropout_prob=m.attention_dropout,
        initializer_range=m.initializer_range, layer_norm_eps=m.layer_norm_eps,
        pad_token_id=PAD)


def _suggest(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        return f"did you mean '{close[0]}'?"
    return "known keys: " + ", ".join(known)


def _type_name(kind: Any) -> str:
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(
        kind, str(kind)
    )


def _convert(value: Any, kind: Any) -> Any:
    """``value`` as ``kind`` (int, float, bool or str), or raise TypeError."""
    if kind is float:
        if isinstance(value, str) and _FLOAT_STRING.match(value.strip()):
            value = float(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind in (bool, str):
        if isinstance(value, kind):
            return value
    elif typing.get_origin(kind) is tuple:  # tuple[str, ...]: a list of strings, or one string
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise TypeError("a list of strings")
    else:
        raise NotImplementedError(f"parameter type {kind} is not supported")
    raise TypeError(_type_name(kind))


def _check_value(name: str, value: Any, f: dataclasses.Field) -> None:
    low, high = f.metadata["range"]
    choices = f.metadata["choices"]
    if isinstance(value, float) and not math.isfinite(value):
        raise ParamsError(f"{name} is {value}; set it to a finite number")
    if isinstance(value, int | float) and not isinstance(value, bool):
        too_low = low is not None and (value <= low if f.metadata["open_low"] else value < low)
        too_high = high is not None and value > high
        if too_low or too_high:
            left = "(" if f.metadata["open_low"] else "["
            allowed = f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}]"
            raise ParamsError(
                f"{name} is {bounded(value)}, outside {allowed} ({f.metadata['help']}); "
                f"set it to a value in {allowed}"
            )
    if choices is not None and value not in choices:
        raise ParamsError(f"{name} is {bounded(value)}; set it to one of {', '.join(choices)}")


def build_section(cls: type[S], mapping: Any, section: str) -> S:
    """Validate ``mapping`` (from YAML) against the section dataclass ``cls``; return it frozen.

    Raises ParamsError naming ``section.key`` on the first unknown key, wrong type, out-of-range
    value or cross-field inconsistency.
    """
    if mapping is None:
        mapping = {}
    if not isinstance(mapping, Mapping):
        raise ParamsError(f"{section} must be a mapping of key: value, not {bounded(mapping)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in mapping.items():
        name = f"{section}.{key}" if key in fields else f"{section}.{bounded(key).strip(chr(39))}"
        if key not in fields:
            suggestion = _suggest(str(key)[:100], list(fields))
            raise ParamsError(f"{name} is not a known parameter; {suggestion}")
        try:
            values[key] = _convert(value, hints[key])
        except TypeError as e:
            raise ParamsError(f"{name} is {bounded(value)}; set it to {e}") from None
        _check_value(name, values[key], fields[key])
    instance = cls(**values)
    for key, message in instance.problems():
        raise ParamsError(f"{section}.{key} {message}")
    return instance


def params_from_mapping(mapping: Any) -> Params:
    """Validate a whole ``params.yaml`` mapping; sections that are absent take their defaults."""
    if mapping is None:
        mapping = {}
    if not isinstance(mapping, Mapping):
        raise ParamsError("the top level must be a mapping of section: {key: value}")
    sections = {f.name: f for f in dataclasses.fields(Params)}
    hints = typing.get_type_hints(Params)
    for key in mapping:
        if key not in sections:
            raise ParamsError(f"{bounded(key).strip(chr(39))} is not a known section; "
                              f"{_suggest(str(key)[:100], list(sections))}")
    params = Params(**{key: build_section(hints[key], value, key)
                       for key, value in mapping.items()})
    for key, message in params.problems():
        error = ResourceError if message.startswith("needs ~") else ParamsError
        raise error(f"{key} {message}")
    return params


class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key that appears twice in one mapping (where the later
    one would silently win), at any depth."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            try:
                first = seen.setdefault(key, line)
            except TypeError:  # an unhashable key; the base class says so
                break
            if first != line:
                raise ParamsError(f"key {bounded(key)} appears twice, at lines {first} and "
                                  f"{line}; keep one of them")
        return super().construct_mapping(node, deep=deep)


def load_params(path: str | Path) -> Params:
    """Read and validate a ``params.yaml`` file; every error names the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found; create it or pass the right path") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ParamsError(f"{path}: cannot be read ({e}); check the file") from None
    try:
        mapping = yaml.load(text, Loader=UniqueKeyLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or type(e).__name__
        raise ParamsError(f"{path}: invalid YAML{where} ({problem}); fix the syntax") from None
    except RecursionError:
        raise ParamsError(f"{path}: nested too deeply to be read; fix the file") from None
    except ValueError as e:  # e.g. an integer of more digits than Python converts
        raise ParamsError(f"{path}: a value cannot be read ({bounded(str(e))}); fix the "
                          "file") from None
    except ParamsError as e:
        raise ParamsError(f"{path}: {e}") from None
    try:
        return params_from_mapping(mapping)
    except ParamsError as e:
        raise ParamsError(f"{path}: {e}") from None
    except ResourceError as e:
        raise ResourceError(f"{path}: {e}") from None


def describe(cls: type[Section]) -> list[tuple[str, Any, str]]:
    """``(key, default, help)`` for every field of a section, in declaration order (for docs)."""
    return [(f.name, f.default, f.metadata["help"]) for f in dataclasses.fields(cls)]
