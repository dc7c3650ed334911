"""Where a file comes from: the creation time (UTC, ISO 8601, or SOURCE_DATE_EPOCH), the git
commit of a checkout (none, and no failure, without git or outside a checkout), the versions."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import datetime, timezone

import pytest

from bert import __version__, origin
from bert.errors import OutputError

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def test_created_is_now_in_utc_as_iso_8601(monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    stamp = origin.created()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp)
    made = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert abs((datetime.now(timezone.utc) - made).total_seconds()) < 5


def test_source_date_epoch_fixes_the_time(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    assert origin.created() == "1970-01-01T00:00:00Z"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1.5")
    with pytest.raises(OutputError, match="SOURCE_DATE_EPOCH is '1.5', not a whole number"):
        origin.created()


def git(folder, *args):
    return subprocess.run(["git", "-C", str(folder), "-c", "user.name=t", "-c",
                           "user.email=t@example.org", *args], check=True, capture_output=True,
                          text=True).stdout.strip()


@needs_git
def test_the_commit_of_a_checkout_and_its_changes(tmp_path):
    folder = tmp_path / "checkout"
    folder.mkdir()
    git(folder, "init", "-q")
    (folder / "code.py").write_text("x = 1\n")
    git(folder, "add", "code.py")
    git(folder, "commit", "-q", "-m", "first")
    head = git(folder, "rev-parse", "HEAD")
    assert origin.git_commit(folder) == head
    (folder / "untracked.txt").write_text("not part of the code\n")
    assert origin.git_commit.__wrapped__(folder) == head
    (folder / "code.py").write_text("x = 2\n")
    assert origin.git_commit.__wrapped__(folder) == head + "+dirty"
    (folder / "sub").mkdir()
    assert origin.git_commit.__wrapped__(folder / "sub") is None  # not the top of a checkout


def test_no_commit_outside_a_checkout_or_without_git(tmp_path, monkeypatch):
    assert origin.git_commit.__wrapped__(tmp_path) is None
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no git at all
    assert origin.git_commit.__wrapped__(origin.PACKAGE_DIR.parent) is None


def test_the_origin_names_the_creator_and_leaves_out_a_missing_commit(monkeypatch):
    monkeypatch.setattr(origin, "git_commit", lambda: None)
    facts = origin.origin("tests.test_origin")
    assert facts["creator"] == f"bert-from-scratch {__version__}, tests.test_origin"
    assert facts["package_version"] == __version__ and "git_commit" not in facts
    assert set(facts) == {"creator", "created", "package_version", "python_version",
                          "numpy_version", "h5py_version", "hdf5_version"}
    monkeypatch.setattr(origin, "git_commit", lambda: "0" * 40)
    assert origin.origin("x")["git_commit"] == "0" * 40
