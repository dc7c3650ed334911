"""The one module that reads and writes HDF5: datasets, weights and checkpoints alike.

A file written here explains itself. Its root attributes are ``schema`` (what kind of file, e.g.
``bert-from-scratch/dataset``), ``schema_version``, ``params`` (JSON with sorted keys), where it
comes from (``bert.origin``: ``creator``, ``created`` in UTC, ``package_version``, ``git_commit``
when there is one, ``python_version``, ``numpy_version``, ``h5py_version``, ``hdf5_version``),
plus any the caller adds (a ``description`` of the file among them). Every dataset has a
``description``, ``units`` where it has them, and a label per axis (HDF5 dimension labels, as
h5dump, h5py's ``dims`` and netCDF readers show them): see ``About``. Arrays may live under
groups (``language/start``); an array of strings is stored as fixed-length UTF-8 strings
(h5dump prints them as words).

Every byte that says something is checked on reading. Non-scalar arrays are chunked with a
Fletcher-32 checksum, and by default gzip-compressed with byte shuffling; object headers (the
attributes' names, their numbers) carry HDF5's own checksums. String attributes are
variable-length, so that h5py reads them as ``str``; HDF5 keeps their values in its global heap,
which has no checksum (and on which a damaged byte can make the HDF5 library loop forever), so
the root records where the heap is and its SHA-256 (``global_heap``, ``global_heap_sha256``),
and ``read`` checks those bytes before HDF5 reads any of them. Writes are atomic: a temporary
file in the same folder, flushed and fsynced, then renamed over the target.

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
import io
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from bert.errors import DataFileError, bounded
from bert.origin import origin
from bert.storage.atomic import write_bytes
from bert.storage.memory import gib, machine_bytes
from bert.storage.reading import problem_at

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
LIBVER = ("v110", "v110")  # checksummed metadata, readable by HDF5 >= 1.10 tools
# Where the global heap (the values of the string attributes) is, and its SHA-256.
HEAP, HEAP_DIGEST = "global_heap", "global_heap_sha256"
_GCOL = re.compile(rb"GCOL\x01\x00\x00\x00")
# What says when and with what a file was made: the root attributes that differ between two
# files of the same parameters (``SOURCE_DATE_EPOCH`` fixes ``created``, see ``bert.origin``).
ORIGIN_ATTRS = ("creator", "created", "package_version", "git_commit", "python_version",
                "numpy_version", "h5py_version", "hdf5_version", HEAP, HEAP_DIGEST)
RESERVED_ATTRS = ("schema", "schema_version", "params", *ORIGIN_ATTRS)
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


def _dataset_options(array: np.ndarray, compress: bool) -> dict[str, Any]:
    if array.ndim == 0 or array.size == 0:
        return {}  # scalars and empty arrays cannot be chunked (nor checksummed)
    options: dict[str, Any] = {"chunks": True, "fletcher32": True}
    if compress:
        options.update(compression="gzip", compression_opts=4, shuffle=True)
    return options


def _set_attr(attrs: h5py.AttributeManager, key: str, value: Any) -> None:
    """Strings are stored variable-length UTF-8 (h5py reads them as ``str``); their values live
    in the global heap, which ``global_heap_sha256`` covers."""
    attrs[key] = value


def _create(f: h5py.File, name: str, array: np.ndarray, compress: bool) -> h5py.Dataset:
    """Dataset ``name`` holding ``array``. Strings are stored as fixed-length, null-terminated
    UTF-8 (h5dump prints them as words; their bytes are checksummed with the chunks, where
    variable-length strings would live in the unchecksummed global heap)."""
    options = _dataset_options(array, compress)
    if array.dtype.kind not in "UO":
        return f.create_dataset(name, data=array, track_times=False, **options)
    encoded = np.array([str(item).encode("utf-8") for item in array.ravel()], dtype=bytes)
    text = h5py.h5t.C_S1.copy()
    text.set_size(encoded.dtype.itemsize + 1)
    text.set_strpad(h5py.h5t.STR_NULLTERM)
    text.set_cset(h5py.h5t.CSET_UTF8)
    dataset = f.create_dataset(name, shape=array.shape, dtype=h5py.Datatype(text),
                               track_times=False, **options)
    if array.size:
        dataset.id.write(h5py.h5s.ALL, h5py.h5s.ALL,
                         encoded.astype(f"S{text.get_size()}").reshape(array.shape), mtype=text)
    return dataset


def _describe(dataset: h5py.Dataset, about: About) -> None:
    """Write ``about`` as the attributes of ``dataset``."""
    if about.axes and len(about.axes) != dataset.ndim:
        raise ValueError(f"{dataset.name}: {len(about.axes)} axis labels for "
                         f"{dataset.ndim} dimensions")
    _set_attr(dataset.attrs, "description", about.description)
    if about.units:
        _set_attr(dataset.attrs, "units", about.units)
    for axis, label in enumerate(about.axes):
        dataset.dims[axis].label = label


def heap_ranges(image: bytes | memoryview) -> np.ndarray:
    """(n, 2) uint64: the offset and the size of every global heap collection in a file image,
    where HDF5 keeps the values of variable-length strings (a collection starts with ``GCOL``,
    version 1, three zero bytes and its size; a match inside array data is harmless, its bytes
    are merely checked twice)."""
    data = bytes(image)
    ranges = []
    for found in _GCOL.finditer(data):
        size = int.from_bytes(data[found.end():found.end() + 8], "little")
        if 16 <= size <= len(data) - found.start():
            ranges.append((found.start(), size))
    return np.array(ranges, dtype=np.uint64).reshape(-1, 2)


def heap_digest(read_range: Callable[[int, int], bytes], ranges: np.ndarray) -> np.ndarray:
    """(32,) uint8: the SHA-256 of the byte ranges ``ranges`` (offset, size), each read by
    ``read_range(offset, size)``."""
    digest = hashlib.sha256()
    for start, size in ranges.tolist():
        digest.update(read_range(start, size))
    return np.frombuffer(digest.digest(), np.uint8)


def write(
    path: str | Path,
    arrays: Mapping[str, np.ndarray],
    *,
    schema: str,
    schema_version: int,
    about: Mapping[str, About],
    creator: str,
    params: Mapping[str, Any] | None = None,
    attrs: Mapping[str, Any] | None = None,
    group_attrs: Mapping[str, Mapping[str, Any]] | None = None,
    compress: bool = True,
) -> Path:
    """Write ``arrays`` (keys may contain ``/`` for groups) atomically to ``path``.

    about: what each array is (every array must have its entry); creator: what made the file
    (``bert.data.datasets.make_datasets``), recorded with the rest of its origin. attrs: extra
    root attributes (numbers, strings, small arrays), a ``description`` of the file among them;
    group_attrs: attributes of groups, created if absent (e.g. ``{"optimum": {"description":
    "...", "mlm_loss": 1.2}}``). Returns the path.
    """
    path = Path(path)
    extra = dict(attrs or {})
    clash = sorted(set(extra) & set(RESERVED_ATTRS))
    if clash:
        raise ValueError(f"attributes {clash} are set by h5io.write itself")
    undescribed = sorted(set(arrays) - set(about))
    if undescribed:
        raise ValueError(f"datasets {undescribed} have no description (about)")
    # Built in memory, then written by Python: a full disk is then one clean OSError, where
    # HDF5 writing to the disk itself fails inside its close and may leave a broken file.
    image = io.BytesIO()
    with h5py.File(image, "w", libver=LIBVER) as f:
        root = {"schema": schema, "schema_version": int(schema_version),
                "params": json.dumps(dict(params or {}), sort_keys=True), **origin(creator),
                **extra}
        for key, value in root.items():
            _set_attr(f.attrs, key, value)
        for name, array in arrays.items():
            _describe(_create(f, name, np.asarray(array), compress), about[name])
        for group, values in (group_attrs or {}).items():
            g = f.require_group(group)
            for key, value in values.items():
                _set_attr(g.attrs, key, value)
    # The strings' values are final: record where they are and their digest, in the root's
    # checksummed header (numbers, which add nothing to the heap).
    ranges = heap_ranges(image.getbuffer())
    digest = heap_digest(lambda start, size: image.getbuffer()[start:start + size], ranges)
    with h5py.File(image, "r+", libver=LIBVER) as f:
        f.attrs[HEAP] = ranges
        f.attrs[HEAP_DIGEST] = digest
    final = image.getbuffer()
    if not np.array_equal(heap_digest(lambda s, n: final[s:s + n], ranges), digest):
        raise RuntimeError("HDF5 moved the global heap while the heap check was written")
    return write_bytes(path, final)


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


def _heap_problem(path: Path, ranges: np.ndarray, digest: np.ndarray) -> str | None:
    """What is wrong with the global heap of the file at ``path`` against its record (``ranges``
    and their ``digest``, from the root attributes), or None."""
    size = path.stat().st_size
    ranges, digest = np.asarray(ranges), np.asarray(digest)
    if (ranges.ndim != 2 or ranges.shape[1] != 2 or ranges.dtype.kind != "u"
            or digest.shape != (32,) or any(start + n > size for start, n in ranges.tolist())):
        return "corrupt: its record of the global heap is not one this code writes"
    with open(path, "rb") as raw:

        def read_range(start: int, n: int) -> bytes:
            raw.seek(start)
            return raw.read(n)

        if not np.array_equal(heap_digest(read_range, ranges), digest):
            return (f"corrupt: the strings of its attributes do not match their SHA-256 "
                    f"({HEAP_DIGEST})")
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
                problem = _heap_problem(path, f.attrs[HEAP], f.attrs[HEAP_DIGEST])
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
                dataset = f[name]
                arrays[name] = (dataset.asstr()[()] if dataset.dtype.kind == "S"
                                else dataset[()])
            reading = "the group attributes"
            group_attrs: dict[str, dict[str, Any]] = {}
            datasets: dict[str, DatasetInfo] = {}

            def collect(name: str, obj: Any) -> None:
                if isinstance(obj, h5py.Group) and len(obj.attrs):
                    group_attrs[name] = {k: _plain(v) for k, v in obj.attrs.items()}
                elif describe and isinstance(obj, h5py.Dataset):
                    datasets[name] = DatasetInfo(
                        obj.shape, obj.dtype,
                        {k: _plain(v) for k, v in obj.attrs.items() if k != "DIMENSION_LABELS"},
                        tuple(dim.label for dim in obj.dims) if "DIMENSION_LABELS" in obj.attrs
                        else ())

            f.visititems(collect)
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
