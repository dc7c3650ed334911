"""The parameters page (``docs/parameters.md``) and the committed ``params.yaml``, both made from
the schema, so that neither can drift from what the loader accepts.

``python -m bert.workflow.params_page`` writes both; ``tests/test_params_page.py`` checks that
the committed files are what it writes.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
import typing
from pathlib import Path
from typing import Any

from bert.fields import describe
from bert.storage.atomic import write_bytes
from bert.workflow.params import Params

ROOT = Path(__file__).resolve().parents[2]
PAGE, PARAMS_FILE = Path("docs/parameters.md"), Path("params.yaml")
COMMENT_COLUMN = 34  # where the help comment of a key starts in params.yaml

PAGE_INTRO = """# Parameters

A parameters file (`params.yaml`, or another named with `doit params=FILE`) has the sections
below; every key is optional and takes the default shown when absent. The loader
(`bert/workflow/loader.py`) rejects unknown keys (with a "did you mean"), wrong types,
out-of-range and inconsistent values, and a key given twice, in one line that names the key and
says what to do, before anything is written, e.g. `error: params.yaml: model.num_heads is 3,
which does not divide model.dim_model (64); choose a divisor of it`.

Parameters whose stages would need more memory than the machine has are refused with the
estimate (`the data stage needs ~129 GiB; the machine has 24`).

This page is made from the schema (`bert/workflow/params.py`, `bert/data/params.py`) by
`python -m bert.workflow.params_page`, which also writes the committed `params.yaml`.
"""

YAML_HEADER = """\
# The parameters of the workflow, every key at its default; docs/parameters.md explains each.
# Every key is optional (a missing one takes the default shown here). `doit` reruns a stage only
# when a key it reads changes.
"""


def sections() -> list[tuple[str, type]]:
    """``(name, section dataclass)`` in file order."""
    hints = typing.get_type_hints(Params)
    return [(f.name, hints[f.name]) for f in dataclasses.fields(Params)]


def yaml_value(value: Any) -> str:
    """A default as YAML that the loader reads back as that value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(yaml_value(v) for v in value) + "]"
    if value == "":
        return '""'
    return str(value)


def params_yaml() -> str:
    """The committed ``params.yaml``: every key at its default, its help as a comment."""
    lines = [YAML_HEADER.rstrip()]
    for name, section in sections():
        lines += ["", f"{name}:"]
        for key, default, help_text in describe(section):
            entry = f"  {key}: {yaml_value(default)}"
            lines.append(f"{entry.ljust(COMMENT_COLUMN - 2)}  # {help_text}")
    return "\n".join(lines) + "\n"


def page() -> str:
    """``docs/parameters.md``: each section's description and a table of its keys."""
    parts = [PAGE_INTRO]
    for name, section in sections():
        parts.append(f"## `{name}:`\n")
        parts.append(inspect.cleandoc(section.__doc__ or "") + "\n")
        rows = ["| key | default | meaning |", "|---|---|---|"]
        rows += [f"| `{key}` | `{yaml_value(default)}` | {help_text} |"
                 for key, default, help_text in describe(section)]
        parts.append("\n".join(rows) + "\n")
    return "\n".join(parts)


def main(argv: list[str]) -> int:
    if argv:
        print("usage: python -m bert.workflow.params_page (writes docs/parameters.md and "
              "params.yaml from the schema)", file=sys.stderr)
        return 2
    for path, text in ((PAGE, page()), (PARAMS_FILE, params_yaml())):
        write_bytes(ROOT / path, text.encode())
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
