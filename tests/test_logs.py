"""The log file: appended to and rotated only when it and its rotated copies are ours, checked
at once whatever ``logging.backup_count`` says."""

from __future__ import annotations

import logging
import time

import pytest

from bert.errors import OutputError
from bert.workflow.layout import Layout
from bert.workflow.logs import setup_logging
from bert.workflow.params import LoggingParams


@pytest.fixture(autouse=True)
def restore_logging():
    yield
    logger = logging.getLogger("bert")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


def test_the_rotated_copies_that_exist_are_checked_at_once(tmp_path):
    logs = tmp_path / "artifacts/logs"
    logs.mkdir(parents=True)
    started = time.perf_counter()  # not a look per name that could be (the loader allows 1000)
    setup_logging(LoggingParams(backup_count=10**7), Layout(tmp_path))
    assert time.perf_counter() - started < 1
    (logs / "bert.log.2000").write_text("my notes\n")  # past backup_count: rotation never
    params = LoggingParams(backup_count=1000)          # reaches it
    setup_logging(params, Layout(tmp_path))
    (logs / "bert.log.700").write_text("my notes\n")  # rotation would rename over it
    with pytest.raises(OutputError, match="bert.log.700 exists and was not written by this"):
        setup_logging(params, Layout(tmp_path))
    assert (logs / "bert.log.700").read_text() == "my notes\n"
    setup_logging(LoggingParams(backup_count=699), Layout(tmp_path))  # beyond its reach: fine
