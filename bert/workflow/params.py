"""The parameters of ``params.yaml``, one frozen dataclass per section: what a user reads.

Every field says its default, its help and its allowed values (``bert.fields.param``); the
parameters page (``docs/parameters.md``) and the comments of the committed ``params.yaml`` are
made from them (``python -m bert.workflow.params_page``). The ``data:`` section lives with the
data (``bert.data.params``). ``bert.workflow.loader`` reads and validates a file into ``Params``.

Adding a section: write a ``Section`` dataclass, then add a field of that type to ``Params``.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from bert.core.config import BertConfig, field_doc
from bert.data.params import DataParams
from bert.data.tokens import PAD
from bert.errors import bounded
from bert.fields import Section, param

__all__ = ["DataParams", "EvaluationParams", "LoggingParams", "ModelParams", "Params",
           "TrainingParams", "bert_config"]


@dataclass(frozen=True)
class LoggingParams(Section):
    """The ``logging:`` section. Changing it reruns nothing. Each stage logs into the folder it
    writes (``log.txt`` of the run, of its data or of its initial weights)."""

    level: str = param("INFO", "messages shown on the console and written to the log files",
                       choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    max_bytes: int = param(1_000_000, "size at which the log file is rotated", low=1024)
    backup_count: int = param(3, "rotated log files kept (at most 1000)", low=0, high=1000)
    progress_bar: bool = param(True, "show progress bars (training, with running losses; "
                               "evaluation; the text data stage) when stderr is a terminal; "
                               "never in a file or a pipe")
    live_every_steps: int = param(20, "steps between two lines of the run's live metrics "
                                  "(live.jsonl: losses, learning rate, gradient norm, tokens "
                                  "per second; a line per epoch too; 0: the epoch lines alone)",
                                  low=0)


def as_config(name: str, note: str = "") -> str:
    """The help text of a parameter that is ``BertConfig.<name>``: that field's own doc."""
    return f"{field_doc(name)} (BertConfig.{name}){note}"


@dataclass(frozen=True)
class ModelParams(Section):
    """The ``model:`` section: the BERT architecture; the vocabulary and the sequence length
    come from ``data:``. Each key that is a field of ``BertConfig`` says which."""

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
    """The ``training:`` section: optimization, checkpoints and the training randomness.

    Every key but ``epochs``, ``checkpoint_every_steps``, ``keep_checkpoints``, ``threads``,
    ``processes`` and ``mpiexec`` defines the run: changing one starts a new run from the
    initial weights; changing those resumes the same run."""

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
                             "last step; 0: the run's last step, training.epochs times the "
                             "batches of an epoch, and then more epochs are another run; only "
                             "read by linear)", low=0)
    mlm_loss_weight: float = param(1.0, "weight of the MLM loss in the total loss", low=0.0)
    nsp_loss_weight: float = param(
        0.25, "weight of the sentence-task loss (NSP, or SOP under data.sentence_task: sop; "
        "none has none) in the total loss (BERT: 1; the demo's MLM learns faster at 0.25)",
        low=0.0,
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
    layers: str = param("fast", "the layer functions training runs on: fast (bert.core.kernels) "
                        "or reference (bert.core.layers, each body its formula: slower, equal "
                        "to round-off, to step through in a debugger)",
                        choices=("fast", "reference"))
    threads: int = param(0, "compute threads per process, which run the micro-batches (one "
                         "each at a time) when there are several, else the elementwise chains "
                         "and the matrix products of the batch (BLAS on one thread each; 0: "
                         "one per CPU, shared among the processes of a host; at most 1024); "
                         "the results do not depend on it", low=0, high=1024)
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
        try:
            shlex.split(self.mpiexec)
        except ValueError as error:  # "No closing quotation"
            yield "mpiexec", (f"is {bounded(self.mpiexec)}, which cannot be split into words "
                              f"({error}); fix its quotes")
        if self.micro_batches % self.processes:
            yield "micro_batches", (f"is {self.micro_batches}, not a multiple of "
                                    f"training.processes ({self.processes}); make it one")
        if self.lr_schedule == "linear" and 0 < self.decay_steps <= self.warmup_steps:
            yield "decay_steps", (f"is {self.decay_steps}, not after training.warmup_steps "
                                  f"({self.warmup_steps}); make it larger")
        if self.mlm_loss_weight == 0 and self.nsp_loss_weight == 0:
            yield "mlm_loss_weight", "and training.nsp_loss_weight are both 0; make one positive"


@dataclass(frozen=True)
class EvaluationParams(Section):
    """The ``evaluation:`` section: scoring the trained model. The scores go to the run's folder
    (``metrics.json``, ``results.json``)."""

    batch_size: int = param(256, "examples per forward pass when scoring", low=1)
    train_examples: int = param(4096, "training examples scored for train_mlm_loss, the first "
                                "ones of the set (0: all); under data.masking: dynamic with the "
                                "masks of epoch training.epochs (0-based), which training never "
                                "drew", low=0)


PICTURE_FORMATS = ("png", "svg")  # the formats the plots stage can write a picture in


@dataclass(frozen=True)
class PlotsParams(Section):
    """The ``plots:`` section: the files each picture of the plots stage is written as."""

    formats: tuple[str, ...] = param(("png",), "the formats each picture is written in, a file "
                                     "per format: png and/or svg (e.g. plots/curves.png and "
                                     "plots/curves.svg in the run's folder)")

    def problems(self) -> Iterator[tuple[str, str]]:
        unknown = [f for f in self.formats if f not in PICTURE_FORMATS]
        if unknown:
            yield "formats", (f"has {bounded(unknown[0])}, not a picture format; list "
                              f"{' and/or '.join(PICTURE_FORMATS)}")
        elif not self.formats:
            yield "formats", f"is empty; list {' and/or '.join(PICTURE_FORMATS)}"
        elif len(set(self.formats)) < len(self.formats):
            twice = next(f for f in self.formats if self.formats.count(f) > 1)
            yield "formats", f"names {twice} twice; list each format once"


@dataclass(frozen=True)
class Params:
    """Every section of ``params.yaml``; a missing section takes its defaults."""

    logging: LoggingParams = field(default_factory=LoggingParams)
    data: DataParams = field(default_factory=DataParams)
    model: ModelParams = field(default_factory=ModelParams)
    training: TrainingParams = field(default_factory=TrainingParams)
    evaluation: EvaluationParams = field(default_factory=EvaluationParams)
    plots: PlotsParams = field(default_factory=PlotsParams)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """All sections as nested plain dicts with sorted keys."""
        return {f.name: getattr(self, f.name).to_dict() for f in dataclasses.fields(self)}

    def problems(self) -> Iterator[tuple[str, str]]:
        """Problems across sections: no loss to train on, micro-batches that do not divide the
        batch (memory: ``bert.workflow.resources``)."""
        if self.data.sentence_task == "none" and self.training.mlm_loss_weight == 0:
            yield "training.mlm_loss_weight", ("is 0 and data.sentence_task is none, which has "
                                               "no sentence loss: nothing would be trained; "
                                               "make it positive")
        batch_size, micro_batches = self.data.batch_size, self.training.micro_batches
        if batch_size % micro_batches:
            yield "data.batch_size", (f"is {batch_size}, not a multiple of "
                                      f"training.micro_batches ({micro_batches}); make it one")

    def subset(self, keys: tuple[str, ...]) -> dict[str, dict[str, Any]]:
        """The parameters named by ``keys``, nested as in the file: each key is a section
        (``"model"``), one parameter (``"training.dtype"``) or, with a leading ``-``, a parameter
        left out of a section taken whole (``"-training.threads"``)."""
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
