"""Progress that fits where it is shown: a bar on a terminal (training, evaluation, the text data
stage), nothing in a file or a pipe, and log lines that never share a line with a bar."""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from bert.data.datasets import TEXT_PHASES, make_datasets
from bert.workflow.evaluate import evaluate_model
from bert.workflow.init import initialize
from bert.workflow.layout import Layout
from bert.workflow.progress import phase_bar, progress_bar
from bert.workflow.train import train
from tests.test_text import PARAMS, make_tiny_run
from tests.workflow import tiny, write_params

ROOT = Path(__file__).resolve().parents[1]


class Terminal(io.StringIO):
    """A stderr that says it is a terminal, and keeps what is written to it."""

    def isatty(self) -> bool:
        return True


def terminal(monkeypatch, caplog) -> Terminal:
    """stderr as a terminal, with the package's log lines on it as ``INFO message``. (Called in
    the test itself: pytest sets its own stderr again after the fixtures.)"""
    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    logger = logging.getLogger("bert")
    handler = logging.StreamHandler(screen)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    monkeypatch.setattr(logger, "handlers", [handler])
    monkeypatch.setattr(logger, "propagate", False)
    caplog.set_level(logging.INFO, logger="bert")
    return screen


def lines_after_a_bar(output: str, message: str) -> list[str]:
    """What precedes ``message`` on its line, each time it is written: the text since the last
    line feed or carriage return (a bar redraws its line after a carriage return)."""
    return [re.split(r"[\r\n]", output[:match.start()])[-1]
            for match in re.finditer(re.escape(message), output)]


def test_a_bar_only_on_a_terminal_and_only_when_asked(monkeypatch, caplog):
    screen = terminal(monkeypatch, caplog)
    with progress_bar(True, total=3, unit="step") as bar:
        bar.update(3)
    assert "3/3" in screen.getvalue() and "\r" in screen.getvalue()
    shown = screen.getvalue()
    with progress_bar(False, total=3) as bar:  # logging.progress_bar: false
        assert bar.disable
        bar.update(3)
    assert screen.getvalue() == shown
    pipe = io.StringIO()  # a file or a pipe: isatty() is False
    monkeypatch.setattr(sys, "stderr", pipe)
    with progress_bar(True, total=3) as bar:
        assert bar.disable
        bar.update(3)
    assert pipe.getvalue() == ""


def test_log_lines_go_above_the_bar_not_into_it(monkeypatch, caplog):
    screen = terminal(monkeypatch, caplog)
    log = logging.getLogger("bert.workflow.train")
    with progress_bar(True, total=4, unit="step", mininterval=0) as bar:
        for step in range(4):
            bar.update(1)
            log.info("epoch %d: done", step)
    output = screen.getvalue()
    assert "step/s" in output
    assert lines_after_a_bar(output, "INFO epoch") == [""] * 4


def test_a_phase_bar_moves_through_its_phases_and_ends_full(monkeypatch, caplog):
    screen = terminal(monkeypatch, caplog)
    with phase_bar(True, "data", ("reading", "writing")) as begin:
        begin("reading")
        begin("writing")
    assert "data: 100%" in screen.getvalue() and "2/2" in screen.getvalue()
    with pytest.raises(ValueError):  # an unknown phase is a mistake, not a silent no-op
        with phase_bar(True, "data", ("reading",)) as begin:
            begin("dreaming")


def test_the_text_data_stage_reports_its_phases_in_order(tmp_path):
    pytest.importorskip("tokenizers", reason="text data needs pip install -e '.[text]'")
    from tests.textcorpus import text_params, write_corpus

    write_corpus(tmp_path / "corpus")
    seen = []
    make_datasets(text_params(), tmp_path / "data", tmp_path, seen.append)
    assert seen == list(TEXT_PHASES)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Layout:
    return make_tiny_run(tmp_path_factory.mktemp("run"))


def test_evaluate_shows_a_bar_over_every_example_it_scores(tiny_run, monkeypatch, caplog):
    screen = terminal(monkeypatch, caplog)
    asked = replace(PARAMS, logging=replace(PARAMS.logging, progress_bar=True))
    metrics = evaluate_model(asked, tiny_run)
    scored = metrics["test"]["num_examples"] + metrics["train"]["num_examples"] + sum(
        probe["scores"]["num_examples"] for probe in metrics["probes"].values())
    assert f"{scored}/{scored}" in screen.getvalue() and "evaluate:" in screen.getvalue()


def test_training_on_a_terminal_shows_a_bar_and_its_epoch_lines_apart(tmp_path, monkeypatch,
                                                                     caplog):
    screen = terminal(monkeypatch, caplog)
    layout = Layout(tmp_path)
    make_datasets(PARAMS.data, layout.data_dir)
    initialize(PARAMS, layout)
    train(PARAMS, layout, progress=True)
    output = screen.getvalue()
    assert "step/s" in output and "12/12" in output
    assert lines_after_a_bar(output, "INFO epoch") == ["", ""]  # 2 epochs, each on its line


# --- the whole workflow, as a user runs it -------------------------------------------------------


def project(folder: Path) -> Path:
    """A tiny project that asks for progress bars (as params.yaml does by default)."""
    folder.mkdir()
    shutil.copy(ROOT / "dodo.py", folder / "dodo.py")
    write_params(folder, tiny(logging={"progress_bar": True}))
    return folder


@pytest.mark.slow
def test_doit_into_a_file_writes_no_carriage_return(tmp_path):
    """``doit > log.txt 2>&1``: one log line per epoch and no bar, not a carriage return."""
    folder = project(tmp_path / "project")
    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # as by default
    with open(folder / "log.txt", "wb") as log:
        result = subprocess.run([sys.executable, "-m", "doit"], cwd=folder, stdout=log,
                                stderr=subprocess.STDOUT, timeout=300, env=buffered)
    text = (folder / "log.txt").read_bytes().decode()
    assert result.returncode == 0, text
    assert "\r" not in text
    epochs = [line for line in text.splitlines() if "epoch" in line and "INFO" in line]
    assert [line.split(":")[0] for line in epochs] == ["INFO epoch 1", "INFO epoch 2"]
    assert "step/s" not in text and "example/s" not in text
    # doit's own lines stay in order with the stages' lines, in the one file
    ran = [line[3:] for line in text.splitlines() if line.startswith(".  ")]
    assert ran[:5] == ["data", "init", "train", "evaluate", "report"]
    assert text.index(".  train") < text.index("INFO epoch 1") < text.index(".  evaluate")


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="needs a pseudo-terminal")
def test_doit_on_a_terminal_shows_the_bars_of_train_and_evaluate(tmp_path):
    """Under doit, a stage writes to doit's own terminal, so it sees one and draws its bar."""
    import fcntl
    import pty
    import struct
    import termios

    folder = project(tmp_path / "project")
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # 120 columns
    process = subprocess.Popen([sys.executable, "-m", "doit"], cwd=folder, stdin=child,
                               stdout=child, stderr=child)
    os.close(child)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the terminal is closed: every process writing to it has ended
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main)
    assert process.wait(timeout=300) == 0
    output = b"".join(chunks).decode()
    assert "step/s" in output and "evaluate:" in output and "example/s" in output
    assert lines_after_a_bar(output, "INFO epoch") == ["", ""]
