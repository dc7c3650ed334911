"""The README and the docs pages: the README's commands are the real ones, it stays a front door
(at most 300 lines), and every link between the pages leads to a file (the parameters page:
tests/test_params_page.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PAGES = sorted((ROOT / "docs").glob("*.md"))
LINK = re.compile(r"\]\(([^)#\s]+)(#[^)]*)?\)")


def test_the_two_commands_are_there():
    assert "pip install -e . && doit" in README
    assert 'pip install -e ".[test]" && python -m pytest' in README
    ci = (ROOT / ".ci/run").read_text()
    assert "python -m pytest" in ci


def test_the_readme_is_a_front_door():
    assert len(README.splitlines()) <= 300


def test_every_page_is_linked_from_the_readme():
    assert PAGES
    for page in PAGES:
        assert f"docs/{page.name}" in README, page.name


@pytest.mark.parametrize("document", [ROOT / "README.md", *PAGES], ids=lambda p: p.name)
def test_every_relative_link_leads_to_a_file(document):
    for target, _ in LINK.findall(document.read_text()):
        if "://" in target:
            continue
        assert (document.parent / target).exists(), f"{document.name}: {target}"
