"""Locks that keep one writer at a time on what they protect (a project folder; a run folder
or a shared data folder alike).

A lock is a small file, e.g. ``.bert.lock`` in the project folder. :func:`hold` opens it, makes
sure it is our lock file, takes an exclusive ``flock`` on it and records the holder in it
(``bert.workflow.lock_file``: the file's checks, and all it refuses). A second writer is
refused at once with one line naming the holder.

**Sharing the lock with child processes.** A ``flock`` belongs to the open file description,
not to a process: every descriptor that refers to it (a duplicate, or one inherited by a child)
keeps the lock, and it ends only when the last of them is closed. A child that opened the file
anew would get a description of its own and be refused, since its parent holds the lock. So a
holder passes its descriptors down (:func:`child_process_options`: ``pass_fds`` and the
variable ``BERT_LOCKS`` naming them), and a child that takes the same lock adopts the inherited
descriptor (``flock`` on a description that holds the lock succeeds at once, so nothing is
trusted blindly: a descriptor that does not hold it takes it or is refused). Then the lock lives
as long as any holder does: ``doit`` holds it, each stage it starts holds it too, and a stage
left behind by a killed ``doit`` still keeps a second ``doit`` or ``python -m bert`` out until
it ends. Under MPI the descriptors go on through the launcher (MPICH's ``mpiexec`` and its
proxies keep them open) to every rank.

A file lock cannot stop a process that deletes the lock file: the next holder would lock a new
file. :meth:`Lock.check` (run by ``doit`` before each stage, and every 2 s by a stage through
:meth:`Lock.watch`) notices a lock file that was removed or replaced, and takes the new one, or,
when another process already holds it, says so and stops.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bert.errors import BertError, BusyError
from bert.workflow.lock_file import (
    check_lock_file,
    check_record,
    identity_at,
    lock_exclusively,
    open_lock_file,
    record_holder,
)

LOCK_FILE = ".bert.lock"
INHERITED = "BERT_LOCKS"  # "<device>:<inode>:<descriptor>;..." the locks a parent passed down
_ATTEMPTS = 5  # a lock file replaced between opening and locking it is opened again


@dataclass
class Lock:
    """A lock this process holds: ``fd`` is the locked description's descriptor."""

    path: Path
    protects: str  # what it keeps to one writer, e.g. "the project folder /home/me/run"
    fd: int
    identity: tuple[int, int]  # (device, inode) of the lock file
    depth: int = 1  # hold() calls not yet released

    def release(self) -> None:
        """Give the lock up (when every ``hold`` of it in this process is released).

        The descriptor is closed, never unlocked: a description shared with a parent or a child
        keeps their lock."""
        with _guard:
            self.depth -= 1
            if self.depth == 0:
                _held.pop(self.identity, None)
                with contextlib.suppress(OSError):
                    os.close(self.fd)

    def __enter__(self) -> Lock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def check(self) -> None:
        """Make sure the file at ``path`` is still the one locked: when it was removed or
        replaced meanwhile, lock the new file too (BusyError if another process holds it)."""
        if identity_at(self.path) == self.identity:
            return
        hold(self.path, self.protects)

    def watch(self, interval: float, lost: Callable[[BertError], object]) -> None:
        """``check`` every ``interval`` seconds in a daemon thread, for as long as the lock is
        held: when the lock file was replaced and another process holds the new one, call
        ``lost`` with the error, once, and stop watching."""

        def watching() -> None:
            while True:
                time.sleep(interval)
                if self.depth <= 0:
                    return
                try:
                    self.check()
                except BertError as error:
                    lost(error)
                    return

        threading.Thread(target=watching, daemon=True, name=f"watch {self.path}").start()


_held: dict[tuple[int, int], Lock] = {}
_guard = threading.RLock()  # _held, from the main thread and a watching one


def held_locks() -> list[Lock]:
    """The locks this process holds."""
    return list(_held.values())


