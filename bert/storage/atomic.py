"""Atomic file replacement: a reader sees the old file or the complete new one, never a part.

Every write of the workflow goes through :func:`replacing` (a folder written as one unit, such
as the export, through :func:`replacing_folder`): a temporary file
``.<name>.<pid>.<random>.tmp`` in the same folder, fsynced, then renamed over the target. A write
that fails (a full disk, a read-only folder) raises one :class:`OutputError` line and leaves the
old file as it was; temporary files left by a killed process are removed by the next write to
the same folder once that process is gone.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import math
import os
import re
import secrets
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from bert.errors import DataFileError, OutputError

_TEMPORARY = re.compile(r"^\..+\.(\d+)\.[0-9a-f]{8}\.tmp$")
_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_FORBIDDEN = (errno.EACCES, errno.EPERM, errno.EROFS)


def fsync_path(path: Path) -> None:
    """Flush a file (or, where the platform allows, a folder) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_failure(exc: OSError, path: Path) -> OutputError:
    """The one-line error for an ``OSError`` raised while writing ``path``."""
    if exc.errno in _FULL:
        return OutputError(f"no space left on device while writing {path}; free some space and "
                           "run the command again (the previous file, if any, is intact)")
    if exc.errno in _FORBIDDEN:
        return OutputError(f"{path}: cannot be written ({os.strerror(exc.errno)}); make "
                           f"{path.parent} writable, or run from a folder you can write to")
    if exc.errno == errno.EISDIR:
        return OutputError(f"{path}: is a folder, not a file; remove it or choose another name")
    reason = exc.strerror or str(exc).splitlines()[0][:200]
    return OutputError(f"{path}: cannot be written ({reason}); check the folder and the disk")


def process_alive(pid: int) -> bool:
    """Whether a process ``pid`` is running (another user's counts)."""
    if pid <= 0:  # 0 and -1 would name process groups, not a process
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # gone, or a number no process can have
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Remove the temporary files of writes killed midway (their process is gone); return them."""
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            match = _TEMPORARY.match(entry.name)
            pid = int(match.group(1)) if match else os.getpid()
            if pid != os.getpid() and not process_alive(pid):
                with contextlib.suppress(OSError):
                    if entry.is_dir(follow_symlinks=False):  # a folder being replaced
                        shutil.rmtree(entry.path)
                    else:
                        os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def check_writable(folder: Path) -> None:
    """Create ``folder`` if needed and make sure a file can be created in it, or raise
    OutputError (checked before long work, not after it)."""
    probe = folder / f".write-test.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        probe.unlink()
    except OSError as exc:
        raise write_failure(exc, probe.parent) from None


@contextlib.contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the same folder; on success it is fsynced and renamed to ``path``.

    If the block raises (or the process dies), ``path`` is left as it was and the temporary file
    is removed (or, after a kill, left as ``.<name>.<pid>.<random>.tmp``, ignored by every reader
    and removed by a later write). An ``OSError`` becomes one OutputError line naming ``path``.
    """
    path = Path(path)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            raise OSError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        remove_stale_temporaries(path.parent)
        yield tmp
        fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise write_failure(exc, path) from None
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        fsync_path(path.parent)


