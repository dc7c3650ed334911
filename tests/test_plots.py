"""The plots stage: each picture rendered from a tiny run as a valid PNG of the expected size
(and as an SVG on request), the same bytes twice; token labels that stay readable at any sequence
length, WordPiece text that never overlaps, every colour explained, the gradient norm, the
throughput and the epoch means over their epochs; and a clear skip (nothing written, nothing
rerun) without matplotlib.

The tests that draw whole pictures to files (every picture of a run, every format, every
sequence length) are marked slow; those of one figure's contents are not."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import shutil
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from bert.__main__ import main
from bert.core.labels import IGNORE_INDEX
from bert.data.datasets import make_datasets
from bert.data.loading import load_dataset
from bert.views.predictions import ExampleGuesses, MaskedGuess
from bert.workflow.init import initialize
from bert.workflow.layout import Layout
from bert.workflow.stages import PLOTS_MISSING
from bert.workflow.tasks import run
from tests.conftest import VIEWS
from tests.test_text import PARAMS
from tests.workflow import doit, make_project, tiny, tiny_params, write_params

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
def tiny_run(views_run) -> Layout:
    """The trained run of PARAMS (conftest.views_run)."""
    return views_run


def copy_run(run: Layout, folder: Path) -> Layout:
    """The run's project folder copied into ``folder`` (without its pictures)."""
    shutil.copytree(run.root, folder, ignore=shutil.ignore_patterns("plots"))
    return dataclasses.replace(run, root=folder)


@pytest.fixture(scope="module")
def drawn(tiny_run, tmp_path_factory) -> Layout:
    """The three pictures of a copy of the tiny run, drawn by the stage's Python API."""
    pytest.importorskip("matplotlib")
    from bert.views.plots import draw

    run = copy_run(tiny_run, tmp_path_factory.mktemp("drawn") / "project")
    assert draw(run, ["curves", "attention", "predictions"]) == [
        *run.curves_plot(), *run.attention_plot(), *run.predictions_plot()]
    return run


def figure_of(monkeypatch, picture, *args, laid_out: bool = True, **kwargs):
    """The figure the picture function ``picture`` draws, without writing its file (the slow
    tests read the files). ``laid_out``: as it is saved, every text in its place (the layout is
    made when the canvas draws, most of the picture's time); otherwise as drawn, with all its
    lines, labels and texts."""
    module = sys.modules[picture.__module__]
    figures = []
    monkeypatch.setattr(module, "save", lambda figure, *paths: figures.append(figure) or [
        Path(path) for path in paths])
    picture(*args, **kwargs)
    (figure,) = figures
    if laid_out:
        figure.canvas.draw()
    return figure


def text_boxes(figure) -> list[tuple[str, object]]:
    """Every text of a drawn figure that shows something, with its box in pixels."""
    renderer = figure.canvas.get_renderer()
    return [(text.get_text(), text.get_window_extent(renderer)) for text in figure.texts
            if text.get_visible() and text.get_text()]


@pytest.mark.slow  # draws every picture of a run to files
def test_curves_png(drawn):
    (curves,) = drawn.curves_plot()
    assert png_size(curves) == (1300, 1350)  # 13 x 13.5 inches at 100 dpi
    assert curves.stat().st_size > 20_000  # six panels of lines and text


