"""The README's commands are the real ones (the parameters page: tests/test_params_page.py)."""

from __future__ import annotations

from pathlib import Path

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_the_two_commands_are_there():
    assert "pip install -e . && doit" in README
    assert 'pip install -e ".[test]" && python -m pytest' in README
    ci = (Path(__file__).resolve().parents[1] / ".ci/run").read_text()
    assert "python -m pytest" in ci
