"""Interop with transformers: export a model to a transformers directory, import one back.

A transformers directory holds ``config.json`` and ``model.safetensors`` (or shards listed in
``model.safetensors.index.json``). Since our parameter names and shapes are transformers' own,
both directions are a file format away: export adds the two tied aliases transformers expects
(``cls.predictions.decoder.weight`` / ``.bias``), import drops them and accepts checkpoints of a
bare ``BertModel`` (names without the ``bert.`` prefix, no heads).

safetensors is an optional dependency (``pip install -e '.[interop]'``), read through its NumPy
API: no torch is needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bert.core.config import WORD_EMBEDDINGS, BertConfig, param_shapes
from bert.errors import ConfigError, DataFileError, bounded, remake_hint
from bert.storage.atomic import parse_json, write_bytes, write_json
from bert.storage.checkpoint import (
    VOCAB_DIGEST,
    checked_config,
    load_weights,
    weights_attributes,
)
from bert.storage.memory import require_memory

if TYPE_CHECKING:
    from bert.api import BertForPreTraining

TIED_ALIASES = {"cls.predictions.decoder.weight": WORD_EMBEDDINGS,
                "cls.predictions.decoder.bias": "cls.predictions.bias"}
HEAD_PREFIXES = ("cls.", "bert.pooler.")  # absent from a BertModel checkpoint without pooler
IGNORED_BUFFERS = ("bert.embeddings.position_ids", "bert.embeddings.token_type_ids")
SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
MAX_JSON_BYTES = 16 << 20  # a config.json or an index is a few KiB; refuse what cannot be one
IMPORT_FIX = "point at a transformers model directory you trust"


def _safetensors():
    try:
        import safetensors.numpy
    except ImportError:
        raise ConfigError("reading or writing transformers checkpoints needs safetensors: "
                          "pip install -e '.[interop]'") from None
    return safetensors.numpy


def save_pretrained(model: BertForPreTraining, directory: str | Path) -> Path:
    """Write ``config.json`` and ``model.safetensors`` that transformers'
    ``BertForPreTraining.from_pretrained(directory)`` loads with no missing or unexpected key."""
    return write_pretrained(model.config, model.params, directory)


def write_pretrained(
    config: BertConfig, params: Mapping[str, np.ndarray], directory: str | Path,
    vocab_sha256: str | None = None,
) -> Path:
    """``save_pretrained`` of the parameters ``params`` of architecture ``config``; with
    ``vocab_sha256``, the digest of the vocabulary they were trained with goes into the
    safetensors metadata (``vocab_sha256``, which transformers leaves alone)."""
    safetensors = _safetensors()
    directory = Path(directory)
    tensors = {name: np.ascontiguousarray(value) for name, value in params.items()}
    for alias, name in TIED_ALIASES.items():
        tensors[alias] = tensors[name].copy()  # safetensors stores no shared memory
    metadata = {"format": "pt", **({VOCAB_DIGEST: vocab_sha256} if vocab_sha256 else {})}
    write_bytes(directory / SAFETENSORS, safetensors.save(tensors, metadata=metadata))
    write_json(directory / "config.json", {**config.to_hf(),
                                           "architectures": ["BertForPreTraining"]})
    return directory


def _small_json(path: Path) -> dict:
    """A small JSON object file of a transformers directory (config.json, the index)."""
    try:
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise DataFileError(f"{path}: {size} bytes is far too large for this file; "
                                f"{IMPORT_FIX}")
        data = parse_json(path.read_bytes(), str(path), IMPORT_FIX)
    except FileNotFoundError:
        raise DataFileError(f"{path}: file not found; {IMPORT_FIX}") from None
    except OSError as exc:
        raise DataFileError(f"{path}: cannot be read ({exc.strerror}); {IMPORT_FIX}") from None
    if not isinstance(data, dict):
        raise DataFileError(f"{path}: not a JSON object; {IMPORT_FIX}")
    return data


def _shard_files(directory: Path, index: Path) -> list[Path]:
    """The shard files an index lists, each a file inside ``directory``."""
    weight_map = _small_json(index).get("weight_map")
    if not isinstance(weight_map, dict) or not all(
            isinstance(v, str) for v in weight_map.values()):
        raise DataFileError(f"{index}: has no 'weight_map' object of tensor name -> shard file; "
                            f"{IMPORT_FIX}")
    inside = directory.resolve()
    files = []
    for shard in sorted(set(weight_map.values())):
        path = (directory / shard).resolve()
        if Path(shard).is_absolute() or ".." in Path(shard).parts or inside not in path.parents:
            raise DataFileError(f"{index}: shard path {bounded(shard)} is outside the directory; "
                                "shards must be files next to the index")
        files.append(directory / shard)
    return files


def _read_tensors(directory: Path) -> dict[str, np.ndarray]:
    """All tensors of a transformers directory, single file or shards."""
    safetensors = _safetensors()
    index = directory / SAFETENSORS_INDEX
    if (directory / SAFETENSORS).is_file():
        files = [directory / SAFETENSORS]
    elif index.is_file():
        files = _shard_files(directory, index)
    elif any((directory / name).is_file() for name in ("pytorch_model.bin", "tf_model.h5")):
        raise DataFileError(
            f"{directory}: holds only a pickled or TensorFlow checkpoint, which is not read "
            "(pickles can run code); convert it with transformers: "
            "BertForPreTraining.from_pretrained(dir).save_pretrained(dir, safe_serialization=True)")
    else:
        raise DataFileError(f"{directory}: no {SAFETENSORS} in it; point at a transformers "
                            "model directory")
    sizes = []
    for path in files:
        try:
            sizes.append(path.stat().st_size)
        except OSError as exc:
            raise DataFileError(f"{path}: cannot be read ({exc.strerror}); {IMPORT_FIX}") from None
    # safetensors checks that the declared shapes fill the file exactly, so its size is the
    # memory its tensors take; twice that while they are converted
    require_memory(2 * sum(sizes), f"{directory}: its weights", IMPORT_FIX)
    tensors: dict[str, np.ndarray] = {}
    where: dict[str, Path] = {}
    for path in files:
        try:
            shard = safetensors.load_file(path)
        except Exception as exc:  # safetensors raises its own error types
            detail = bounded(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            raise DataFileError(f"{path}: not a readable safetensors file ({detail})") from None
        for name in shard:
            if name in where:
                raise DataFileError(f"{directory}: tensor {bounded(name)} is in two shards, "
                                    f"{where[name].name} and {path.name}; {IMPORT_FIX}")
            where[name] = path
        tensors |= shard
    return tensors


def require_finite(params: Mapping[str, np.ndarray], source: str) -> None:
    """Refuse weights holding NaN or infinity: training from them can only diverge."""
    for name, value in params.items():
        if not np.isfinite(value).all():
            raise DataFileError(f"{source}: tensor {bounded(name)} holds NaN or infinite values; "
                                "these weights cannot be a starting point")


def _canonical_names(tensors: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Our names: ``bert.`` added to a bare BertModel's, old ``gamma``/``beta`` LayerNorm names
    renamed, tied aliases and known buffers dropped."""
    renamed = {}
    for name, value in tensors.items():
        if not name.startswith(("bert.", "cls.")):
            name = f"bert.{name}"
        name = name.replace("LayerNorm.gamma", "LayerNorm.weight").replace(
            "LayerNorm.beta", "LayerNorm.bias")
        if name not in TIED_ALIASES and name not in IGNORED_BUFFERS:
            renamed[name] = value
    return renamed