def hold(path: str | Path, protects: str, wait: bool = False) -> Lock:
    """Take the lock at ``path`` (created, with its folder, if missing) for ``protects``, e.g.
    "the run params", until :meth:`Lock.release` or the end of the process; a lock this process
    already holds is held once more. An inherited descriptor of the same file (see the module's
    docstring) is adopted.

    Raises BusyError when another process holds it (with ``wait``, waits for it instead, saying
    so once on stderr), OutputError when ``path`` is not a lock file of ours or cannot be opened
    or locked (nothing is written into it then).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass  # opening the lock file says why
    with _guard:
        return _hold(path, protects, wait)


def _hold(path: Path, protects: str, wait: bool = False) -> Lock:
    for _ in range(_ATTEMPTS):
        fd = open_lock_file(path, protects)
        try:
            identity = check_lock_file(path, os.fstat(fd))
            if identity in _held:
                os.close(fd)
                _held[identity].depth += 1
                return _held[identity]
            inherited = _inherited(identity)
            if inherited is not None:
                os.close(fd)
                fd = inherited
            lock_exclusively(fd, path, protects, wait)
            if inherited is None and identity_at(path) != identity:
                os.close(fd)  # replaced between open and lock: the lock must be on the file there
                continue
            check_record(fd, path)
            record_holder(fd, keep_others=inherited is not None)
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise
        _held[identity] = Lock(path, protects, fd, identity)
        return _held[identity]
    raise BusyError(f"{path}: the lock file keeps being replaced while it is taken; stop the "
                    f"other process that writes {protects}, then run the command again")


def child_process_options() -> dict[str, Any]:
    """The ``subprocess.Popen`` arguments that pass the held locks down to a child process:
    ``pass_fds`` (the descriptors) and ``env`` (the environment, with ``BERT_LOCKS`` naming
    them)."""
    locks = held_locks()
    named = ";".join(f"{lock.identity[0]}:{lock.identity[1]}:{lock.fd}" for lock in locks)
    return {"pass_fds": tuple(lock.fd for lock in locks),
            "env": {**os.environ, INHERITED: named}}


def _inherited(identity: tuple[int, int]) -> int | None:
    """The descriptor of the lock file ``identity`` that a parent passed down, if it is open
    here and refers to that file."""
    for entry in os.environ.get(INHERITED, "").split(";"):
        device, _, rest = entry.partition(":")
        inode, _, fd = rest.partition(":")
        if not (device.isdigit() and inode.isdigit() and fd.isdigit()):
            continue
        if (int(device), int(inode)) != identity:
            continue
        try:
            status = os.fstat(int(fd))
        except OSError:  # not passed down to this process after all
            continue
        if (status.st_dev, status.st_ino) == identity:
            return int(fd)
    return None


def held_by_another(path: Path) -> bool:
    """Whether another process holds the lock at ``path`` now (the file is neither created nor
    followed through a link; this process's own locks do not count)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        if check_lock_file(path, os.fstat(fd)) in _held:
            return False
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    except (OSError, BertError):
        return False
    finally:
        os.close(fd)


_claimed: dict[Path, str] = {}


def claim(path: Path, protects: str) -> None:
    """Ask for the lock at ``path`` to be taken when ``take_claimed`` is called: ``doit`` claims
    the locks of the runs it will write, and takes them when it starts running tasks (``doit
    list`` takes none)."""
    _claimed[Path(path)] = protects


def take_claimed() -> None:
    """Hold every claimed lock (once; BusyError naming the holder of one another process has)."""
    while _claimed:
        path, protects = next(iter(_claimed.items()))
        hold(path, protects)
        del _claimed[path]


def hold_project_lock(root: Path = Path(".")) -> Lock:
    """The lock of a project folder (``<root>/.bert.lock``): one workflow process writing it at
    a time, the stages ``doit`` starts sharing ``doit``'s lock."""
    return hold(root / LOCK_FILE, f"the project folder {root.resolve()}")
