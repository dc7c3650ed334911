"""Running a stage from its record, and the fingerprint of the code a stage runs."""

from __future__ import annotations

import ast
import os

import pytest

from bert.workflow import tasks
from bert.workflow.layout import Layout
from bert.workflow.params import Params
from bert.workflow.stages import Stage, stage

MODULE = '''"""A module."""

import math

LIMIT = 3  # a comment


def f(x):
    """A docstring."""
    return math.sqrt(x) * LIMIT
'''


def test_comments_docstrings_and_layout_leave_the_code_hash_unchanged():
    same = [MODULE.replace("# a comment", "# another comment"),
            MODULE.replace('"""A docstring."""', '"""Another docstring,\n    on two lines."""'),
            MODULE.replace('"""A module."""', '"""Another module docstring."""'),
            MODULE.replace("return math.sqrt(x) * LIMIT", "return (math.sqrt(x)\n  * LIMIT)"),
            MODULE.replace('    """A docstring."""\n', "")]
    assert {tasks.code_hash(text) for text in same} == {tasks.code_hash(MODULE)}


@pytest.mark.parametrize("edit", [("LIMIT = 3", "LIMIT = 4"), ("sqrt", "log"),
                                  ("import math", "import math\nimport os")])
def test_any_other_edit_changes_the_code_hash(edit):
    assert tasks.code_hash(MODULE.replace(*edit)) != tasks.code_hash(MODULE)


def test_the_imports_are_every_statement_but_those_only_type_checkers_run():
    tree = ast.parse("""
import a.b
from c import d, e
from . import relative
def f():
    from g.h import i
if TYPE_CHECKING:
    import only_for_types
else:
    import at_run_time
if typing.TYPE_CHECKING:
    from also_for_types import x
""")
    assert tasks._imported_names(tree) == {"a.b", "c", "c.d", "c.e", "g.h", "g.h.i",
                                          "at_run_time"}


def test_a_source_file_edited_in_this_process_is_read_again(tmp_path):
    path = tmp_path / "module.py"
    path.write_text(MODULE)
    os.utime(path, ns=(0, 0))
    _, first = tasks._source_facts(path)
    edited = MODULE.replace("LIMIT = 3", "LIMIT = 30")
    path.write_text(edited)
    os.utime(path, ns=(0, 0))  # the same time: the size tells the versions apart
    assert first == tasks.code_hash(MODULE)
    assert tasks._source_facts(path)[1] == tasks.code_hash(edited) != first


def test_the_code_of_a_stage_is_its_modules_and_their_imports():
    train = tasks.code_fingerprint(stage("train").modules)
    evaluate = tasks.code_fingerprint(stage("evaluate").modules)
    assert "bert/core/model.py" in train and "bert/workflow/evaluate.py" in train
    assert "bert/views/tables.py" in evaluate  # the presentation of the stage
    assert not [name for name in train if name.startswith("bert/views/")]
    data = tasks.code_fingerprint(stage("data").modules)
    assert "bert/data/language.py" in data and "bert/core/model.py" not in data
    pictures = tasks.code_fingerprint(stage("plots").modules)
    assert {"bert/views/curves_plot.py", "bert/views/attention_plot.py",
            "bert/views/predictions_plot.py", "bert/views/figures.py"} <= set(pictures)
    (curves,) = [part for part in stage("plots").parts if part.name == "curves"]
    curves = tasks.code_fingerprint(curves.modules)  # a picture runs its own module, no other's
    assert "bert/views/curves_plot.py" in curves and "bert/views/attention_plot.py" not in curves


def fake_stage(params: Params, layout: Layout) -> dict:
    return {"root": str(layout.root), "epochs": params.training.epochs}


def fake_show(result: dict) -> str:
    return f"shown: {result}"


def test_run_calls_the_function_and_prints_what_the_record_shows(monkeypatch, tmp_path, capsys):
    record = Stage("fake", "A fake stage.", "tests.test_tasks:fake_stage",
                   show="tests.test_tasks:fake_show")
    monkeypatch.setattr(tasks, "stage", lambda name: record)
    tasks.run("fake", Params(), Layout(tmp_path))
    epochs = Params().training.epochs
    assert capsys.readouterr().out == f"shown: {{'root': '{tmp_path}', 'epochs': {epochs}}}\n"


def test_a_stage_without_its_package_says_so(monkeypatch, capsys):
    record = Stage("fake", "A fake stage.", "tests.test_tasks:no_such_function",
                   needs="no_such_package_anywhere", missing="install it")
    monkeypatch.setattr(tasks, "stage", lambda name: record)
    tasks.run("fake", Params(), Layout())
    assert capsys.readouterr().out == "install it\n"
