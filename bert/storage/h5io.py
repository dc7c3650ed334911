"""The HDF5 files of the project, datasets, weights and checkpoints alike: what they hold, and
reading them checked (``bert.storage.h5write`` writes them).

A file explains itself. Its root attributes are ``schema`` (what kind of file, e.g.
``bert-from-scratch/dataset``), ``schema_version``, ``params`` (JSON with sorted keys), where it
comes from (``bert.origin``: ``creator``, ``created`` in UTC, ``package_version``, ``git_commit``
when there is one, ``python_version``, ``numpy_version``, ``h5py_version``, ``hdf5_version``),
plus any the caller adds (a ``description`` of the file among them). Every dataset has a
``description``, ``units`` where it has them, and a label per axis (HDF5 dimension labels, as
h5dump, h5py's ``dims`` and netCDF readers show them): see ``About``. Arrays may live under
groups (``language/start``); an array of strings is stored as fixed-length UTF-8 strings
(h5dump prints them as words).

Every byte that says something is checked on reading. Non-scalar arrays are chunked with a
Fletcher-32 checksum; object headers (the attributes' names, their numbers) carry HDF5's own
checksums; the values of the string attributes, in HDF5's global heap, which has no checksum,
are covered by a SHA-256 the root records (``bert.storage.h5heap``), checked before HDF5 reads
any of them.

``read`` checks the heap, the schema, the version and the datasets' shapes and dtypes, and
turns a missing, truncated, foreign, outdated or corrupt file into one ``DataFileError`` line
naming the file and the fix. Files of schema version 1 (before the descriptions, the origin and
the heap check: fixed-length string attributes inside the checksummed headers) still read where
their reader accepts that version.

Determinism: the same inputs give the same arrays and the same attributes, but for those of
``ORIGIN_ATTRS`` (when and with what the file was made); ``content_digest`` is the SHA-256 of
all the rest, the same for two such files.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from bert.errors import DataFileError, bounded
from bert.storage.h5heap import HEAP, HEAP_DIGEST, heap_problem
from bert.storage.memory import gib, machine_bytes
from bert.storage.reading import problem_at

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# What says when and with what a file was made: the root attributes that differ between two
# files of the same parameters (``SOURCE_DATE_EPOCH`` fixes ``created``, see ``bert.origin``).
ORIGIN_ATTRS = ("creator", "created", "package_version", "git_commit", "python_version",
                "numpy_version", "h5py_version", "hdf5_version", HEAP, HEAP_DIGEST)
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
class About:
    """What a dataset holds, written as its attributes: ``description`` (what it is, and what its
    values mean where they encode something), ``units`` (only where it has them, e.g.
    ``nats``), and a label per axis (``axes``: one short name per dimension, stored as HDF5
    dimension labels)."""

    description: str
    units: str = ""
    axes: tuple[str, ...] = ()


@dataclass(frozen=True)
class DatasetInfo:
    """One dataset of a file as ``read`` finds it, its values unread: shape, dtype, attributes
    (``description``, ``units``) and axis labels (empty where none is set)."""

    shape: tuple[int, ...]
    dtype: np.dtype
    attrs: dict[str, Any]
    axes: tuple[str, ...]


@dataclass(frozen=True)
class H5Contents:
    """What ``read`` returns: arrays by path, root attributes (``params`` decoded from JSON; the
    heap check left out), the attributes of every group that has some, by group path, and every
    dataset of the file (when asked for: ``read(..., describe=True)``)."""

    arrays: dict[str, np.ndarray]
    attrs: dict[str, Any]
    group_attrs: dict[str, dict[str, Any]]
    datasets: dict[str, DatasetInfo] = field(default_factory=dict)


def _plain(value: Any) -> Any:
    """An attribute as a Python value: str, int, float, bool, or an array."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass(frozen=True)
