"""The plots stage: each picture rendered from a tiny run as a valid PNG of the expected size,
the same bytes twice, and a clear skip (nothing written, nothing rerun) without matplotlib."""

from __future__ import annotations

import math
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from bert.__main__ import main
from bert.core.labels import IGNORE_INDEX
from bert.data.datasets import load_dataset
from bert.workflow.layout import Layout
from bert.workflow.stages import PLOTS_MISSING
from bert.workflow.tasks import run
from tests.test_text import PARAMS, make_tiny_run
from tests.workflow import tiny, write_params

ROOT = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_chunks(path: Path) -> list[tuple[bytes, bytes]]:
    """The (type, data) chunks of a PNG file, each checked against its CRC."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    chunks, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset:offset + 4])
        kind, body = data[offset + 4:offset + 8], data[offset + 8:offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length:offset + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"{path}: bad CRC in chunk {kind}"
        chunks.append((kind, body))
        offset += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    return chunks


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) in pixels, from the IHDR chunk."""
    return struct.unpack(">II", png_chunks(path)[0][1][:8])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Layout:
    return make_tiny_run(tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="module")
def drawn(tiny_run) -> Layout:
    """The three pictures of the tiny run, drawn by the stage's Python API."""
    pytest.importorskip("matplotlib")
    from bert.views.plots import draw

    assert draw(tiny_run, ["curves", "attention", "predictions"]) == [
        tiny_run.curves_plot, tiny_run.attention_plot, tiny_run.predictions_plot]
    return tiny_run


def test_curves_png(drawn):
    assert png_size(drawn.curves_plot) == (1300, 900)  # 13 x 9 inches at 100 dpi
    assert drawn.curves_plot.stat().st_size > 20_000  # four panels of lines and text


def test_attention_png(drawn):
    # 2 heads x 2 layers of 4-inch panels, plus 1.5 inches for labels, at 100 dpi
    assert png_size(drawn.attention_plot) == (950, 950)
    assert drawn.attention_plot.stat().st_size > 20_000


def test_predictions_png_has_a_line_per_masked_position(drawn):
    arrays = load_dataset(drawn.test_data)
    masked = (arrays["mlm_labels"] != IGNORE_INDEX).sum(axis=1)
    shown = np.flatnonzero(masked)[:4]  # the first four examples with a masked position
    assert len(shown) == 4
    # a title; per example its NSP line, its input (16 tokens a line), a header, a row per
    # masked position and a blank line; 0.1875 inch a line, 0.25 inch above and below
    lines = 1 + sum(3 + math.ceil(arrays["attention_mask"][i].sum() / 16) + masked[i]
                    for i in shown)
    assert png_size(drawn.predictions_plot) == (1100, int((0.5 + 0.1875 * lines) * 100))
    assert drawn.predictions_plot.stat().st_size > 10_000


def test_pngs_carry_no_version_or_time(drawn):
    for path in (drawn.curves_plot, drawn.attention_plot, drawn.predictions_plot):
        kinds = {kind for kind, _ in png_chunks(path)}
        assert not kinds & {b"tEXt", b"iTXt", b"zTXt", b"tIME"}, path


def test_the_command_draws_the_picture_asked_for_with_the_same_bytes(drawn, monkeypatch,
                                                                     tmp_path):
    folder = tmp_path / "project"
    shutil.copytree(drawn.root, folder, ignore=shutil.ignore_patterns("plots"))
    layout = Layout(folder)
    monkeypatch.chdir(folder)
    params = str(write_params(folder, tiny(model={"num_layers": 2})))
    assert main(["plots", "predictions", "--params", params]) == 0
    assert layout.predictions_plot.read_bytes() == drawn.predictions_plot.read_bytes()
    assert not layout.curves_plot.exists() and not layout.attention_plot.exists()


def test_without_matplotlib_the_stage_says_so_and_writes_nothing(tiny_run, monkeypatch,
                                                                  capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now fails
    layout = Layout(tiny_run.root / "elsewhere")
    run("plots", PARAMS, layout)
    assert capsys.readouterr().out == PLOTS_MISSING + "\n"
    assert not layout.plots.exists()


def test_without_matplotlib_doit_skips_once_and_then_is_up_to_date(tmp_path):
    """The doit task says why nothing is drawn, succeeds, and does not run again."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text('import sys\nsys.modules["matplotlib"] = None\n')
    folder = tmp_path / "project"
    folder.mkdir()
    shutil.copy(ROOT / "dodo.py", folder / "dodo.py")
    write_params(folder, tiny())

    def doit() -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "-m", "doit", "plots"], cwd=folder, capture_output=True,
            text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(blocker)})
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    first = doit()
    assert ".  plots\n" in first.stdout and PLOTS_MISSING in first.stdout
    assert not (folder / "artifacts/plots").exists()  # (the log file is written)
    second = doit()
    assert "-- plots" in second.stdout and PLOTS_MISSING not in second.stdout
