"""How the tests run, and fixtures shared by the test files.

- Where pytest-xdist is installed (the test extra), the fast set (``-m "not slow"``) runs on
  worker processes (``tests.workers``).
- Runs made once per session through the Python API (each test that changes one works on a
  copy).
- After the tests, the largest relative difference per named tensor against transformers
  (gathered from every worker).
"""

from __future__ import annotations

import gc
import logging
import shutil
import sys
from pathlib import Path

import pytest

import bert
from bert.workflow.layout import Layout
from tests import workers
from tests.golden import REPORT
from tests.workflow import API_STAGES, make_run, tiny

# the run of the views' tests: 2 layers of 2 heads, some examples padded
VIEWS = tiny(model={"num_layers": 2}, data={"short_sequence_probability": 0.5})


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads its options
def pytest_cmdline_main(config) -> None:
    if workers.installed(config):
        workers.choose(config)


def pytest_configure(config) -> None:
    if workers.installed(config):
        config.pluginmanager.register(workers.GoldenReport(), "bert-golden-report")
        config.pluginmanager.register(workers.Scheduler(), "bert-scheduler")


def pytest_unconfigure(config) -> None:
    """No garbage collection at exit: the interpreter's last one, which would follow, takes about
    1 s in a process that imported transformers (0.2 s frozen), and the process ends anyway."""
    gc.freeze()


@pytest.fixture(autouse=True)
def torch_only_where_declared(request):
    """A test that imports torch is in one of ``workers.TORCH_FILES``."""
    before = "torch" in sys.modules
    yield
    failure = workers.torch_imported_outside_its_files(request.node.nodeid, before)
    if failure:
        pytest.fail(failure)


@pytest.fixture(autouse=True, scope="session")
def commands_named_as_under_python_m_bert():
    """A command run in this process (``main([...])``) names itself in its messages as it does
    under ``python -m bert``, whatever started the tests (``python -m pytest``, ``pytest``, a
    profiler, a worker process)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", [str(Path(bert.__file__).with_name("__main__.py")),
                                    *sys.argv[1:]])
        yield


@pytest.fixture(autouse=True)
def package_logger_as_it_was():
    """The package's logger as before the test: a stage run in this process (``main([...])``)
    sets up its handlers, whose streams pytest closes after the test."""
    logger = logging.getLogger("bert")
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    yield
    for handler in list(logger.handlers):
        if handler not in handlers:
            logger.removeHandler(handler)
            handler.close()
    logger.setLevel(level)
    logger.propagate = propagate


@pytest.fixture(scope="session")
def tiny_project(tmp_path_factory) -> Path:
    """A project folder with the default run of the tiny parameters made to its results
    (never changed: copy it with ``project``)."""
    folder = tmp_path_factory.mktemp("tiny")
    make_run(folder, tiny())
    return folder


@pytest.fixture
def project(tiny_project, tmp_path, monkeypatch) -> Path:
    """A copy of ``tiny_project``, the current folder for the duration of the test."""
    folder = tmp_path / "project"
    shutil.copytree(tiny_project, folder, symlinks=True)
    monkeypatch.chdir(folder)
    return folder


@pytest.fixture(scope="session")
def views_run(tmp_path_factory) -> Layout:
    """A trained and evaluated run of ``VIEWS`` (never changed: copy its folder to change
    it)."""
    return make_run(tmp_path_factory.mktemp("views"), VIEWS,
                    ("data", "init", "train", "evaluate"))


@pytest.fixture(scope="session")
def text_project(tmp_path_factory) -> Path:
    """A project folder with a run on a small text corpus, trained and exported (never
    changed)."""
    pytest.importorskip("tokenizers", reason="text data needs pip install -e '.[text]'")
    pytest.importorskip("safetensors", reason="the export needs pip install -e '.[interop]'")
    from tests.textcorpus import TEXT_RUN, write_corpus

    folder = tmp_path_factory.mktemp("text")
    write_corpus(folder / "corpus")
    make_run(folder, TEXT_RUN, (*API_STAGES, "export"))
    return folder


def pytest_terminal_summary(terminalreporter) -> None:
    if not REPORT:
        return
    labels = sorted(REPORT)
    names = sorted({name for differences in REPORT.values() for name in differences})
    terminalreporter.write_sep("-", "largest relative difference to transformers, per tensor")
    width = max(len(name) for name in names)
    terminalreporter.write_line(f"{'tensor':<{width}}  " + "  ".join(f"{x:>16}" for x in labels))
    for name in names:
        cells = [f"{REPORT[x][name]:16.2e}" if name in REPORT[x] else f"{'-':>16}" for x in labels]
        terminalreporter.write_line(f"{name:<{width}}  " + "  ".join(cells))
    worst = "  ".join(f"{x}: {max(REPORT[x].values()):.2e}" for x in labels)
    terminalreporter.write_line(f"worst: {worst}")
