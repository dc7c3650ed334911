"""The lock file itself, below the holding of ``bert.workflow.lock``: opened without following a
link (``O_NOFOLLOW``), checked to be a regular file of its own (a single name; empty or holding
a lock record), locked with an exclusive ``flock``, and its record of the holders (one line per
holder: its pid and its command) read and written.

Anything that is not our lock file is refused in one line naming the path and the fix, and
nothing is ever written into it: a link (to a file of yours, or anywhere), a folder, a device or
a pipe, a second name (hard link) of another file, a file holding other data. A lock file that
cannot be created, opened or locked is refused too: a lock that cannot be taken never counts as
no lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import stat
import sys
import time
from pathlib import Path

from bert.errors import BusyError, OutputError
from bert.storage.atomic import process_alive
from bert.storage.reading import kind

MAX_RECORD = 64 << 10  # a record is a line per holder; anything larger is not a lock file
_RECORD_LINE = re.compile(r"\d{1,10}( [^\n]*)?")


def open_lock_file(path: Path, protects: str) -> int:
    """The lock file opened for reading and writing (created if missing), never through a link;
    OutputError in one line otherwise."""
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        return os.open(path, flags, 0o644)
    except OSError as exc:
        found = _kind_at(path)
        if found is not None:
            raise _not_a_lock_file(path, found) from None
        if exc.errno == errno.EROFS:
            fix = "run from a folder you can write to"
        elif exc.errno in (errno.EACCES, errno.EPERM):
            fix = (f"make it writable (chmod u+w {path}; chattr -i {path} if it is immutable), "
                   "or remove it")
        else:
            fix = "check the folder and the disk"
        raise OutputError(f"{path}: the lock file cannot be opened ({exc.strerror}), and without "
                          f"it another workflow process could write {protects} at the same "
                          f"time, so nothing was run; {fix}, then run the command again"
                          ) from None


def _kind_at(path: Path) -> str | None:
    """What is at ``path`` when it is not a regular file (links not followed), else None."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return None
    return kind(mode)


def _not_a_lock_file(path: Path, what: str) -> OutputError:
    if what == "a symbolic link":
        return OutputError(f"{path}: is a symbolic link, not the workflow's lock file, and "
                           f"nothing is written through it; remove the link (rm {path}: what it "
                           "points to stays), then run the command again")
    remove = f"rmdir {path}" if what == "a folder" else f"rm {path}"
    return OutputError(f"{path}: is {what}, not the workflow's lock file; remove it ({remove}), "
                       "then run the command again")


def check_lock_file(path: Path, status: os.stat_result) -> tuple[int, int]:
    """The (device, inode) of an opened lock file, once it is known to be a regular file with
    one name; OutputError otherwise."""
    found = kind(status.st_mode)
    if found is not None:
        raise _not_a_lock_file(path, found)
    if status.st_nlink > 1:
        raise OutputError(f"{path}: is one of {status.st_nlink} names of the same file (a hard "
                          "link), so it may be a file of yours: nothing was written into it; "
                          f"remove this name (rm {path}: the file keeps its other names), then "
                          "run the command again")
    return (status.st_dev, status.st_ino)


def identity_at(path: Path) -> tuple[int, int] | None:
    """The (device, inode) of the regular file at ``path`` (links not followed), or None."""
    try:
        status = os.lstat(path)
    except OSError:
        return None
    return (status.st_dev, status.st_ino) if stat.S_ISREG(status.st_mode) else None


def lock_exclusively(fd: int, path: Path, protects: str, wait: bool = False) -> None:
    """An exclusive flock on ``fd``, at once; BusyError naming the holders when another process
    holds it (with ``wait``: once the other process has let it go)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        if wait:
            print(f"waiting for another workflow process ({_holders(fd)}), which writes "
                  f"{protects}", file=sys.stderr, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
            return
        raise BusyError(f"{protects} is in use by another workflow process "
                        f"({_holders(fd)}); wait for it to finish, then run the command again"
                        ) from None
    except OSError as exc:
        raise OutputError(f"{path}: the lock file cannot be locked ({exc.strerror}), and without "
                          f"the lock another workflow process could write {protects} at the "
                          "same time, so nothing was run; keep the project on a file system "
                          "that supports file locks (a local disk)") from None


def _record(fd: int) -> list[str]:
    """The lines of the lock file (its holders, or other data)."""
    try:
        data = os.pread(fd, MAX_RECORD + 1, 0)
    except OSError:
        return []
    return data.decode("utf-8", errors="replace").splitlines() if data else []


def _holders(fd: int, patience: float = 1.0) -> str:
    """The holders a lock file records, those still running first: "pid 12: doit train". A
    holder writes its line just after it takes the lock: an empty record is read again for up
    to ``patience`` seconds."""
    deadline = time.monotonic() + patience
    while not (lines := [line for line in _record(fd) if _RECORD_LINE.fullmatch(line)]) \
            and time.monotonic() < deadline:
        time.sleep(0.02)
    live = [line for line in lines if process_alive(int(line.split()[0]))]
    shown = [f"pid {line.split(' ', 1)[0]}: {line.split(' ', 1)[1]}" if " " in line
             else f"pid {line}" for line in (live or lines)]
    return "; ".join(shown) or "pid unknown"


def check_record(fd: int, path: Path) -> None:
    """OutputError unless the file is empty or a lock record (it may be a file of the user's
    that happens to have the lock's name)."""
    try:
        size = os.fstat(fd).st_size
    except OSError:
        size = 0
    lines = _record(fd)
    if size > MAX_RECORD or not all(_RECORD_LINE.fullmatch(line) for line in lines):
        raise OutputError(f"{path}: holds other data than a lock record, so it is left alone (it "
                          "may be a file of yours); move it away, then run the command again")


def command_line() -> str:
    """This process's command, short and on one line: ``python -m bert train --params p.yaml``."""
    words = list(getattr(sys, "orig_argv", sys.argv)) or ["?"]
    for i in range(min(2, len(words))):  # the interpreter, a script: their names are enough
        if os.path.isabs(words[i]):
            words[i] = os.path.basename(words[i])
    text = " ".join(words)
    text = "".join(c if c.isprintable() else " " for c in text)
    return text if len(text) <= 200 else text[:197] + "..."


def record_holder(fd: int, keep_others: bool) -> None:
    """Write this process into the record: alone, or after the running holders it shares the
    lock with. A record that cannot be written (a full disk) leaves the lock held."""
    others = [line for line in _record(fd) if keep_others and _RECORD_LINE.fullmatch(line)
              and process_alive(int(line.split()[0])) and int(line.split()[0]) != os.getpid()]
    text = "".join(f"{line}\n" for line in [*others, f"{os.getpid()} {command_line()}"])
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, text.encode("utf-8"), 0)
