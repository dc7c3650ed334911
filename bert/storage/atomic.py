"""Atomic file replacement: a reader sees the old file or the complete new one, never a part."""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bert.errors import DataFileError


def fsync_path(path: Path) -> None:
    """Flush a file (or, where the platform allows, a folder) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the same folder; on success it is fsynced and renamed to ``path``.

    If the block raises (or the process dies), ``path`` is left as it was and the temporary file
    is removed (or, after a kill, left as ``.<name>.<pid>.<random>.tmp``, ignored by every reader).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        yield tmp
        fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        fsync_path(path.parent)


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: such floats become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON (keys in insertion order), atomically; return the path."""
    text = json.dumps(_finite(data), indent=2, allow_nan=False) + "\n"
    with replacing(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def read_json(path: str | Path, fix: str) -> Any:
    """Read a JSON file; a missing or unreadable one raises DataFileError naming it and the fix."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DataFileError(f"{path}: file not found; {fix}") from None
    except (OSError, ValueError) as exc:
        raise DataFileError(f"{path}: not valid JSON ({exc}); {fix}") from None
