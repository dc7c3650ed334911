"""Logging to the console and to a rotating log file, as the ``logging:`` section asks."""

from __future__ import annotations

import logging
import logging.handlers

from bert.workflow.layout import Layout
from bert.workflow.params import LoggingParams

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def _console() -> logging.Handler:
    console = logging.StreamHandler()
    console.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    return console


def setup_logging(params: LoggingParams, layout: Layout) -> None:
    """Send the package's log records to stderr and to ``params.file`` (rotated by size)."""
    logger = logging.getLogger("bert")
    logger.setLevel(params.level)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    console = _console()
    path = layout.under_root(params.file)
    path.parent.mkdir(parents=True, exist_ok=True)
    file = logging.handlers.RotatingFileHandler(path, maxBytes=params.max_bytes,
                                                backupCount=params.backup_count)
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
