"""Reading a file the user names: what stands at the path is looked at first."""

from __future__ import annotations

import os

import pytest

from bert.storage.reading import NotReadable, problem_at, read_regular


def test_a_regular_file_is_read_whole_up_to_the_limit(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 1000)
    assert read_regular(path, 1000) == b"x" * 1000
    with pytest.raises(NotReadable, match="is 1,000 bytes, more than such a file can be \\(999\\)"):
        read_regular(path, 999)
    status = open("/proc/self/status", "rb").read()  # its size says 0
    assert read_regular("/proc/self/status", 1 << 20)[:5] == status[:5] == b"Name:"


def test_what_is_not_a_file_is_named_without_reading_it(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    assert problem_at(tmp_path / "fifo") == "is a named pipe (FIFO), not a file"
    assert problem_at(tmp_path) == "is a folder, not a file"
    assert problem_at(tmp_path / "none") == "does not exist"
    assert problem_at("/dev/null") == "is a character device, not a file"
    assert problem_at(tmp_path / "a\0b").startswith("cannot be read (")
    for path, kind in ((tmp_path / "fifo", "a named pipe"), ("/dev/zero", "a character device"),
                       (tmp_path, "a folder")):
        with pytest.raises(NotReadable, match=f"is {kind}"):
            read_regular(path, 10)