def params_from_tensors(
    config: BertConfig, tensors: Mapping[str, np.ndarray], source: str,
    dtype: np.dtype = np.float32,
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Match a checkpoint's tensors to the parameters of ``config``.

    Returns the parameters found, in ``dtype``, and the names that are missing (the heads and
    the pooler only, which the caller initializes). Any other missing name, an unexpected name
    or a wrong shape raises DataFileError naming it.
    """
    tensors = _canonical_names(tensors)
    shapes = param_shapes(config)
    unexpected = sorted(set(tensors) - set(shapes))
    if unexpected:
        raise DataFileError(f"{source}: unexpected weights {bounded(unexpected[:4])}"
                            f"{' …' if len(unexpected) > 5 else ''}: not a BERT checkpoint of "
                            "this architecture")
    missing = [name for name in shapes if name not in tensors]
    essential = [name for name in missing if not name.startswith(HEAD_PREFIXES)]
    if essential:
        raise DataFileError(f"{source}: missing encoder weights {bounded(essential[:4])}"
                            f"{' …' if len(essential) > 5 else ''}")
    for name, value in tensors.items():
        if tuple(value.shape) != shapes[name]:
            raise DataFileError(f"{source}: {bounded(name)} has shape {tuple(value.shape)}, "
                                f"the config needs {shapes[name]}")
        if value.dtype.kind != "f":
            raise DataFileError(f"{source}: {bounded(name)} has dtype {value.dtype}, not a float "
                                "type")
    require_finite(tensors, source)
    params = {name: np.array(tensors[name], dtype=dtype) for name in shapes if name in tensors}
    return params, missing


def load_pretrained(
    path: str | Path, dtype: np.dtype = np.float32
) -> tuple[BertConfig, dict[str, np.ndarray], list[str]]:
    """The architecture and the parameters of a transformers directory (``config.json`` +
    safetensors) or of one of our HDF5 weight or checkpoint files, and the names of the
    parameters missing from it (the heads of a bare ``BertModel``); ``bert.from_pretrained``
    makes a model of them."""
    path = Path(path)
    if path.is_dir():
        config_file = path / "config.json"
        config = checked_config(_small_json(config_file), str(config_file), IMPORT_FIX)
        params, missing = params_from_tensors(config, _read_tensors(path), str(path), dtype)
        return config, params, missing
    config, params = load_weights(path, "point at a weights file (artifacts/model.h5), a "
                                  "checkpoint or a transformers directory")
    require_finite(params, str(path))
    return config, {name: np.asarray(value, dtype=dtype) for name, value in params.items()}, []


def export_model(weights_path: str | Path, directory: str | Path) -> Path:
    """Our trained weights file -> the model files of a transformers directory, with the
    digest of the vocabulary the weights file records."""
    config, params = load_weights(weights_path, remake_hint("train"))
    write_pretrained(config, params, directory, trained_vocabulary(weights_path)[0])
    return Path(directory)


def trained_vocabulary(path: str | Path) -> tuple[str | None, str | None]:
    """What the weights at ``path`` (a transformers directory, one of our weight files or a
    checkpoint) record of the data they were trained on: the SHA-256 of the vocabulary (None
    when not recorded), and the data source ("text", "synthetic", None when not recorded)."""
    path = Path(path)
    if not path.is_dir():
        fix = "point at a weights file (artifacts/model.h5), a checkpoint or an export directory"
        attrs = weights_attributes(path, fix)
        data = attrs.get("params", {}).get("data", {})
        return attrs.get(VOCAB_DIGEST), data.get("source") if isinstance(data, dict) else None
    files = [path / SAFETENSORS] if (path / SAFETENSORS).is_file() else (
        _shard_files(path, path / SAFETENSORS_INDEX)
        if (path / SAFETENSORS_INDEX).is_file() else [])
    if not files:
        return None, None
    try:
        with _safetensors().safe_open(files[0], framework="np") as opened:
            metadata = opened.metadata() or {}
    except Exception as exc:  # safetensors raises its own error types
        detail = bounded(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise DataFileError(f"{files[0]}: not a readable safetensors file ({detail})") from None
    return metadata.get(VOCAB_DIGEST), None
