"""Where a file comes from: when it was made, by which code, with which libraries.

``origin()`` gives the facts every file the workflow writes records (the root attributes of an
HDF5 file, the model card of an export): the time in UTC (ISO 8601), the package's version, the
git commit of the package's checkout when it is one, and the versions of Python, NumPy, h5py and
the HDF5 library. They say when and with what a file was made, so they differ between two runs
of the same parameters, whose arrays and weights do not.

``SOURCE_DATE_EPOCH`` (seconds since 1970, the reproducible-builds convention) fixes the time:
two runs of the same parameters by the same code on the same libraries then write byte-identical
files.
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from bert import __version__
from bert.errors import OutputError

PACKAGE = "bert-from-scratch"
PACKAGE_DIR = Path(__file__).resolve().parent
GIT_SECONDS = 5  # a git that takes longer (a network file system, a hung hook) is not waited for


def created() -> str:
    """The time now in UTC, to the second, as ISO 8601 (``2025-01-31T12:00:00Z``), or the time
    ``SOURCE_DATE_EPOCH`` gives."""
    fixed = os.environ.get("SOURCE_DATE_EPOCH")
    if fixed is None:
        moment = datetime.now(timezone.utc)
    else:
        try:
            moment = datetime.fromtimestamp(int(fixed), timezone.utc)
        except (ValueError, OverflowError, OSError):
            raise OutputError(f"SOURCE_DATE_EPOCH is {fixed[:40]!r}, not a whole number of "
                              "seconds since 1970; set it to one (or unset it) to record when "
                              "the files were made") from None
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@functools.cache
def git_commit(folder: Path = PACKAGE_DIR.parent) -> str | None:
    """The commit checked out in ``folder`` (default: the folder holding the package), with
    ``+dirty`` when tracked files differ from it; None when ``folder`` is not the top of a git
    checkout (an installed package), or git is absent, fails or hangs."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True,
                                  text=True, timeout=GIT_SECONDS, env=env,
                                  stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout if done.returncode == 0 else None

    found = git("rev-parse", "--show-toplevel", "HEAD")
    lines = (found or "").split()
    if len(lines) != 2 or Path(lines[0]).resolve() != Path(folder).resolve():
        return None  # no checkout, or the package sits in a folder of someone else's checkout
    changes = git("status", "--porcelain", "--untracked-files=no")
    return lines[1] + ("+dirty" if changes else "")


def library_versions() -> dict[str, str]:
    """The versions of Python, NumPy, h5py and the HDF5 library."""
    import h5py
    import numpy as np

    return {"python_version": platform.python_version(), "numpy_version": np.__version__,
            "h5py_version": h5py.version.version, "hdf5_version": h5py.version.hdf5_version}


def origin(creator: str) -> dict[str, str]:
    """The facts a file records about how it was made: ``creator`` (the package, its version,
    and what in it made the file, e.g. ``bert.data.datasets.make_datasets``), ``created``,
    ``package_version``, ``git_commit`` (only when there is one) and ``library_versions()``."""
    commit = git_commit()
    return {"creator": f"{PACKAGE} {__version__}, {creator}", "created": created(),
            "package_version": __version__, **({"git_commit": commit} if commit else {}),
            **library_versions()}