def test_curves_show_the_gradient_norm_throughput_and_epoch_means_over_their_epochs(
        tiny_run, monkeypatch, tmp_path):
    pytest.importorskip("matplotlib")
    from bert.views.curves_plot import draw_curves

    history = json.loads(tiny_run.history.read_text())
    figure = figure_of(monkeypatch, draw_curves, tiny_run.history, tiny_run.test_data,
                       tmp_path / "curves.png", laid_out=False)
    panels = {ax.get_title(): ax for ax in figure.axes if ax.get_title()}
    norm = panels["Gradient norm, before clipping"]
    (line,) = [line for line in norm.get_lines() if "mean of" in line.get_label()
               or line.get_label() == "training batch"]
    np.testing.assert_allclose(line.get_ydata(), history["steps"]["grad_norm"], rtol=1e-12)
    batches = history["batches_per_epoch"]
    for title, key in (("MLM loss", "train_mlm_loss"), ("NSP loss", "train_nsp_loss"),
                       ("Training throughput", "tokens_per_second")):
        (means,) = [c for c in panels[title].collections
                    if c.get_label().endswith("mean over each epoch")]
        # one segment per epoch, from the step before its first to its last, at its mean
        expected = [[(r["step"] - batches, r[key]), (r["step"], r[key])]
                    for r in history["epochs"]]
        np.testing.assert_array_equal(np.array(means.get_segments()), expected)


@pytest.mark.parametrize("task", ["sop", "none"])
def test_curves_show_the_sentence_task_of_the_run(task, monkeypatch, tmp_path):
    pytest.importorskip("matplotlib")
    from bert.views.curves_plot import draw_curves
    from bert.workflow.train import train

    params = tiny_params(data={"sentence_task": task}, training={"epochs": 1})
    layout = Layout(tmp_path)
    make_datasets(params.data, layout.data_dir)
    initialize(params, layout)
    train(params, layout, progress=False)
    figure = figure_of(monkeypatch, draw_curves, layout.history, layout.test_data,
                       tmp_path / "curves.png", laid_out=False)
    panels = {ax.get_title(): ax for ax in figure.axes if ax.get_title()}
    labels = [line.get_label() for ax in figure.axes for line in ax.get_lines()]
    assert "NSP loss" not in panels and not [label for label in labels if "NSP" in label]
    accuracy = panels["Test accuracy at the end of each epoch"]
    shown = [line.get_label() for line in accuracy.get_lines()]
    if task == "sop":
        record = json.loads(layout.history.read_text())["epochs"][0]
        (test,) = [line for line in panels["SOP loss"].get_lines()
                   if line.get_label() == "test set, end of epoch"]
        assert list(test.get_ydata()) == [record["test_sop_loss"]]
        assert "SOP, test set" in shown and "topics only SOP 0.500" in shown
    else:
        assert "SOP loss" not in panels and shown == ["MLM, test set"]
        notes = [text.get_text() for ax in figure.axes for text in ax.texts]
        assert any(note.startswith("no sentence task (data.sentence_task: none)")
                   for note in notes)




@pytest.mark.slow  # draws every picture of a run to files
def test_attention_png(drawn):
    # 2 heads x 2 layers of 4-inch panels (16 tokens at 1/8 inch are less), 1/4 inch between
    # columns and 3/8 between rows, 1/2 inch for each axis name, 1 for the title, 1.25 for the
    # colour bar, and 3/8 for the longest label ("[MASK]"), at 100 dpi
    (attention,) = drawn.attention_plot()
    assert png_size(attention) == (1037, 1025)
    assert attention.stat().st_size > 20_000


@pytest.mark.slow  # a whole attention picture at each length
@pytest.mark.parametrize("length", [32, 64, 128, 512])
def test_attention_labels_stay_8_pixels_apart_and_the_picture_bounded(length, tmp_path,
                                                                       monkeypatch):
    pytest.importorskip("matplotlib")
    from bert.views.attention_plot import ATTENTION_WINDOW, draw_attention
    from bert.views.figures import DPI

    params = tiny_params(model={"num_layers": 2},
                         data={"sequence_length": length, "short_sequence_probability": 0.0})
    layout = Layout(tmp_path)
    make_datasets(params.data, layout.data_dir)
    initialize(params, layout)
    figure = figure_of(monkeypatch, draw_attention, layout.init_weights, layout.test_data,
                       tmp_path / "attention.png")
    renderer = figure.canvas.get_renderer()
    shown = min(length, ATTENTION_WINDOW)
    axes_with_labels = 0
    for ax in (ax for ax in figure.axes if ax.images):  # the panels, not the colour bar
        for axis, across in ((ax.xaxis, "width"), (ax.yaxis, "height")):
            labels = [label for label in axis.get_ticklabels() if label.get_visible()]
            if not labels:  # an inner panel shares its neighbour's labels
                continue
            axes_with_labels += 1
            assert len(labels) == shown
            boxes = [label.get_window_extent(renderer) for label in labels]
            for label, box in zip(labels, boxes, strict=True):
                assert label.get_fontsize() * DPI / 72 >= 8  # pixels per em
                assert getattr(box, across) >= 8  # as rendered, across the axis
                assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= figure.bbox.x1
            for box, following in itertools.pairwise(boxes):
                assert not box.overlaps(following)
    assert axes_with_labels == 4  # 2 layers of y labels, 2 heads of x labels
    assert max(figure.canvas.get_width_height()) <= 2000  # a window, not a poster
    title = figure._suptitle.get_text()
    assert (f"tokens 0–{ATTENTION_WINDOW - 1} shown" in title) == (length > ATTENTION_WINDOW)


