"""Weight files and training checkpoints in HDF5, and finding the newest valid checkpoint.

A weights file (``artifacts/init.h5``, ``artifacts/model.h5``) holds every parameter as a
root dataset under its transformers name, with the architecture as the ``config`` attribute
(transformers' config keys, JSON). Each parameter says what it is (``describe_parameter``).

A checkpoint holds everything a resumed run needs to continue exactly as if it had never
stopped: the weights, AdamW's moments (``optimizer/exp_avg/<name>``, ``optimizer/exp_avg_sq/
<name>``), the global step (from which the epoch and the position in it follow, and the dropout
masks of the next step, drawn from a stream keyed by the step), the per-step history so far,
and the fingerprint of the parameters that define the run. Checkpoints of one run live in their
own folder named after that fingerprint, so runs with other parameters are never mixed in.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bert.core.config import BertConfig, param_shapes
from bert.core.costs import weights_bytes
from bert.core.flat import FlatParams
from bert.core.parameters import pack_params
from bert.errors import ConfigError, DataFileError, bounded
from bert.fingerprint import fingerprint
from bert.storage import h5io
from bert.storage.atomic import parse_json
from bert.storage.memory import require_memory

log = logging.getLogger(__name__)

WEIGHTS_SCHEMA = "bert-from-scratch/weights"
CHECKPOINT_SCHEMA = "bert-from-scratch/checkpoint"
SCHEMA_VERSION = 2  # 2: descriptions, origin, str attributes (h5io); 1 reads as well
READABLE_VERSIONS = (1, 2)
HISTORY_KEYS = ("loss_total", "loss_mlm", "loss_nsp", "learning_rate", "grad_norm")
VOCAB_DIGEST = "vocab_sha256"  # the SHA-256 of the vocabulary the weights were trained with
_NAME = re.compile(r"^step-(\d{9})\.h5$")
WEIGHTS_DESCRIPTION = ("BERT weights: every parameter of transformers' BertForPreTraining under "
                       "its name and shape (Linear weights (out, in)), without the two tied "
                       "aliases cls.predictions.decoder.weight and .bias; the architecture is "
                       "the config attribute (a transformers config, JSON)")
CHECKPOINT_DESCRIPTION = ("A training checkpoint: the weights, AdamW's moments (optimizer/), the "
                          "per-step history (history/) and the step, everything a resumed run "
                          "needs to continue bit-identically")
HISTORY_ABOUT = {
    "loss_total": h5io.About("the training loss of each optimizer step: mlm_loss_weight x MLM "
                             "loss + nsp_loss_weight x sentence-task loss", "nats", ("step",)),
    "loss_mlm": h5io.About("the MLM loss of each optimizer step: mean cross-entropy over the "
                           "masked positions of its batch", "nats", ("step",)),
    "loss_nsp": h5io.About("the sentence-task (NSP or SOP) loss of each optimizer step: mean "
                           "cross-entropy over the examples of its batch", "nats", ("step",)),
    "learning_rate": h5io.About("the learning rate of each optimizer step", "", ("step",)),
    "grad_norm": h5io.About("the global L2 norm of the gradient at each optimizer step, before "
                            "clipping", "", ("step",)),
}
# What the modules of transformers' BertForPreTraining are, by name ({0}: the layer).
_MODULES = (
    (r"bert\.embeddings", "the embeddings (their sum, normalised)"),
    (r"bert\.encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)",
     "layer {0}: the self-attention {1} projection"),
    (r"bert\.encoder\.layer\.(\d+)\.attention\.output\.dense",
     "layer {0}: the self-attention output projection"),
    (r"bert\.encoder\.layer\.(\d+)\.attention\.output",
     "layer {0}: after the self-attention (residual added)"),
    (r"bert\.encoder\.layer\.(\d+)\.intermediate\.dense",
     "layer {0}: the feed-forward's first linear map, H to F (GELU follows)"),
    (r"bert\.encoder\.layer\.(\d+)\.output\.dense",
     "layer {0}: the feed-forward's second linear map, F to H"),
    (r"bert\.encoder\.layer\.(\d+)\.output", "layer {0}: after the feed-forward (residual "
     "added)"),
    (r"bert\.pooler\.dense", "the pooler: tanh of this linear map of the [CLS] hidden state, "
     "the sentence head's input"),
    (r"cls\.predictions\.transform\.dense", "the MLM head's transform (GELU follows)"),
    (r"cls\.predictions\.transform", "the MLM head's transform"),
    (r"cls\.seq_relationship", "the sentence head (NSP or SOP): logits of labels 0 and 1"),
)
_EMBEDDINGS = {
    "bert.embeddings.word_embeddings.weight": h5io.About(
        "the token embeddings: row i is token id i; tied, it is also the MLM decoder's weight "
        "(transformers' cls.predictions.decoder.weight)", "", ("token id", "hidden")),
    "bert.embeddings.position_embeddings.weight": h5io.About(
        "the position embeddings: row t is position t", "", ("position", "hidden")),
    "bert.embeddings.token_type_embeddings.weight": h5io.About(
        "the token type (segment) embeddings: row 0 for [CLS] A [SEP] and padding, row 1 for "
        "B [SEP]", "", ("token type", "hidden")),
    "cls.predictions.bias": h5io.About(
        "the MLM decoder's bias, one per token id (the decoder's weight is the token "
        "embeddings)", "", ("token id",)),
}


def describe_parameter(name: str) -> h5io.About:
    """What the parameter ``name`` (a transformers name) is, as its dataset says it."""
    if name in _EMBEDDINGS:
        return _EMBEDDINGS[name]
    module, _, kind = name.rpartition(".")
    norm = module.endswith(".LayerNorm")
    module = module.removesuffix(".LayerNorm")
    for pattern, what in _MODULES:
        found = re.fullmatch(pattern, module)
        if found:
            what = what.format(*found.groups())
            break
    else:
        raise ValueError(f"no description of parameter {name}")
    if norm:
        return h5io.About(f"{what}: the LayerNorm's {'scale' if kind == 'weight' else 'shift'}",
                          "", ("hidden",))
    if kind == "weight":
        return h5io.About(f"{what}: the weight, y = x W^T + b", "", ("out", "in"))
    return h5io.About(f"{what}: the bias b", "", ("out",))


def _moment_about(moment: str, name: str) -> h5io.About:
    """What an AdamW moment of parameter ``name`` is."""
    what = ("first moment (running mean of the gradient)" if moment == "exp_avg"
            else "second moment (running mean of the squared gradient)")
    return h5io.About(f"AdamW's {what} of {name}", "", describe_parameter(name).axes)


def _weight_specs(config: BertConfig, prefix: str = "") -> dict[str, h5io.Spec]:
    return {prefix + name: h5io.Spec(shape, "f") for name, shape in param_shapes(config).items()}


def save_weights(
    path: str | Path, config: BertConfig, params: Mapping[str, np.ndarray],
    run_params: Mapping[str, Any], attrs: Mapping[str, Any] | None = None,
) -> Path:
    """Write the weights atomically, with the architecture and the run's parameters."""
    return h5io.write(path, params, schema=WEIGHTS_SCHEMA, schema_version=SCHEMA_VERSION,
                      about={name: describe_parameter(name) for name in params},
                      creator="bert.storage.checkpoint.save_weights", params=run_params,
                      compress=False,
                      attrs={"description": WEIGHTS_DESCRIPTION,
                             "config": json.dumps(config.to_hf(), sort_keys=True),
                             **(attrs or {})})


