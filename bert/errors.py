"""The exceptions a user can meet: one type per kind of user error.

Each is raised with a one-line message that names the file, key or value at fault and says
what to do. The command-line entry points print that line and exit non-zero, without a traceback.
"""


class BertError(Exception):
    """Base class of every error caused by user input rather than by a bug."""


class ConfigError(BertError):
    """An architecture configuration that is invalid or not supported by this implementation."""


class ParamsError(BertError):
    """An invalid ``params.yaml``: unknown key, wrong type, out-of-range or inconsistent value."""


class DataFileError(BertError):
    """A dataset or weight file that is missing, truncated, corrupt or not one of ours."""


class MissingExtraError(BertError):
    """An optional extra the asked-for feature needs is not installed."""


class TrainingDivergedError(BertError):
    """A loss or gradient became NaN or infinite during training."""


def remake_hint(stage: str) -> str:
    """The fix for a missing or bad file written by workflow stage ``stage``.

    Deleting the file matters: doit reruns a stage whose output is missing, not one whose output
    was damaged after it ran.
    """
    return f"delete it and run `doit {stage}` to make it again"
