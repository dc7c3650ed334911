"""The README documents every parameter with its default, and its commands are the real ones."""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path

import pytest

from bert.fields import describe
from bert.workflow.params import Params

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def section_table(section: str) -> str:
    match = re.search(rf"#### `{section}:`\n(.*?)(?=\n#### |\n## )", README, re.S)
    assert match, f"no parameter table for {section}:"
    return match.group(1)


@pytest.mark.parametrize("section", [f.name for f in dataclasses.fields(Params)])
def test_every_parameter_is_documented_with_its_default(section):
    table = section_table(section)
    for key, default, _ in describe(typing.get_type_hints(Params)[section]):
        shown = {True: "true", False: "false"}.get(default, default) \
            if isinstance(default, bool) else default
        shown = list(shown) if isinstance(shown, tuple) else shown  # a list in YAML
        assert f"| `{key}` | `{shown}` |" in table, f"{section}.{key} = {shown}"


def test_the_default_params_file_loads_and_equals_the_defaults():
    from bert.workflow.loader import load_params

    assert load_params(Path(__file__).resolve().parents[1] / "params.yaml") == Params()


def test_the_two_commands_are_there():
    assert "pip install -e . && doit" in README
    assert 'pip install -e ".[test]" && python -m pytest' in README
    ci = (Path(__file__).resolve().parents[1] / ".ci/run").read_text()
    assert "python -m pytest" in ci
