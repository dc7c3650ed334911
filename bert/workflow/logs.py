"""Logging to the console and to a rotating log file, as the ``logging:`` section asks.

Each stage logs into the folder it writes (``log.txt``: a run's, its data's or its initial
weights'). A log file is appended to, and rotated, only when it and its rotated copies are logs
this package wrote (their first line has the format of ours): whatever else a folder holds is
left alone.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
import sys
from pathlib import Path

from bert.errors import OutputError
from bert.workflow.params import LoggingParams

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
OUR_LINE = re.compile(rb"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ +bert[.\w]*: ")


def is_our_log(path: Path) -> bool:
    """Whether ``path`` is empty or starts with a line this package logged."""
    try:
        with open(path, "rb") as file:
            head = file.read(256)
    except OSError:
        return False
    return not head or OUR_LINE.match(head) is not None


class LogFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log file that, when it cannot be written (a full disk), says so in one line
    and stops logging to the file, instead of printing a traceback for every record."""

    def handleError(self, record: logging.LogRecord) -> None:
        error = sys.exc_info()[1]
        print(f"warning: cannot write the log file {self.baseFilename} ({error}); the log goes "
              "on on the console only", file=sys.stderr)
        logging.getLogger("bert").removeHandler(self)


def _check_ours(path: Path) -> None:
    """OutputError unless ``path`` is absent, a plain file and a log of ours."""
    if path.is_symlink() or path.is_dir():
        raise OutputError(f"{path}: not a plain file, so no log is written into it; remove it")
    if path.exists() and not is_our_log(path):
        raise OutputError(f"{path}: exists and was not written by this workflow, so it is left "
                          "alone; move it away")


def _console() -> logging.Handler:
    console = logging.StreamHandler()
    console.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    return console


def setup_logging(params: LoggingParams, path: Path) -> None:
    """Send the package's log records to stderr and to the log file ``path`` (rotated by
    size)."""
    logger = logging.getLogger("bert")
    logger.setLevel(params.level)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    console = _console()
    _check_ours(path)
    # rotation renames over ``<file>.1`` ... ``<file>.<backup_count>``: check those that exist
    # (one look at the folder, not a look per name that could be)
    try:
        names = [entry.name for entry in os.scandir(path.parent)]
    except OSError:  # no folder yet (it is made below), or unreadable: opening it says so
        names = []
    copies = re.compile(re.escape(path.name) + r"\.([1-9][0-9]*)")
    for name in sorted(names):
        match = copies.fullmatch(name)
        if match and int(match.group(1)) <= params.backup_count:
            _check_ours(path.with_name(name))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        file = LogFileHandler(path, maxBytes=params.max_bytes, backupCount=params.backup_count)
    except OSError as exc:
        raise OutputError(f"{path}: the log cannot be opened ({exc.strerror}); make its folder "
                          "writable") from None
    file.setFormatter(logging.Formatter(FORMAT))
    for handler in (console, file):
        logger.addHandler(handler)
    logger.propagate = False


def quiet_logging() -> None:
    """Only warnings and errors, on stderr alone: for the MPI ranks other than rank 0, which
    write no log file."""
    logger = logging.getLogger("bert")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.addHandler(_console())
    logger.setLevel(logging.WARNING)
    logger.propagate = False
