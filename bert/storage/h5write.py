"""Writing the HDF5 files ``bert.storage.h5io`` reads: every array with what it is (``About``),
the root attributes that say what the file is and where it comes from.

Non-scalar, non-empty arrays are chunked with a Fletcher-32 checksum, and by default
gzip-compressed (level 4) with byte shuffling. A chunk is the whole array when that is at most
1 MiB; otherwise a slab along the first axes of at most 1 MiB (``chunk_shape``: as many whole
trailing axes as fit, the axis before them cut into near-equal parts, 1 along the axes before
that; every chunk dimension at least 1). String attributes are variable-length, so that h5py
reads them as ``str``; their values, in HDF5's global heap, are covered by the heap record
(``bert.storage.h5heap``). Writes are atomic: the file is built in memory, then written to a
temporary file in the same folder, flushed and fsynced, and renamed over the target.

Datasets, their attributes and dimension labels are made through h5py's low-level calls
(``h5d``, ``h5a``, ``h5ds``), and read back through h5py's high level as if made there:
``Group.create_dataset`` and ``Dataset.dims`` spend most of a small dataset's time in Python,
and a checkpoint has about a hundred datasets.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from bert.origin import origin
from bert.storage.atomic import write_bytes
from bert.storage.h5heap import HEAP, HEAP_DIGEST, heap_digest, heap_ranges
from bert.storage.h5io import ORIGIN_ATTRS, About

LIBVER = ("v110", "v110")  # checksummed metadata, readable by HDF5 >= 1.10 tools
RESERVED_ATTRS = ("schema", "schema_version", "params", *ORIGIN_ATTRS)


CHUNK_BYTES = 1 << 20  # the most a chunk holds, unless one element is larger
GZIP_LEVEL = 4


def chunk_shape(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    """The chunks of an array of ``shape`` (at least one axis, none of size 0) and ``itemsize``.

    The whole array when it holds at most ``CHUNK_BYTES``; otherwise as many whole trailing
    axes as fit, the axis before them cut into near-equal slabs that fit (so the last chunk
    wastes less than one index per chunk), and 1 along the axes before that. Every chunk
    dimension is at least 1, and none exceeds the array's.
    """
    chunk, size = list(shape), itemsize
    for axis in range(len(shape) - 1, -1, -1):
        if size * shape[axis] <= CHUNK_BYTES:
            size *= shape[axis]
            continue
        slabs = -(-shape[axis] // max(1, CHUNK_BYTES // size))  # ceiling divisions
        chunk[axis] = -(-shape[axis] // slabs)
        chunk[:axis] = [1] * axis
        break
    return tuple(chunk)


@lru_cache(maxsize=256)
def _creation_plist(shape: tuple[int, ...], itemsize: int, compress: bool) -> h5py.h5p.PropDCID:
    """How a dataset of ``shape`` is stored: without timestamps (the same input gives the same
    bytes); unless it is a scalar or empty (neither can be chunked, nor checksummed), chunked
    with the filters shuffle, deflate (when ``compress``), then Fletcher-32, which checksums
    the bytes as stored. Kept for the next dataset of that shape (HDF5 copies it into each
    dataset it makes): a checkpoint has three arrays of each shape, and makes them again
    every few steps."""
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_obj_track_times(False)
    if shape and 0 not in shape:
        dcpl.set_chunk(chunk_shape(shape, itemsize))
        if compress:
            dcpl.set_shuffle()
            dcpl.set_deflate(GZIP_LEVEL)
        dcpl.set_fletcher32()
    return dcpl


def _link_plist(charset: int) -> h5py.h5p.PropLCID:
    """Links named in ``charset`` whose missing parent groups are created (``a/b/x`` makes
    ``a`` and ``a/b``, which HDF5 gives the dataset's no-timestamps setting)."""
    lcpl = h5py.h5p.create(h5py.h5p.LINK_CREATE)
    lcpl.set_create_intermediate_group(True)
    lcpl.set_char_encoding(charset)
    return lcpl


# As h5py names links: ASCII names as ASCII, any other as UTF-8.
LINKS = {True: _link_plist(h5py.h5t.CSET_ASCII), False: _link_plist(h5py.h5t.CSET_UTF8)}
TEXT = h5py.string_dtype()  # variable-length UTF-8
TEXT_TYPE = h5py.h5t.py_create(TEXT, logical=True)
SCALAR = h5py.h5s.create(h5py.h5s.SCALAR)


def _set_text(obj: h5py.h5o.ObjectID, key: str, value: str) -> None:
    """Give ``obj`` the new string attribute ``key``, made straight through HDF5's attribute
    calls: h5py's ``attrs[key] = value`` makes it under a temporary name and renames it (so
    that it may replace one), several times slower, which the few hundred of a checkpoint
    feel."""
    attribute = h5py.h5a.create(obj, key.encode("utf-8"), TEXT_TYPE, SCALAR)
    attribute.write(np.array(value, dtype=TEXT))


def _set_attr(obj: h5py.Group, key: str, value: Any) -> None:
    """Strings are stored variable-length UTF-8 (h5py reads them as ``str``); their values live
    in the global heap, which ``global_heap_sha256`` covers. Other values, and a string that
    replaces an attribute, go through h5py's ``attrs``."""
    if isinstance(value, str) and key not in obj.attrs:
        _set_text(obj.id, key, value)
    else:
        obj.attrs[key] = value


def _fixed_text(array: np.ndarray) -> tuple[np.ndarray, h5py.h5t.TypeID]:
    """``array`` of strings as fixed-length, null-terminated UTF-8 (h5dump prints them as
    words; their bytes are checksummed with the chunks, where variable-length strings would
    live in the unchecksummed global heap), with that HDF5 type."""
    encoded = np.array([str(item).encode("utf-8") for item in array.ravel()], dtype=bytes)
    text = h5py.h5t.C_S1.copy()
    text.set_size(encoded.dtype.itemsize + 1)
    text.set_strpad(h5py.h5t.STR_NULLTERM)
    text.set_cset(h5py.h5t.CSET_UTF8)
    return encoded.astype(f"S{text.get_size()}").reshape(array.shape), text


def _create(parent: h5py.h5g.GroupID, name: str, array: np.ndarray,
            compress: bool) -> h5py.h5d.DatasetID:
    """Dataset ``name`` of ``parent`` holding ``array`` (strings as ``_fixed_text``), made
    through h5py's low-level calls: ``Group.create_dataset`` spends most of a small dataset's
    time in Python, checking and guessing what is fixed here."""
    if array.dtype.kind in "UO":
        data, file_type = _fixed_text(array)
        memory_type = file_type
    else:
        data = np.asarray(array, order="C")
        file_type = h5py.h5t.py_create(data.dtype, logical=True)
        memory_type = None  # h5py's own for data's dtype
    dataset = h5py.h5d.create(parent, name.encode("utf-8"), file_type,
                              h5py.h5s.create_simple(data.shape),
                              dcpl=_creation_plist(data.shape, file_type.get_size(), compress),
                              lcpl=LINKS[name.isascii()])
    if data.size:
        dataset.write(h5py.h5s.ALL, h5py.h5s.ALL, data, mtype=memory_type)
    return dataset


def _describe(dataset: h5py.h5d.DatasetID, about: About) -> None:
    """Write ``about`` as the attributes of ``dataset``: ``description``, ``units`` where it
    has them, and the axes as HDF5 dimension labels."""
    if about.axes and len(about.axes) != dataset.rank:
        raise ValueError(f"{h5py.h5i.get_name(dataset).decode('utf-8')}: {len(about.axes)} "
                         f"axis labels for {dataset.rank} dimensions")
    _set_text(dataset, "description", about.description)
    if about.units:
        _set_text(dataset, "units", about.units)
    for axis, label in enumerate(about.axes):
        h5py.h5ds.set_label(dataset, axis, label.encode("utf-8"))


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
        raise ValueError(f"attributes {clash} are set by h5write.write itself")
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
            _set_attr(f, key, value)
        for name, array in arrays.items():
            _describe(_create(f.id, name, np.asarray(array), compress), about[name])
        for group, values in (group_attrs or {}).items():
            g = f.require_group(group)
            for key, value in values.items():
                _set_attr(g, key, value)
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
