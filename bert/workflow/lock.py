"""One workflow process at a time per project folder.

``doit`` (through ``dodo.py``) and every ``python -m bert <stage>`` hold an exclusive ``fcntl``
lock on ``.bert.lock`` in the project folder for their whole life. A second one started in the
same folder refuses at once with one line, so two runs never interleave their files. The
stages doit starts are children of the lock holder: they find its pid in the environment and
run under its lock instead of waiting for it (which would deadlock).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from bert.errors import BusyError

LOCK_FILE = ".bert.lock"
HOLDER = "BERT_LOCK_HOLDER"  # the environment variable naming the holder's pid for its children
_held: list[int] = []  # the open descriptor, kept for the life of the process


def hold_project_lock(root: Path = Path(".")) -> None:
    """Take the folder's lock for the rest of the process, or raise BusyError naming the holder.

    Does nothing if this process, or the process that started it, already holds it, and when
    the folder cannot be written (nothing can be run there anyway; the stages say why).
    """
    if _held:
        return
    path = root / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        with contextlib.suppress(OSError):
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
        os.close(fd)
        if holder and os.environ.get(HOLDER) == holder:
            return  # started by the holder: run under its lock
        raise BusyError(f"another workflow process (pid {holder or '?'}) is running in "
                        f"{root.resolve()}; wait for it to finish, then run the command "
                        "again") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    os.environ[HOLDER] = str(os.getpid())
    _held.append(fd)
