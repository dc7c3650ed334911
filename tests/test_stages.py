"""The stage records: each names a real function, real files, real parameters."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from bert.workflow.layout import Layout
from bert.workflow.params import Params
from bert.workflow.stages import PICTURES, STAGES, stage
from bert.workflow.tasks import load

RECORDS = [*STAGES, *PICTURES]


def test_names_are_unique_and_found():
    assert len({s.name for s in STAGES}) == len(STAGES)
    assert len({p.name for p in PICTURES}) == len(PICTURES)
    assert all(stage(s.name) is s for s in STAGES)
    assert [s.name for s in STAGES if s.in_default_run] == [
        "data", "init", "train", "evaluate", "report", "plots"]


@pytest.mark.parametrize("record", RECORDS, ids=[r.name for r in RECORDS])
def test_functions_exist_and_take_what_the_runner_gives(record):
    if record.parts:
        assert not record.function
        return
    function = load(record.function)
    arguments = list(inspect.signature(function).parameters)
    if record in PICTURES:  # input paths, then output paths
        assert len(arguments) >= len(record.inputs) + len(record.outputs)
    else:
        assert arguments[:2] == ["params", "layout"]
    if record.show:
        assert len(inspect.signature(load(record.show)).parameters) == 1


@pytest.mark.parametrize("record", RECORDS, ids=[r.name for r in RECORDS])
def test_files_and_parameters_are_real(record, tmp_path):
    layout, params = Layout(tmp_path), Params()
    for path in layout.files(record.inputs + record.outputs, params):
        assert path.is_relative_to(tmp_path)
    subset = params.subset(record.reads)
    assert set(subset) <= {f.name for f in dataclasses.fields(Params)} - {"logging"}


def test_what_the_stages_read():
    params = Params()
    assert params.subset(stage("init").reads) == {
        "data": {"sequence_length": 32, "vocab_size": 64}, "model": params.model.to_dict(),
        "training": {"dtype": "float32"}}
    assert "results_file" not in params.subset(stage("evaluate").reads)["evaluation"]
    assert set(params.subset(stage("report").reads)) == {"data", "model", "training",
                                                         "evaluation"}
    assert params.subset(stage("export").reads) == params.subset(stage("report").reads)
