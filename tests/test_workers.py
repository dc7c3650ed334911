"""How the fast tests are spread over worker processes (tests/workers.py, tests/scheduling.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests import workers


def test_a_test_is_known_by_its_file():
    assert workers.file_of("tests/test_golden.py::test_matches[float32-fast]") == "test_golden.py"
    assert workers.file_of("test_x.py::Case::test_y") == "test_x.py"


def test_every_file_said_to_import_torch_is_a_test_file():
    here = Path(__file__).parent
    assert all((here / name).is_file() for name in workers.TORCH_FILES)


def test_the_tests_that_import_torch_are_one_unit_of_work_and_every_other_test_its_own():
    pytest.importorskip("xdist", reason="needs pytest-xdist (the test extra)")
    from tests.scheduling import TORCH_GROUP, TorchOnOneWorker

    scheduler = object.__new__(TorchOnOneWorker)  # the split reads nothing of its state
    torch_tests = ["tests/test_golden.py::test_matches[float32-fast]",
                   "tests/test_reference.py::test_fixture_meets_its_design"]
    assert {scheduler._split_scope(nodeid) for nodeid in torch_tests} == {TORCH_GROUP}
    other = "tests/test_model.py::test_model_gradient_matches_finite_differences[0.1]"
    assert scheduler._split_scope(other) == other


def test_a_test_that_imports_torch_outside_those_files_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", sys.modules.get("torch", object()))
    failure = workers.torch_imported_outside_its_files("tests/test_model.py::test_x", False)
    assert failure == ("tests/test_model.py::test_x imported torch: add test_model.py to "
                       "TORCH_FILES in tests/workers.py, so that its tests run on the worker "
                       "that imports it")
    assert workers.torch_imported_outside_its_files("tests/test_model.py::test_x", True) is None
    assert workers.torch_imported_outside_its_files("tests/test_golden.py::test_x", False) is None
    monkeypatch.delitem(sys.modules, "torch")
    assert workers.torch_imported_outside_its_files("tests/test_model.py::test_x", False) is None
