"""Reading a file the user names, safely: what stands at the path is looked at before a byte is
read, so that a folder, a device (``/dev/zero``), a named pipe (which would block forever) or a
file far larger than the kind of file it should be is refused in one line instead of a read that
hangs or fills the memory."""

from __future__ import annotations

import os
import stat
from pathlib import Path

KINDS = {stat.S_IFDIR: "a folder", stat.S_IFIFO: "a named pipe (FIFO)",
         stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
         stat.S_IFSOCK: "a socket", stat.S_IFLNK: "a symbolic link"}


class NotReadable(Exception):
    """``path`` is not a regular file that can be read: ``problem`` says why, e.g. "is a
    folder" (callers turn it into their own one-line error, with their fix)."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def kind(mode: int) -> str | None:
    """What a file of mode ``mode`` is ("a folder", "a named pipe (FIFO)", ...), None for a
    regular file."""
    return None if stat.S_ISREG(mode) else KINDS.get(stat.S_IFMT(mode), "not a regular file")


def problem_at(path: str | Path) -> str | None:
    """Why ``path`` (links followed) is not a regular file: "does not exist", "is a folder", "is
    a character device", ..., or "cannot be read (...)"; None when it is one."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "does not exist"
    except (OSError, ValueError) as exc:  # ValueError: a NUL character in the path
        return f"cannot be read ({getattr(exc, 'strerror', None) or exc})"
    found = kind(mode)
    return None if found is None else f"is {found}, not a file"


def read_regular(path: str | Path, limit: int) -> bytes:
    """The bytes of the regular file ``path`` (links followed), of at most ``limit`` bytes.

    Raises NotReadable when it is not a regular file or is larger than ``limit`` (nothing is
    read then, and opening never blocks), FileNotFoundError or OSError when it cannot be read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        problem = problem_at(path)  # a socket cannot even be opened
        if problem is not None and problem.startswith("is "):
            raise NotReadable(problem) from None
        raise
    try:
        status = os.fstat(fd)
        found = kind(status.st_mode)
        if found is not None:
            raise NotReadable(f"is {found}, not a file")
        if status.st_size > limit:
            raise NotReadable(f"is {status.st_size:,} bytes, more than such a file can be "
                              f"({limit:,})")
        chunks, size = [], 0
        while size <= limit:  # a file that grows while it is read stops at the limit
            # the size it has (then small reads for what was added meanwhile, or /proc files
            # whose size says 0)
            chunk = os.read(fd, min(limit + 1 - size, max(status.st_size - size + 1, 1 << 16)))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > limit:
        raise NotReadable(f"is more than {limit:,} bytes, more than such a file can be")
    return b"".join(chunks)