def config_from_json(text: str | bytes, source: str, fix: str) -> BertConfig:
    """The architecture in a transformers config JSON (a config.json, a file's ``config``
    attribute), refused in one line when it is not JSON, not finite, or too large to hold."""
    return checked_config(parse_json(text, source, fix), source, fix)


def checked_config(hf: object, source: str, fix: str) -> BertConfig:
    """The architecture of a parsed transformers config, see :func:`config_from_json`."""
    if not isinstance(hf, dict):
        raise ConfigError(f"{source}: a transformers config must be a JSON object; {fix}")
    for key, value in hf.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{source}: {bounded(key)} is {value}; a config holds finite "
                              f"numbers; {fix}")
    config = BertConfig.from_hf(hf)
    # the weights, and the same again while a file is read or converted
    require_memory(2 * weights_bytes(config), f"{source}: the model it describes", fix)
    return config


def _config_of(contents: h5io.H5Contents, path: Path, fix: str) -> BertConfig:
    try:
        return config_from_json(contents.attrs["config"], f"{path} (its 'config' attribute)", fix)
    except (KeyError, TypeError, ConfigError) as exc:
        raise DataFileError(f"{path}: no valid architecture in its 'config' attribute; "
                            f"{fix}") from exc


def weights_attributes(path: str | Path, fix: str) -> dict[str, Any]:
    """The attributes of a weights file or of a checkpoint (its datasets are not read); the
    ``params`` attribute decoded."""
    return h5io.read(path, schema=(WEIGHTS_SCHEMA, CHECKPOINT_SCHEMA),
                     schema_version=SCHEMA_VERSION, specs={}, fix=fix, names=()).attrs


