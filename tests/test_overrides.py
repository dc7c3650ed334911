"""Parameters on the command line (``bert.workflow.overrides``): every variable checked, values
read as YAML, and the name of the run they make."""

from __future__ import annotations

import pytest

from bert.errors import ParamsError
from bert.workflow.overrides import (
    apply_overrides,
    check_run_name,
    parameter_keys,
    run_name,
    split_variables,
)


def test_variables_split_into_the_known_ones_and_parameters():
    known, overrides = split_variables({"params": "p.yaml", "training.epochs": "3",
                                        "run": "mine"})
    assert known == {"params": "p.yaml", "run": "mine"}
    assert overrides == {"training.epochs": "3"}
    assert "training.learning_rate" in parameter_keys()


@pytest.mark.parametrize(("variable", "expected"), [
    ("training.learning_rte", "training.learning_rte=1: 'training.learning_rte' is not a known "
     "parameter; did you mean 'training.learning_rate'?"),
    ("parms", "parms=1: 'parms' is not a known doit variable; did you mean 'params'?"),
    ("xyzzy", "the variables are params, sweep, run, or a parameter as section.key"),
    ("xyzzy.plugh", "the parameters are listed in docs/parameters.md"),
])
def test_an_unknown_variable_is_never_ignored(variable, expected):
    with pytest.raises(ParamsError) as info:
        split_variables({variable: "1"})
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_values_are_read_as_yaml_into_their_section():
    mapping = {"training": {"epochs": 2}, "model": None}
    merged = apply_overrides(mapping, {"training.learning_rate": "2e-3", "model.num_layers": "3",
                                       "data.text_files": "[a.txt, b.txt]",
                                       "training.bf16": "true"}, "params.yaml")
    assert merged == {"training": {"epochs": 2, "learning_rate": "2e-3", "bf16": True},
                      "model": {"num_layers": 3}, "data": {"text_files": ["a.txt", "b.txt"]}}
    assert mapping == {"training": {"epochs": 2}, "model": None}  # the file's, untouched


def test_a_run_is_named_after_its_file_and_what_differs():
    assert run_name("params.yaml", {}) == "params"
    assert run_name("configs/text.yaml", {}) == "text"
    assert run_name("params.yaml", {"training.learning_rate": "0.002"}) == (
        "params+learning_rate@0.002")
    # keys sorted; a last part that several sections share keeps its section
    assert run_name("params.yaml", {"training.random_seed": "3", "model.num_layers": "2"}) == (
        "params+num_layers@2+training.random_seed@3")
    assert run_name("params.yaml", {"data.text_files": "[a/*.txt]"}) == (
        "params+text_files@_a__.txt_")  # what a folder name cannot hold becomes _
    long = run_name("p.yaml", {"training.learning_rate": "1" * 200})
    assert len(long) <= 120 and check_run_name(long) == long
    assert long != run_name("p.yaml", {"training.learning_rate": "1" * 199})


@pytest.mark.parametrize("name", ["../elsewhere", "a/b", "", ".hidden", "x" * 121])
def test_a_run_name_that_cannot_be_a_folder_is_refused(name):
    with pytest.raises(ParamsError, match="a run's name is 1 to 120 letters, digits and"):
        check_run_name(name)
