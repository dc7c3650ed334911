"""The check of HDF5's global heap, where the values of variable-length strings live (the string
attributes of our files, so that h5py reads them as ``str``).

The heap has no checksum, and a damaged byte in it can make the HDF5 library loop forever. So
``bert.storage.h5write`` records in the root, as numbers in its checksummed header, where the
heap's collections are (``global_heap``) and their SHA-256 (``global_heap_sha256``), and
``bert.storage.h5io.read`` checks those bytes before HDF5 reads any of them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

# Where the global heap (the values of the string attributes) is, and its SHA-256.
HEAP, HEAP_DIGEST = "global_heap", "global_heap_sha256"
_GCOL = re.compile(rb"GCOL\x01\x00\x00\x00")


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


def heap_problem(path: Path, ranges: np.ndarray, digest: np.ndarray) -> str | None:
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
