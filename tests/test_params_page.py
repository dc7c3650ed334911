"""The parameters page and the committed params.yaml are made from the schema, and stay so."""

from __future__ import annotations

from pathlib import Path

from bert.fields import describe
from bert.workflow.loader import load_params
from bert.workflow.params import Params
from bert.workflow.params_page import PAGE, PARAMS_FILE, ROOT, page, params_yaml, sections

FIX = "run `python -m bert.workflow.params_page` and commit what it writes"


def test_the_committed_page_is_the_generated_one():
    assert (ROOT / PAGE).read_text() == page(), FIX


def test_the_committed_params_file_is_the_generated_one_and_loads_to_the_defaults(tmp_path):
    assert (ROOT / PARAMS_FILE).read_text() == params_yaml(), FIX
    assert load_params(ROOT / PARAMS_FILE) == Params()
    written = tmp_path / "params.yaml"
    written.write_text(params_yaml())
    assert load_params(written) == Params()


def test_every_key_is_on_the_page_with_its_default_and_help():
    text = page()
    for name, section in sections():
        assert f"## `{name}:`" in text
        for key, _, help_text in describe(section):
            assert f"| `{key}` |" in text and help_text in text, f"{name}.{key}"


def test_a_new_key_changes_both(monkeypatch):
    """The generated files follow the schema (so the equality tests above can fail)."""
    import bert.workflow.params_page as params_page

    original = params_page.describe
    monkeypatch.setattr(params_page, "describe",
                        lambda cls: [*original(cls), ("extra_key", 1, "a new key")])
    assert "extra_key: 1" in params_yaml() and "| `extra_key` | `1` | a new key |" in page()
    assert Path(ROOT / PAGE).read_text() != page()