def load_weights(
    path: str | Path, fix: str, config: BertConfig | None = None
) -> tuple[BertConfig, FlatParams]:
    """The architecture and the weights of a weights file or of a checkpoint, checked name by
    name and shape, in the model's flat layout (``bert.core.parameters.pack_params``); with
    ``config``, the file must hold that architecture."""
    path = Path(path)
    schemas = (WEIGHTS_SCHEMA, CHECKPOINT_SCHEMA)
    header = h5io.read(path, schema=schemas, schema_version=READABLE_VERSIONS, specs={},
                       fix=fix, names=())
    stored = _config_of(header, path, fix)
    if config is not None and stored != config:
        raise DataFileError(f"{path}: holds another architecture than the parameters ask for; "
                            f"{fix}")
    specs = _weight_specs(stored)
    contents = h5io.read(path, schema=schemas, schema_version=READABLE_VERSIONS, specs=specs,
                         fix=fix)
    return stored, pack_params(stored, contents.arrays)


@dataclass
class TrainingState:
    """Everything that changes during training; ``step`` counts optimizer steps done."""

    params: dict[str, np.ndarray]
    optimizer: dict  # bert.core.optim state: step, exp_avg, exp_avg_sq
    history: dict[str, list[float]]  # per-step values, keys HISTORY_KEYS
    epoch_history: list[dict[str, float]]  # one record per finished epoch

    @property
    def step(self) -> int:
        return self.optimizer["step"]


def checkpoint_path(folder: Path, step: int) -> Path:
    return folder / f"step-{step:09d}.h5"


def save_checkpoint(
    folder: Path, config: BertConfig, state: TrainingState, run_params: Mapping[str, Any],
    batches_per_epoch: int, keep: int,
) -> Path:
    """Write the state as ``folder/step-<step>.h5`` atomically; keep only the newest ``keep``."""
    arrays: dict[str, np.ndarray] = dict(state.params)
    about = {name: describe_parameter(name) for name in state.params}
    for moment in ("exp_avg", "exp_avg_sq"):
        arrays |= {f"optimizer/{moment}/{n}": a for n, a in state.optimizer[moment].items()}
        about |= {f"optimizer/{moment}/{n}": _moment_about(moment, n)
                  for n in state.optimizer[moment]}
    arrays |= {f"history/{key}": np.asarray(state.history[key], np.float64)
               for key in HISTORY_KEYS}
    about |= {f"history/{key}": HISTORY_ABOUT[key] for key in HISTORY_KEYS}
    epoch, position = divmod(state.step, batches_per_epoch)
    path = h5io.write(
        checkpoint_path(folder, state.step), arrays, schema=CHECKPOINT_SCHEMA,
        schema_version=SCHEMA_VERSION, about=about,
        creator="bert.storage.checkpoint.save_checkpoint", params=run_params, compress=False,
        group_attrs={"optimizer": {"description": "AdamW's state: exp_avg/<name> and "
                                   "exp_avg_sq/<name> for every parameter; its step is the "
                                   "root attribute step"},
                     "history": {"description": "one value per optimizer step so far, "
                                 "losses in nats"}},
        attrs={"description": CHECKPOINT_DESCRIPTION,
               "config": json.dumps(config.to_hf(), sort_keys=True),
               "fingerprint": fingerprint(run_params), "step": state.step, "epoch": epoch,
               "batch_in_epoch": position,
               "epoch_history": json.dumps(state.epoch_history)})
    for old in list_checkpoints(folder)[keep:]:
        old.unlink(missing_ok=True)
    return path


