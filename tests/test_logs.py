"""The log files: each stage logs into the folder it writes (``log.txt``), appended to and
rotated only when it and its rotated copies are ours, checked at once whatever
``logging.backup_count`` says; whatever else is there is left alone."""

from __future__ import annotations

import time

import pytest

from bert.__main__ import main
from bert.errors import OutputError
from bert.workflow.logs import setup_logging
from bert.workflow.params import LoggingParams
from tests.workflow import layout_of, tiny


def test_the_rotated_copies_that_exist_are_checked_at_once(tmp_path):
    logs = tmp_path / "artifacts/runs/params"
    log = logs / "log.txt"
    started = time.perf_counter()  # not a look per name that could be (the loader allows 1000)
    setup_logging(LoggingParams(backup_count=10**7), log)
    assert time.perf_counter() - started < 1
    (logs / "log.txt.2000").write_text("my notes\n")  # past backup_count: rotation never
    params = LoggingParams(backup_count=1000)         # reaches it
    setup_logging(params, log)
    (logs / "log.txt.700").write_text("my notes\n")  # rotation would rename over it
    with pytest.raises(OutputError, match="log.txt.700: exists and was not written by this"):
        setup_logging(params, log)
    assert (logs / "log.txt.700").read_text() == "my notes\n"
    setup_logging(LoggingParams(backup_count=699), log)  # beyond its reach: fine


def test_a_stage_logs_into_the_folder_it_writes(project):
    layout = layout_of(project, tiny())
    for path in (layout.log("data_dir"), layout.log("init_dir"), layout.log_file):
        assert not path.exists()
    assert main(["data"]) == 0 and main(["evaluate"]) == 0
    assert layout.log("data_dir").is_file() and not layout.log("init_dir").exists()
    assert "WARNING bert.workflow.evaluate: evaluation.train_examples is 4096" in (
        layout.log_file.read_text())


def refused(capsys, stage: str) -> str:
    assert main([stage]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_a_log_file_that_is_not_ours_is_never_appended_or_rotated(project, capsys):
    layout = layout_of(project, tiny())
    results = layout.results.read_bytes()
    notes = layout.log_file
    notes.write_text("my notes\n")
    assert f"{notes.relative_to(project)}: exists and was not written by this workflow" in (
        refused(capsys, "report"))
    assert notes.read_text() == "my notes\n" and layout.results.read_bytes() == results
    notes.unlink()
    backup = notes.with_name("log.txt.1")  # rotation would rename over it
    backup.write_text("my notes\n")
    assert "log.txt.1: exists and was not written" in refused(capsys, "report")
    assert backup.read_text() == "my notes\n"
    data_notes = layout.log("data_dir")  # the data's folder alike
    data_notes.write_text("my notes\n")
    assert "log.txt: exists and was not written" in refused(capsys, "data")
    assert data_notes.read_text() == "my notes\n"


def test_a_log_file_that_is_a_link_or_a_folder_is_left_alone(project, capsys):
    layout = layout_of(project, tiny())
    (project / "mine.txt").write_text("my text\n")
    layout.log_file.symlink_to(project / "mine.txt")
    assert "log.txt: not a plain file, so no log is written into it" in refused(capsys, "report")
    assert (project / "mine.txt").read_text() == "my text\n"
    layout.log_file.unlink()
    layout.log_file.mkdir()
    assert "log.txt: not a plain file" in refused(capsys, "report")
    assert layout.log_file.is_dir()