@contextlib.contextmanager
def replacing_folder(path: str | Path, ours: Iterable[str] = ()) -> Iterator[Path]:
    """Yield a new temporary folder beside ``path``, to be filled; on success it takes the place
    of ``path`` in one step, so that a reader finds the previous folder whole or the new one
    whole, never a mix of the two.

    ours: the names the folder's writer writes; any other entry of the previous folder (a file
    of the user's) is carried over into the new one first. The previous folder is then removed.
    If the block raises (or the process dies), ``path`` is left as it was and the temporary
    folder removed (after a kill, by a later write to the same parent folder). An ``OSError``
    becomes one OutputError line naming ``path``.
    """
    path = Path(path)
    staging = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            raise OutputError(f"{path}: is not a folder of its own (a link or a file), and the "
                              "workflow writes it as one; remove it and run the command again")
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path.parent)
        staging.mkdir()
        yield staging
        if path.is_dir():
            _carry_over(path, staging, set(ours))
        fsync_path(staging)
        old = _swap(staging, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            raise write_failure(exc, path) from None
        raise
    with contextlib.suppress(OSError):  # make the renames durable
        fsync_path(path.parent)


def _carry_over(old: Path, new: Path, ours: set[str]) -> None:
    """Hard-link (or copy) into ``new`` every entry of ``old`` that is not ``ours`` nor a
    temporary file of a write (a file the user put there)."""
    for entry in os.scandir(old):
        if entry.name in ours or _TEMPORARY.match(entry.name) or (new / entry.name).exists():
            continue
        if entry.is_symlink():
            os.symlink(os.readlink(entry.path), new / entry.name)
        elif entry.is_dir():
            shutil.copytree(entry.path, new / entry.name, symlinks=True,
                            copy_function=_link_or_copy)
        else:
            _link_or_copy(entry.path, new / entry.name)


def _link_or_copy(source: str | Path, target: str | Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


_RENAME_EXCHANGE, _AT_FDCWD = 2, -100  # linux/fs.h, fcntl.h


def _swap(new: Path, path: Path) -> Path | None:
    """Put the folder ``new`` in the place of ``path``; return where the previous folder went
    (None if there was none). On Linux the two are exchanged in one step
    (``renameat2(RENAME_EXCHANGE)``); elsewhere the previous one is renamed away first, and a
    crash in between leaves no ``path`` (the previous folder whole under a temporary name)."""
    if not path.exists():
        os.rename(new, path)
        return None
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        renameat2 = None
    if renameat2 is not None and renameat2(_AT_FDCWD, os.fsencode(new), _AT_FDCWD,
                                           os.fsencode(path), _RENAME_EXCHANGE) == 0:
        return new
    old = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    os.rename(path, old)
    os.rename(new, path)
    return old


def write_bytes(path: str | Path, data: bytes | memoryview) -> Path:
    """Write ``data`` to ``path`` atomically; return the path."""
    with replacing(path) as tmp, open(tmp, "xb") as file:  # "x": never another writer's file
        file.write(data)
    return Path(path)


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
    return write_bytes(path, (json.dumps(_finite(data), indent=2, allow_nan=False) + "\n").encode())


NUMBER = (int, float, type(None))  # a JSON number; null stands for a NaN or infinity


def shape_problem(value: Any, shape: Any, where: str = "") -> str | None:
    """What in ``value`` does not match ``shape``, or None.

    shape: a type or tuple of types (a leaf; bool is never a number), a dict of the keys that
    must be there (others are allowed), or a one-element list (a list of items of that shape).
    """
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return f"{where or 'the top level'} is not an object"
        for key, inner in shape.items():
            if key not in value:
                return f"'{where}{key}' is missing"
            problem = shape_problem(value[key], inner, f"{where}{key}.")
            if problem:
                return problem
        return None
    if isinstance(shape, list):
        if not isinstance(value, list):
            return f"'{where.rstrip('.')}' is not a list"
        for i, item in enumerate(value):
            problem = shape_problem(item, shape[0], f"{where.rstrip('.')}[{i}].")
            if problem:
                return problem
        return None
    kinds = shape if isinstance(shape, tuple) else (shape,)
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        return f"'{where.rstrip('.')}' is a {type(value).__name__}"
    return None


def parse_json(text: str | bytes, source: str, fix: str) -> Any:
    """Parse JSON text; anything unreadable (including nesting too deep to parse) is one
    DataFileError line naming ``source``."""
    try:
        return json.loads(text)
    except RecursionError:
        raise DataFileError(f"{source}: nested too deeply to be read; {fix}") from None
    except (ValueError, MemoryError) as exc:
        detail = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise DataFileError(f"{source}: not valid JSON ({detail}); {fix}") from None


def read_json(path: str | Path, fix: str, shape: Any = None) -> Any:
    """Read a JSON file, checked against ``shape`` (see :func:`shape_problem`); a missing,
    unreadable or misshapen file raises DataFileError naming it and the fix."""
    path = Path(path)
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise DataFileError(f"{path}: file not found; {fix}") from None
    except OSError as exc:
        raise DataFileError(f"{path}: cannot be read ({exc.strerror}); {fix}") from None
    value = parse_json(text, str(path), fix)
    problem = None if shape is None else shape_problem(value, shape)
    if problem:
        raise DataFileError(f"{path}: not the expected contents ({problem}); {fix}")
    return value
