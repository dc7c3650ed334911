"""Files and folders replaced whole: a reader finds the previous one or the new one, never a
part, and what killed writers leave behind is removed by the next write."""

from __future__ import annotations

from pathlib import Path

import pytest

from bert.storage import atomic


def contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two renames"])
def test_a_folder_replaced_as_one_unit(tmp_path, monkeypatch, exchange):
    folder = tmp_path / "export"
    with atomic.replacing_folder(folder, ("a",)) as new:
        (new / "a").write_text("1")
    (folder / "mine").write_text("kept")
    if not exchange:
        def no_library(*args, **kwargs):
            raise OSError("no C library")

        monkeypatch.setattr(atomic.ctypes, "CDLL", no_library)
    with atomic.replacing_folder(folder, ("a",)) as new:
        (new / "a").write_text("2")
        assert (folder / "a").read_text() == "1"  # the previous one until the end
    assert contents(folder) == {"a": b"2", "mine": b"kept"}
    assert [p.name for p in tmp_path.iterdir()] == ["export"]


def test_a_temporary_name_with_a_pid_no_process_can_have_is_removed_not_a_crash(tmp_path):
    stale = tmp_path / ".r.json.99999999999999999999.0123abcd.tmp"
    stale.write_text("half")
    atomic.write_json(tmp_path / "r.json", {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]
