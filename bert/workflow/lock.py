"""Locks that keep one writer at a time on what they protect (a project folder; a run folder
or a shared data folder alike).

A lock is a small file, e.g. ``.bert.lock`` in the project folder. :func:`hold` opens it
without following a link (``O_NOFOLLOW``), checks that it is a regular file of its own (a
single name; empty or holding a lock record), takes an exclusive ``flock`` on it and records the
holder in it (one line per holder: its pid and its command). A second writer is refused at once
with one line naming the holder. Anything that is not our lock file is refused in one line
naming the path and the fix, and nothing is ever written into it: a link (to a file of yours,
or anywhere), a folder, a device or a pipe, a second name (hard link) of another file, a file
holding other data. A lock file that cannot be created, opened or locked is refused too: a lock
that cannot be taken never counts as no lock.

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
import errno
import fcntl
import os
import re
import stat
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bert.errors import BertError, BusyError, OutputError
from bert.storage.atomic import process_alive
from bert.storage.reading import kind

LOCK_FILE = ".bert.lock"
INHERITED = "BERT_LOCKS"  # "<device>:<inode>:<descriptor>;..." the locks a parent passed down
MAX_RECORD = 64 << 10  # a record is a line per holder; anything larger is not a lock file
_RECORD_LINE = re.compile(r"\d{1,10}( [^\n]*)?")
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
        if _identity_at(self.path) == self.identity:
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
        fd = _open(path, protects)
        try:
            identity = _check_file(path, os.fstat(fd))
            if identity in _held:
                os.close(fd)
                _held[identity].depth += 1
                return _held[identity]
            inherited = _inherited(identity)
            if inherited is not None:
                os.close(fd)
                fd = inherited
            _lock(fd, path, protects, wait)
            if inherited is None and _identity_at(path) != identity:
                os.close(fd)  # replaced between open and lock: the lock must be on the file there
                continue
            _check_record(fd, path)
            _record_holder(fd, keep_others=inherited is not None)
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


def _open(path: Path, protects: str) -> int:
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


def _check_file(path: Path, status: os.stat_result) -> tuple[int, int]:
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


def _identity_at(path: Path) -> tuple[int, int] | None:
    """The (device, inode) of the regular file at ``path`` (links not followed), or None."""
    try:
        status = os.lstat(path)
    except OSError:
        return None
    return (status.st_dev, status.st_ino) if stat.S_ISREG(status.st_mode) else None


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


def _lock(fd: int, path: Path, protects: str, wait: bool = False) -> None:
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


def _holders(fd: int) -> str:
    """The holders a lock file records, those still running first: "pid 12: doit train"."""
    lines = [line for line in _record(fd) if _RECORD_LINE.fullmatch(line)]
    live = [line for line in lines if process_alive(int(line.split()[0]))]
    shown = [f"pid {line.split(' ', 1)[0]}: {line.split(' ', 1)[1]}" if " " in line
             else f"pid {line}" for line in (live or lines)]
    return "; ".join(shown) or "pid unknown"


def _check_record(fd: int, path: Path) -> None:
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


def _record_holder(fd: int, keep_others: bool) -> None:
    """Write this process into the record: alone, or after the running holders it shares the
    lock with. A record that cannot be written (a full disk) leaves the lock held."""
    others = [line for line in _record(fd) if keep_others and _RECORD_LINE.fullmatch(line)
              and process_alive(int(line.split()[0])) and int(line.split()[0]) != os.getpid()]
    text = "".join(f"{line}\n" for line in [*others, f"{os.getpid()} {command_line()}"])
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, text.encode("utf-8"), 0)


def held_by_another(path: Path) -> bool:
    """Whether another process holds the lock at ``path`` now (the file is neither created nor
    followed through a link; this process's own locks do not count)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        if _check_file(path, os.fstat(fd)) in _held:
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
    the locks of the runs it will write, and takes them at its first stage (``doit list`` takes
    none)."""
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
