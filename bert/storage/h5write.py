"""Writing the HDF5 files ``bert.storage.h5io`` reads: every array with what it is (``About``),
the root attributes that say what the file is and where it comes from.

Non-scalar arrays are chunked with a Fletcher-32 checksum, and by default gzip-compressed with
byte shuffling. String attributes are variable-length, so that h5py reads them as ``str``; their
values, in HDF5's global heap, are covered by the heap record (``bert.storage.h5heap``). Writes
are atomic: the file is built in memory, then written to a temporary file in the same folder,
flushed and fsynced, and renamed over the target.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
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


def _dataset_options(array: np.ndarray, compress: bool) -> dict[str, Any]:
    if array.ndim == 0 or array.size == 0:
        return {}  # scalars and empty arrays cannot be chunked (nor checksummed)
    options: dict[str, Any] = {"chunks": True, "fletcher32": True}
    if compress:
        options.update(compression="gzip", compression_opts=4, shuffle=True)
    return options


TEXT = h5py.string_dtype()  # variable-length UTF-8
TEXT_TYPE = h5py.h5t.py_create(TEXT, logical=True)


def _set_attr(attrs: h5py.AttributeManager, key: str, value: Any) -> None:
    """Strings are stored variable-length UTF-8 (h5py reads them as ``str``); their values live
    in the global heap, which ``global_heap_sha256`` covers. A new string attribute is made
    straight through HDF5's attribute calls: h5py's ``attrs[key] = value`` makes it under a
    temporary name and renames it (so that it may replace one), several times slower, which
    the few hundred of a checkpoint feel."""
    if not isinstance(value, str) or key in attrs:
        attrs[key] = value
        return
    attribute = h5py.h5a.create(attrs._id, key.encode("utf-8"), TEXT_TYPE,
                                h5py.h5s.create(h5py.h5s.SCALAR))
    attribute.write(np.array(value, dtype=TEXT))


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
