"""The fast tests on worker processes (pytest-xdist, in the test extra), hooked in by
conftest.py.

Where pytest-xdist is installed and the slow tests are left out (``-m "not slow"``), the tests
run on one worker per CPU, up to ``MAX_WORKERS``. Otherwise they run in pytest's own process,
one after another: the slow tests each start processes and threads of its own, and some wait for
one another. ``-n`` decides when given (``-n 0``: one process, as ``--pdb`` needs; ``-n N``: N
workers). The differences to transformers each worker finds (``tests.golden.REPORT``) are sent
to the process that prints the summary.

The tests that import torch and transformers (``TORCH_FILES``) all go to one worker: the import
takes about 3 s, which the other workers never pay. Every other test goes to whichever worker is
free. A test outside those files that imports torch fails at
teardown, naming the list to add its file to.
"""

from __future__ import annotations

import json
import os
import sys

import pytest

from tests.golden import REPORT

MAX_WORKERS = 4  # each makes the session's runs: more would cost, not save
# the test files that import torch (in a test, never when the file is collected)
TORCH_FILES = frozenset({
    "test_bench_loop.py", "test_config.py", "test_golden.py", "test_interop.py",
    "test_model_card.py", "test_recipes.py", "test_reference.py", "test_text_workflow.py",
    "test_tokenizer.py",
})


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


def file_of(nodeid: str) -> str:
    """``tests/test_x.py::test_y[z]`` -> ``test_x.py``."""
    return nodeid.split("::", 1)[0].rsplit("/", 1)[-1]


def torch_imported_outside_its_files(nodeid: str, before: bool) -> str | None:
    """The failure of a test that imported torch though its file is not in ``TORCH_FILES``."""
    if before or "torch" not in sys.modules or file_of(nodeid) in TORCH_FILES:
        return None
    return (f"{nodeid} imported torch: add {file_of(nodeid)} to TORCH_FILES in tests/workers.py, "
            "so that its tests run on the worker that imports it")


class Scheduler:
    """pytest-xdist's hook that chooses how tests are spread (``--dist load``, its default)."""

    def pytest_xdist_make_scheduler(self, config: pytest.Config, log):
        if config.getvalue("dist") != "load":
            return None
        from tests.scheduling import TorchOnOneWorker  # pytest-xdist's own classes

        return TorchOnOneWorker(config, log)