def wordpiece_examples() -> list[ExampleGuesses]:
    """Two examples of WordPiece text: pieces that continue words, long words, punctuation,
    and guesses as long as the tokens."""
    pieces = ["the", "subprocess", "##es", "(", "reorganisation", ")", "unbelievable", "##ing",
              ".", "[MASK]", "os", ",", "implementation", "##ally", "a", "'", "characteristically"]
    tokens = ["[CLS]", *itertools.islice(itertools.cycle(pieces), 61), "[SEP]", "[SEP]"]
    guesses = [MaskedGuess(position, "[MASK]" if position % 2 else tokens[position],
                           "reorganisation" if position % 3 else "subprocess",
                           [("subprocess", 0.045), ("the", 0.036), ("characteristically", 0.03)])
               for position in (1, 4, 9, 18, 33, 60)]
    return [ExampleGuesses(3, tokens, 0, 0.25, guesses),
            ExampleGuesses(8, tokens[:40], 1, 0.61, guesses[:3])]


@pytest.fixture(scope="module", params=["wordpiece", "tiny run"])
def predictions(request, tiny_run, tmp_path_factory):
    """predictions.png's figure, drawn and laid out, of WordPiece text or of the tiny run
    (never changed)."""
    pytest.importorskip("matplotlib")
    from bert.views.predictions_plot import draw_predictions, predictions_figure

    if request.param == "tiny run":
        with pytest.MonkeyPatch.context() as monkeypatch:
            return figure_of(monkeypatch, draw_predictions, tiny_run.model_weights,
                             tiny_run.test_data,
                             tmp_path_factory.mktemp("predictions") / "predictions.png")
    figure = predictions_figure(wordpiece_examples())
    figure.canvas.draw()
    return figure


def test_predictions_text_never_overlaps_and_stays_on_the_picture(predictions):
    boxes = text_boxes(predictions)
    assert len(boxes) > 100
    for (text, box), (other, other_box) in itertools.combinations(boxes, 2):
        assert not box.overlaps(other_box), f"{text!r} overlaps {other!r}"
    page = predictions.bbox
    for text, box in boxes:
        assert page.x0 < box.x0 and box.x1 < page.x1 and page.y0 < box.y0 and box.y1 < page.y1, (
            f"{text!r} leaves the picture")


def test_every_colour_of_predictions_is_explained_in_its_key(predictions):
    from matplotlib.colors import to_hex

    colours = {to_hex(text.get_color()) for text in predictions.texts}
    named = {text.get_text(): to_hex(text.get_color()) for text in predictions.texts
             if text.get_text() in ("red:", "green:", "black:", "grey:")}
    assert len(named) == 4  # each name in its own colour
    assert colours == set(named.values())


