"""The one module that reads and writes HDF5: datasets, weights and checkpoints alike.

A file written here has root attributes ``schema`` (what kind of file, e.g.
``bert-from-scratch/dataset``), ``schema_version``, ``package_version`` and ``params`` (JSON with
sorted keys), plus any the caller adds. Arrays may live under groups (``language/start``).
Non-scalar arrays are chunked with a Fletcher-32 checksum, so a flipped bit is detected on
reading, and by default gzip-compressed with byte shuffling. Writes are atomic: a temporary file
in the same folder, flushed and fsynced, then renamed over the target.

``read`` checks the schema, the version and the datasets' shapes and dtypes, and turns a missing,
truncated, foreign or corrupt file into one ``DataFileError`` line naming the file and the fix.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from bert import __version__
from bert.errors import DataFileError, bounded
from bert.storage.atomic import write_bytes
from bert.storage.memory import gib, machine_bytes
from bert.storage.reading import problem_at

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
LIBVER = ("v110", "v110")  # checksummed metadata, readable by HDF5 >= 1.10 tools
RESERVED_ATTRS = ("schema", "schema_version", "package_version", "params")
# What each of the project's schemas is, for "this is a weights file, not a dataset".
KINDS = {"bert-from-scratch/dataset": "a dataset", "bert-from-scratch/weights": "a weights file",
         "bert-from-scratch/checkpoint": "a training checkpoint"}
# gzip cannot shrink data more than about 1032 times: a compressed dataset declaring more than
# this ratio of its stored bytes (plus some slack for tiny ones) is forged or damaged.
MAX_COMPRESSION, SLACK = 1100, 1 << 20


@dataclass(frozen=True)
class Spec:
    """What a dataset must look like.

    shape: one entry per dimension, an int (exact size) or a name (``"N"``) that must have the
    same size wherever it appears. kinds: allowed ``dtype.kind`` letters (``"iu"`` integers,
    ``"f"`` floats).
    """

    shape: tuple[int | str, ...]
    kinds: str = "iuf"


@dataclass(frozen=True)
class H5Contents:
    """What ``read`` returns: arrays by path, root attributes (``params`` decoded from JSON), and
    the attributes of every group that has some, by group path."""

    arrays: dict[str, np.ndarray]
    attrs: dict[str, Any]
    group_attrs: dict[str, dict[str, Any]]


def _dataset_options(array: np.ndarray, compress: bool) -> dict[str, Any]:
    if array.ndim == 0 or array.size == 0:
        return {}  # scalars and empty arrays cannot be chunked (nor checksummed)
    options: dict[str, Any] = {"chunks": True, "fletcher32": True}
    if compress:
        options.update(compression="gzip", compression_opts=4, shuffle=True)
    return options


def _set_attr(attrs: h5py.AttributeManager, key: str, value: Any) -> None:
    """Strings are stored fixed-length, inside the checksummed object header (a variable-length
    string would live in the global heap, which has no checksum)."""
    if isinstance(value, str):
        encoded = value.encode("utf-8")
        dtype = h5py.string_dtype("utf-8", max(1, len(encoded)))
        attrs.create(key, np.array(encoded, dtype=dtype))
    else:
        attrs[key] = value


def write(
    path: str | Path,
    arrays: Mapping[str, np.ndarray],
    *,
    schema: str,
    schema_version: int,
    params: Mapping[str, Any] | None = None,
    attrs: Mapping[str, Any] | None = None,
    group_attrs: Mapping[str, Mapping[str, Any]] | None = None,
    compress: bool = True,
) -> Path:
    """Write ``arrays`` (keys may contain ``/`` for groups) atomically to ``path``.

    attrs: extra root attributes (numbers, strings, small arrays); group_attrs: attributes of
    groups, created if absent (e.g. ``{"optimum": {"mlm_loss": 1.2}}``). Returns the path.
    """
    path = Path(path)
    extra = dict(attrs or {})
    clash = sorted(set(extra) & set(RESERVED_ATTRS))
    if clash:
        raise ValueError(f"attributes {clash} are set by h5io.write itself")
    # Built in memory, then written by Python: a full disk is then one clean OSError, where
    # HDF5 writing to the disk itself fails inside its close and may leave a broken file.
    image = io.BytesIO()
    with h5py.File(image, "w", libver=LIBVER) as f:
        root = {"schema": schema, "schema_version": int(schema_version),
                "package_version": __version__,
                "params": json.dumps(dict(params or {}), sort_keys=True), **extra}
        for key, value in root.items():
            _set_attr(f.attrs, key, value)
        for name, array in arrays.items():
            array = np.asarray(array)
            f.create_dataset(name, data=array, track_times=False,
                             **_dataset_options(array, compress))
        for group, values in (group_attrs or {}).items():
            g = f.require_group(group)
            for key, value in values.items():
                _set_attr(g.attrs, key, value)
    return write_bytes(path, image.getbuffer())


def _plain(value: Any) -> Any:
    """An attribute as a Python value: str, int, float, bool, or an array."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    return value