class _Found:
    """A dataset of an open file, with its shape and dtype read once (each is a query to
    HDF5)."""

    dataset: h5py.Dataset
    shape: tuple[int, ...]
    dtype: np.dtype

    @classmethod
    def of(cls, item: Any) -> _Found | None:
        if not isinstance(item, h5py.Dataset):
            return None
        return cls(item, item.shape, item.dtype)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    def values(self) -> np.ndarray | str | Any:
        """Every value: a str array for strings, an array (a NumPy scalar for a scalar),
        read straight into its buffer (the chunks' checksums checked by HDF5 on the way)."""
        if self.dtype.kind == "S":
            return self.dataset.asstr()[()]
        if self.dtype.kind not in "biufc" or not self.shape or 0 in self.shape:
            return self.dataset[()]
        array = np.empty(self.shape, self.dtype)
        self.dataset.id.read(h5py.h5s.ALL, h5py.h5s.ALL, array)
        return array


def _check_spec(name: str, found: _Found | None, spec: Spec, dims: dict[str, int]) -> str | None:
    """A problem with dataset ``found`` against ``spec`` (binding named dims), or None."""
    if found is None:
        return f"dataset '{name}' is missing"
    if found.dtype.kind not in spec.kinds:
        return f"dataset '{name}' has dtype {found.dtype}, expected kind '{spec.kinds}'"
    if len(found.shape) != len(spec.shape):
        return f"dataset '{name}' has shape {found.shape}, expected {len(spec.shape)} dimensions"
    for axis, (size, want) in enumerate(zip(found.shape, spec.shape, strict=True)):
        expected = dims.setdefault(want, size) if isinstance(want, str) else want
        if size != expected:
            return (f"dataset '{name}' has shape {found.shape}, but axis {axis} should be "
                    f"{expected} ({want})")
    return None


def _size_problem(name: str, found: _Found) -> str | None:
    """A dataset whose declared size its stored bytes cannot hold (forged or damaged), or None."""
    declared = found.nbytes
    stored = found.dataset.id.get_storage_size()
    ratio = 1 if found.dataset.compression is None else MAX_COMPRESSION
    if declared > stored * ratio + SLACK:
        return (f"dataset '{name}' declares {found.shape} ({gib(declared)} GiB) but stores "
                f"only {stored} bytes")
    return None


def _version_problem(found: Any, wanted: int | tuple[int, ...] | None) -> str | None:
    """What is wrong with a file's schema version ``found``, or None."""
    readable = (wanted,) if isinstance(wanted, int) else wanted
    if readable is None or found in readable:
        return None
    which = " or ".join(map(str, readable))
    newer = isinstance(found, int) and found > max(readable)
    return (f"schema version {bounded(found)}, this code reads version {which}"
            + (" (the file was written by a newer bert-from-scratch)" if newer else ""))