@pytest.mark.slow  # draws every picture of a run to files
def test_predictions_png_has_a_row_per_masked_position(drawn, monkeypatch, tmp_path):
    from bert.views.predictions_plot import draw_predictions

    arrays = load_dataset(drawn.test_data)
    masked = (arrays["mlm_labels"] != IGNORE_INDEX).sum(axis=1)
    shown = np.flatnonzero(masked)[:4]  # the first four examples with a masked position
    assert len(shown) == 4
    figure = figure_of(monkeypatch, draw_predictions, drawn.model_weights, drawn.test_data,
                       tmp_path / "predictions.png")
    # the position column is right-aligned: a heading per example, then a row per position
    numbers = [t.get_text() for t in figure.texts if t.get_horizontalalignment() == "right"]
    assert numbers.count("pos") == 4 and len(numbers) == 4 + masked[shown].sum()
    (predictions,) = drawn.predictions_plot()
    width, height = png_size(predictions)
    assert width == 1100 and height > 300
    assert predictions.stat().st_size > 10_000


@pytest.mark.slow  # draws every picture of a run to files
def test_pictures_carry_no_version_or_time(drawn):
    for path in (*drawn.curves_plot(), *drawn.attention_plot(), *drawn.predictions_plot()):
        kinds = {kind for kind, _ in png_chunks(path)}
        assert not kinds & {b"tEXt", b"iTXt", b"zTXt", b"tIME"}, path


@pytest.mark.slow  # draws every picture of a run to files
def test_svg_on_request_the_same_bytes_twice(drawn, tmp_path):
    from bert.views.plots import draw

    layout = copy_run(drawn, tmp_path / "project")
    params = tiny_params(plots={"formats": ["png", "svg"]})
    pictures = ["curves", "attention", "predictions"]
    paths = draw(layout, pictures, params)
    assert [p.relative_to(layout.plots).as_posix() for p in paths] == [
        f"{name}.{kind}" for name in pictures for kind in ("png", "svg")]
    first = {path: path.read_bytes() for path in paths}
    assert draw(layout, pictures, params) == paths
    for path, data in first.items():
        assert path.read_bytes() == data, f"{path.name} differs from run to run"
        if path.suffix == ".svg":
            assert data.startswith(b"<?xml") and b"<svg" in data
            assert b"dc:date" not in data and b"Matplotlib v" not in data
        else:  # the same PNG as when it is drawn alone
            assert data == (drawn.plots / path.name).read_bytes()


@pytest.mark.slow  # draws every picture of a run to files
def test_the_command_draws_the_picture_asked_for_with_the_same_bytes(drawn, monkeypatch,
                                                                     tmp_path):
    layout = copy_run(drawn, tmp_path / "project")
    monkeypatch.chdir(layout.root)
    params = str(write_params(layout.root, VIEWS, "views.yaml"))
    assert main(["plots", "predictions", "--params", params, "--run", "params"]) == 0
    assert layout.predictions_plot()[0].read_bytes() == drawn.predictions_plot()[0].read_bytes()
    assert not layout.curves_plot()[0].exists() and not layout.attention_plot()[0].exists()


def test_without_matplotlib_the_stage_says_so_and_writes_nothing(tiny_run, monkeypatch,
                                                                  capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now fails
    layout = Layout(tiny_run.root / "elsewhere")
    run("plots", PARAMS, layout)
    assert capsys.readouterr().out == PLOTS_MISSING + "\n"
    assert not layout.plots.exists()


@pytest.mark.slow
def test_without_matplotlib_doit_skips_once_and_then_is_up_to_date(tmp_path):
    """The doit task says why nothing is drawn, succeeds, and does not run again."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text('import sys\nsys.modules["matplotlib"] = None\n')
    folder = make_project(tmp_path / "project", tiny())
    env = {**os.environ, "PYTHONPATH": str(blocker)}
    first = doit(folder, "plots", env=env)
    assert ".  plots:params\n" in first.stdout and PLOTS_MISSING in first.stdout
    assert not (folder / "artifacts/runs/params/plots").exists()  # (the log file is written)
    second = doit(folder, "plots", env=env)
    assert "-- plots:params" in second.stdout and PLOTS_MISSING not in second.stdout
