"""The exceptions a user can meet: one type per kind of user error.

Each is raised with a one-line message that names the file, key or value at fault and says
what to do. The command-line entry points print that line and exit non-zero, without a traceback.
Values quoted in a message go through :func:`bounded`, so that a hostile value (a huge string,
an integer of a million digits, an alias bomb of nested lists) cannot flood the message.
"""

from __future__ import annotations

import reprlib
from typing import Any


class BertError(Exception):
    """Base class of every error caused by user input rather than by a bug."""


class ConfigError(BertError):
    """An architecture configuration that is invalid or not supported by this implementation."""


class ParamsError(BertError):
    """An invalid ``params.yaml``: unknown key, wrong type, out-of-range or inconsistent value."""


class DataFileError(BertError):
    """A dataset or weight file that is missing, truncated, corrupt or not one of ours."""


class OutputError(BertError):
    """A file cannot be written: no space left, a read-only folder, or it is not ours to replace."""


class ResourceError(BertError):
    """The parameters or a file ask for more memory than the machine has."""


class BusyError(BertError):
    """Another workflow process is running in the same project folder."""


class MissingExtraError(BertError):
    """An optional extra the asked-for feature needs is not installed."""


class TrainingDivergedError(BertError):
    """A loss or gradient became NaN or infinite during training."""


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, 60, 60
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 4


def bounded(value: Any) -> str:
    """``repr(value)`` cut to a few dozen characters, in time bounded whatever the value."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**30:
        return f"<an integer of {value.bit_length()} bits>"  # repr of 10**5000 digits raises
    try:
        text = _REPR.repr(value)
    except Exception:  # a repr that fails says nothing useful anyway
        text = f"<a {type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."


def remake_hint(stage: str) -> str:
    """The fix for a missing or bad file written by workflow stage ``stage``.

    Deleting the file matters: doit reruns a stage whose output is missing, not one whose output
    was damaged after it ran.
    """
    return f"delete it and run `doit {stage}` to make it again"


def check_hint(kind: str) -> str:
    """The fix for a bad file the user named: check it (it is not the workflow's to delete)."""
    return f"check that you named the right file ({kind})"
