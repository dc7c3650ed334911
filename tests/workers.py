"""The fast tests on worker processes (pytest-xdist, in the test extra), hooked in by
conftest.py.

Where pytest-xdist is installed and the slow tests are left out (``-m "not slow"``), the tests
run on one worker per CPU, up to ``MAX_WORKERS``. Otherwise they run in pytest's own process,
one after another: the slow tests each start processes and threads of its own, and some wait for
one another. ``-n`` decides when given (``-n 0``: one process, as ``--pdb`` needs; ``-n N``: N
workers). The differences to transformers each worker finds (``tests.golden.REPORT``) are sent
to the process that prints the summary.
"""

from __future__ import annotations

import json
import os

import pytest

from tests.golden import REPORT

MAX_WORKERS = 4  # each imports torch and makes the session's runs: more would cost, not save


def installed(config: pytest.Config) -> bool:
    return config.pluginmanager.hasplugin("xdist")


def leaves_out_the_slow_tests(config: pytest.Config) -> bool:
    return "not slow" in " ".join((config.option.markexpr or "").split())


def choose(config: pytest.Config) -> None:
    """Workers for the fast set, unless ``-n`` was given (before pytest-xdist reads its
    options); never in a worker, which runs the tests it is sent."""
    if (config.option.numprocesses is None and leaves_out_the_slow_tests(config)
            and not hasattr(config, "workerinput") and not os.environ.get("PYTEST_XDIST_WORKER")):
        config.option.numprocesses = "auto"
        config.option.maxprocesses = config.option.maxprocesses or MAX_WORKERS


class GoldenReport:
    """pytest-xdist's hooks that bring each worker's differences to transformers back."""

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        output = getattr(session.config, "workeroutput", None)
        if output is not None:  # a worker
            output["golden_report"] = json.dumps(REPORT)

    def pytest_testnodedown(self, node, error) -> None:
        found = json.loads(getattr(node, "workeroutput", {}).get("golden_report", "{}"))
        for label, differences in found.items():
            merged = REPORT.setdefault(label, {})
            for name, value in differences.items():
                merged[name] = max(merged.get(name, 0.0), value)
