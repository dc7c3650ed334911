"""Sweep files (``bert.workflow.sweep``): named variants and grids of one base parameters file,
checked like the command line, each run named after its sweep and what it changes."""

from __future__ import annotations

import pytest
import yaml

from bert.errors import ParamsError
from bert.workflow.sweep import read_sweep


def sweep_file(tmp_path, document) -> object:
    path = tmp_path / "lr.yaml"
    path.write_text(yaml.safe_dump(document) if isinstance(document, dict) else document)
    return path


def test_variants_and_a_grid_in_order(tmp_path):
    sweep = read_sweep(sweep_file(tmp_path, {
        "base": "other.yaml", "threads": 2,
        "variants": {"shipped": {}, "slow": {"training.learning_rate": 0.001}},
        "grid": {"training.learning_rate": [0.002, 0.006],
                 "training.nsp_loss_weight": [0.25, 0.5]}}))
    assert (str(sweep.base), sweep.threads, sweep.name) == ("other.yaml", 2, "lr")
    assert [v.name for v in sweep.variants] == [
        "lr.shipped", "lr.slow",
        "lr.learning_rate@0.002+nsp_loss_weight@0.25", "lr.learning_rate@0.002+nsp_loss_weight@0.5",
        "lr.learning_rate@0.006+nsp_loss_weight@0.25", "lr.learning_rate@0.006+nsp_loss_weight@0.5"]
    assert sweep.variants[1].overrides == {"training.learning_rate": "0.001"}
    assert sweep.variants[2].overrides == {"training.learning_rate": "0.002",
                                           "training.nsp_loss_weight": "0.25"}


def test_the_defaults_study_of_the_repository_reads():
    sweep = read_sweep("sweeps/defaults.yaml")
    assert str(sweep.base) == "params.yaml" and sweep.threads == 1 and sweep.variants


@pytest.mark.parametrize(("document", "expected"), [
    ({"variants": {"a": {"training.learning_rte": 1}}}, "training.learning_rte=1: "
     "'training.learning_rte' is not a known parameter; did you mean 'training.learning_rate'?"),
    ({"variant": {"a": {}}}, "'variant' is not a sweep key; the keys are base, threads, "
     "variants, grid"),
    ({"base": "params.yaml"}, "names no variant; add variants: or grid:"),
    ({"threads": -1, "variants": {"a": {}}}, "threads is -1; set it to 0 (one per CPU) or more"),
    ({"grid": {"training.epochs": []}}, "grid must be a mapping of section.key: [values...]"),
    ({"variants": {"a": {"run": "x"}}}, "run is a doit variable, not a parameter"),
    ({"variants": {"a/b": {}}}, "a run's name is 1 to 120 letters"),
    ("- a list\n", "a sweep file is a mapping with base, variants and/or grid"),
])
def test_a_bad_sweep_file_is_one_line_naming_it(tmp_path, document, expected):
    path = sweep_file(tmp_path, document)
    with pytest.raises(ParamsError) as info:
        read_sweep(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and expected in message and "\n" not in message
