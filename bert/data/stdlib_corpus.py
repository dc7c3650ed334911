"""A corpus every Python user has: the docstrings of the standard library, one document per
module. ``python -m bert.data.stdlib_corpus corpus/stdlib.txt`` writes it in the text format of
``data.source: text`` (a blank line between documents, one docstring per line).

The sources are parsed, never imported. Tests, IDLE, demos and installed packages are left out,
and so are doctest lines (``>>>``, ``...``). The same Python version gives the same file.
"""

from __future__ import annotations

import ast
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

SKIPPED = {"test", "tests", "idlelib", "turtledemo", "site-packages", "dist-packages",
           "__pycache__", "lib2to3", "ensurepip", "venv"}


def docstrings(tree: ast.Module) -> Iterator[str]:
    """The module's docstring, then those of its classes and functions (breadth first)."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef
                          | ast.AsyncFunctionDef):
            continue
        text = ast.get_docstring(node, clean=True)
        if text:
            lines = [line for line in text.splitlines()
                     if not line.lstrip().startswith((">>>", "..."))]
            prose = " ".join(" ".join(lines).split())
            if prose:
                yield prose


def module_documents(stdlib: Path) -> Iterator[str]:
    """One document per module of the standard library, in path order."""
    for path in sorted(stdlib.rglob("*.py")):
        if SKIPPED & set(path.relative_to(stdlib).parts):
            continue
        try:
            tree = ast.parse(path.read_bytes(), str(path))
        except (SyntaxError, ValueError):
            continue
        text = "\n".join(docstrings(tree))
        if text:
            yield text


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m bert.data.stdlib_corpus OUT.txt", file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.parent.mkdir(parents=True, exist_ok=True)
    documents = list(module_documents(Path(sysconfig.get_paths()["stdlib"])))
    out.write_text("\n\n".join(documents) + "\n", encoding="utf-8")
    print(f"{out}: {len(documents)} documents, {out.stat().st_size / 1e6:.1f} MB, from the "
          f"standard library of Python {sys.version.split()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