def read(
    path: str | Path,
    *,
    schema: str | tuple[str, ...],
    schema_version: int | tuple[int, ...] | None,
    specs: Mapping[str, Spec],
    fix: str,
    names: Iterable[str] | None = None,
    dims: Mapping[str, int] | None = None,
    describe: bool = False,
) -> H5Contents:
    """Read and check a file written by ``write``.

    schema: the schema the file must have, or a tuple of the acceptable ones; schema_version:
    the version it must have, a tuple of the versions this code reads, or None for any.
    specs: every dataset the file must have, checked without reading it; names: the datasets
    to load (default: those of ``specs``); dims: sizes that named dimensions must have.
    fix: what the user should do, appended to every error (e.g. "run `doit data`").
    describe: also list every dataset of the file (``H5Contents.datasets``), which costs a read
    of each one's attributes.
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
            if HEAP in f.attrs:  # before any string is read: HDF5 may hang on a damaged heap
                reading = "the strings of its attributes"
                problem = heap_problem(path, f.attrs[HEAP], f.attrs[HEAP_DIGEST])
                if problem:
                    raise fail(problem)
            reading = "the root attributes"
            attrs = {key: _plain(value) for key, value in f.attrs.items()
                     if key not in (HEAP, HEAP_DIGEST)}
            allowed = (schema,) if isinstance(schema, str) else schema
            if attrs.get("schema") not in allowed:
                found = attrs.get("schema")
                if found in KINDS:
                    wanted = " or ".join(KINDS.get(a, a) for a in allowed)
                    raise fail(f"this is {KINDS[found]}, not {wanted}")
                raise fail(f"not a {' or '.join(allowed)} file (its schema is "
                           f"{bounded(found)})")
            problem = _version_problem(attrs.get("schema_version"), schema_version)
            if problem:
                raise fail(problem)
            try:
                attrs["params"] = json.loads(attrs.get("params", "{}"))
            except (TypeError, RecursionError, json.JSONDecodeError):
                raise fail("its params attribute is not valid JSON") from None
            bound = dict(dims or {})
            wanted = list(specs if names is None else names)
            found = {name: _Found.of(f.get(name)) for name in dict.fromkeys([*specs, *wanted])}
            for name, spec in specs.items():
                problem = _check_spec(name, found[name], spec, bound)
                if problem:
                    raise fail(problem)
            total = 0
            for name in wanted:
                if found[name] is None:
                    raise fail(f"dataset '{name}' is missing")
                problem = _size_problem(name, found[name])
                if problem:
                    raise fail(problem)
                total += found[name].nbytes
            if total > machine_bytes():
                raise fail(f"its datasets need ~{gib(total)} GiB; the machine has "
                           f"{gib(machine_bytes())}")
            arrays = {}
            for name in wanted:
                reading = f"dataset '{name}'"
                arrays[name] = found[name].values()
            reading = "the group attributes"
            group_attrs: dict[str, dict[str, Any]] = {}
            datasets: dict[str, DatasetInfo] = {}

            def collect(name: bytes, info: Any) -> None:
                # each object once, as HDF5 lists it; only those asked for are opened
                path = name.decode("utf-8")
                if info.type == h5py.h5o.TYPE_GROUP and info.num_attrs:
                    group_attrs[path] = {k: _plain(v) for k, v in f[path].attrs.items()}
                elif describe and info.type == h5py.h5o.TYPE_DATASET:
                    obj = f[path]
                    datasets[path] = DatasetInfo(
                        obj.shape, obj.dtype,
                        {k: _plain(v) for k, v in obj.attrs.items() if k != "DIMENSION_LABELS"},
                        tuple(dim.label for dim in obj.dims) if "DIMENSION_LABELS" in obj.attrs
                        else ())

            h5py.h5o.visit(f.id, collect, info=True)
    except DataFileError:
        raise
    except (OSError, KeyError, ValueError, RuntimeError, TypeError) as e:
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise fail(f"truncated or corrupt, failed reading {reading} ({detail})") from None
    return H5Contents(arrays, attrs, group_attrs, datasets)


def content_digest(path: str | Path, fix: str) -> str:
    """The SHA-256 of what a file holds, its origin aside: every dataset (name, dtype, shape,
    bytes) and every attribute of every object but the root's ``ORIGIN_ATTRS``. Two files
    made from the same inputs have the same digest, whenever and with whatever they were
    made."""
    contents = read(path, schema=tuple(KINDS), schema_version=None, specs={}, fix=fix, names=(),
                    describe=True)
    arrays = read(path, schema=tuple(KINDS), schema_version=None, specs={}, fix=fix,
                  names=list(contents.datasets)).arrays
    digest = hashlib.sha256()
    record = {"attrs": {k: v for k, v in contents.attrs.items() if k not in ORIGIN_ATTRS},
              "groups": contents.group_attrs,
              "datasets": {name: [info.attrs, info.axes, info.dtype.str, info.shape]
                           for name, info in contents.datasets.items()}}
    digest.update(json.dumps(record, sort_keys=True, default=str).encode("utf-8"))
    for name in sorted(arrays):
        array = arrays[name]
        digest.update(name.encode("utf-8") + b"\0")
        digest.update(json.dumps(array.tolist()).encode("utf-8") if array.dtype.kind == "O"
                      else np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()