def _check_spec(name: str, dataset: Any, spec: Spec, dims: dict[str, int]) -> str | None:
    """A problem with ``dataset`` against ``spec`` (binding named dims), or None."""
    if not isinstance(dataset, h5py.Dataset):
        return f"dataset '{name}' is missing"
    if dataset.dtype.kind not in spec.kinds:
        return f"dataset '{name}' has dtype {dataset.dtype}, expected kind '{spec.kinds}'"
    if len(dataset.shape) != len(spec.shape):
        return f"dataset '{name}' has shape {dataset.shape}, expected {len(spec.shape)} dimensions"
    for axis, (size, want) in enumerate(zip(dataset.shape, spec.shape, strict=True)):
        expected = dims.setdefault(want, size) if isinstance(want, str) else want
        if size != expected:
            return (f"dataset '{name}' has shape {dataset.shape}, but axis {axis} should be "
                    f"{expected} ({want})")
    return None


def _size_problem(name: str, dataset: h5py.Dataset) -> str | None:
    """A dataset whose declared size its stored bytes cannot hold (forged or damaged), or None."""
    declared = dataset.size * dataset.dtype.itemsize
    stored = dataset.id.get_storage_size()
    ratio = 1 if dataset.compression is None else MAX_COMPRESSION
    if declared > stored * ratio + SLACK:
        return (f"dataset '{name}' declares {dataset.shape} ({gib(declared)} GiB) but stores "
                f"only {stored} bytes")
    return None


def read(
    path: str | Path,
    *,
    schema: str | tuple[str, ...],
    schema_version: int,
    specs: Mapping[str, Spec],
    fix: str,
    names: Iterable[str] | None = None,
    dims: Mapping[str, int] | None = None,
) -> H5Contents:
    """Read and check a file written by ``write``.

    schema: the schema the file must have, or a tuple of the acceptable ones.
    specs: every dataset the file must have, checked without reading it; names: the datasets
    to load (default: those of ``specs``); dims: sizes that named dimensions must have.
    fix: what the user should do, appended to every error (e.g. "run `doit data`").
    Raises DataFileError for a missing, truncated, foreign, outdated or corrupt file.
    """
    path = Path(path)

    def fail(problem: str) -> DataFileError:
        return DataFileError(f"{path}: {problem}; {fix}")

    problem = problem_at(path)  # a folder, a device or a pipe is not opened at all
    if problem is not None:
        raise fail("file not found" if problem == "does not exist" else problem)
    with open(path, "rb") as raw:
        head = raw.read(len(HDF5_SIGNATURE))
    if head != HDF5_SIGNATURE:
        raise fail("empty file" if not head else "not an HDF5 file")
    reading = "the file structure"
    try:
        with h5py.File(path, "r") as f:
            attrs = {key: _plain(value) for key, value in f.attrs.items()}
            allowed = (schema,) if isinstance(schema, str) else schema
            if attrs.get("schema") not in allowed:
                found = attrs.get("schema")
                if found in KINDS:
                    wanted = " or ".join(KINDS.get(a, a) for a in allowed)
                    raise fail(f"this is {KINDS[found]}, not {wanted}")
                raise fail(f"not a {' or '.join(allowed)} file (its schema is "
                           f"{bounded(found)})")
            if attrs.get("schema_version") != schema_version:
                found = bounded(attrs.get("schema_version"))
                raise fail(f"schema version {found}, this code reads version {schema_version}")
            try:
                attrs["params"] = json.loads(attrs.get("params", "{}"))
            except (TypeError, RecursionError, json.JSONDecodeError):
                raise fail("its params attribute is not valid JSON") from None
            bound = dict(dims or {})
            for name, spec in specs.items():
                problem = _check_spec(name, f.get(name), spec, bound)
                if problem:
                    raise fail(problem)
            wanted = list(specs if names is None else names)
            total = 0
            for name in wanted:
                if not isinstance(f.get(name), h5py.Dataset):
                    raise fail(f"dataset '{name}' is missing")
                problem = _size_problem(name, f[name])
                if problem:
                    raise fail(problem)
                total += f[name].size * f[name].dtype.itemsize
            if total > machine_bytes():
                raise fail(f"its datasets need ~{gib(total)} GiB; the machine has "
                           f"{gib(machine_bytes())}")
            arrays = {}
            for name in wanted:
                reading = f"dataset '{name}'"
                arrays[name] = f[name][()]
            reading = "the group attributes"
            group_attrs: dict[str, dict[str, Any]] = {}

            def collect(name: str, obj: Any) -> None:
                if isinstance(obj, h5py.Group) and len(obj.attrs):
                    group_attrs[name] = {k: _plain(v) for k, v in obj.attrs.items()}

            f.visititems(collect)
    except DataFileError:
        raise
    except (OSError, KeyError, ValueError, RuntimeError, TypeError) as e:
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise fail(f"truncated or corrupt, failed reading {reading} ({detail})") from None
    return H5Contents(arrays, attrs, group_attrs)