def list_checkpoints(folder: Path) -> list[Path]:
    """Checkpoint files in ``folder``, newest (highest step) first."""
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if _NAME.match(p.name)), reverse=True)


def load_checkpoint(
    path: Path, config: BertConfig, run_params: Mapping[str, Any]
) -> TrainingState:
    """Read a checkpoint of this run; DataFileError if it is corrupt or of another run."""
    fix = "it is skipped; delete it if it stays in the way"
    specs = _weight_specs(config)
    for moment in ("exp_avg", "exp_avg_sq"):
        specs |= _weight_specs(config, f"optimizer/{moment}/")
    specs |= {f"history/{key}": h5io.Spec(("S",), "f") for key in HISTORY_KEYS}
    contents = h5io.read(path, schema=CHECKPOINT_SCHEMA, schema_version=READABLE_VERSIONS,
                         specs=specs, fix=fix, dims={"S": int(step_of(path))})
    attrs = contents.attrs
    if attrs.get("fingerprint") != fingerprint(run_params) or _config_of(
            contents, path, fix) != config:
        raise DataFileError(f"{path}: belongs to a run with other parameters; {fix}")
    arrays = contents.arrays
    names = list(param_shapes(config))
    try:
        epoch_history = json.loads(attrs["epoch_history"])
        if not (isinstance(epoch_history, list)
                and all(isinstance(r, dict) for r in epoch_history)):
            raise TypeError("epoch_history is not a list of records")
    except (KeyError, TypeError, ValueError, RecursionError) as exc:
        raise DataFileError(f"{path}: its epoch_history attribute is unreadable "
                            f"({bounded(str(exc))}); {fix}") from None
    state = TrainingState(
        params={n: arrays[n] for n in names},
        optimizer={"step": int(attrs["step"]),
                   "exp_avg": {n: arrays[f"optimizer/exp_avg/{n}"] for n in names},
                   "exp_avg_sq": {n: arrays[f"optimizer/exp_avg_sq/{n}"] for n in names}},
        history={key: arrays[f"history/{key}"].tolist() for key in HISTORY_KEYS},
        epoch_history=epoch_history,
    )
    if state.step != step_of(path):
        raise DataFileError(f"{path}: its step attribute {state.step} does not match its name; "
                            f"{fix}")
    return state


def step_of(path: Path) -> int:
    """The step of a checkpoint, from its name."""
    return int(_NAME.match(path.name).group(1))


def newest_valid_checkpoint(
    folder: Path, config: BertConfig, run_params: Mapping[str, Any], max_step: int
) -> TrainingState | None:
    """The newest readable checkpoint of this run at or before ``max_step``, or None.

    Unreadable ones are reported in the log and skipped, never used and never fatal.
    """
    for path in list_checkpoints(folder):
        if step_of(path) > max_step:
            continue
        try:
            return load_checkpoint(path, config, run_params)
        except DataFileError as exc:
            log.warning("skipping checkpoint: %s", exc)
    return None
