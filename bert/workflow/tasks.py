"""Running the stages of ``bert.workflow.stages``, and the fingerprint of the code each one runs.

The code a stage depends on is found by reading import statements (no code is executed): the
modules its record names and, transitively, every package module they import, lazy imports
included. Imports under ``if TYPE_CHECKING:`` are left out: they never run. The fingerprint
hashes each of those modules' syntax tree without its docstrings, so an edit of a comment, a
docstring or the layout of the code reruns nothing, and any other edit reruns the stages whose
code it is.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Any

from bert.workflow.layout import Layout
from bert.workflow.params import Params
from bert.workflow.stages import Stage, stage

PACKAGE_DIR = Path(__file__).resolve().parents[1]
# doit's ``io`` of a stage's task: the stage writes to doit's own stdout and stderr, not into pipes
# doit reads line by line, so that it sees a terminal when there is one (and shows a progress bar
# only there) and its lines come as it writes them.
STAGE_IO = {"capture": False}


# --- running -----------------------------------------------------------------------------------


def load(reference: str) -> Callable[..., Any]:
    """The function a record names as ``"module:function"`` (the module is imported now)."""
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


def available(record: Stage) -> bool:
    """Whether the package the stage needs can be imported (looked up, not imported)."""
    return not record.needs or importlib.util.find_spec(record.needs) is not None


def plots_available() -> bool:
    """Whether matplotlib is there; the plots stage draws nothing without it."""
    return available(stage("plots"))


def run_part(part: Stage, layout: Layout, params: Params | None = None) -> Any:
    """Run a part of a stage (a picture): its function with its input and output paths."""
    return load(part.function)(*layout.files(part.inputs, params),
                               *layout.files(part.outputs, params))


def run(name: str, params: Params, layout: Layout, parts: Iterable[str] = (),
        **options: Any) -> None:
    """Run stage ``name`` with its inputs in place, and print what it shows.

    parts: the names of the parts to run (the pictures of the plots stage); all when empty.
    options: passed on to the stage's function (the train stage's ``origin``).
    """
    record = stage(name)
    if not available(record):
        print(record.missing)
        return
    if record.parts:
        chosen = set(parts) or {part.name for part in record.parts}
        for part in record.parts:
            if part.name in chosen:
                run_part(part, layout, params)
        return
    result = load(record.function)(params, layout, **options)
    if record.show:
        print(load(record.show)(result))


def keep_output_in_order() -> None:
    """Flush doit's own lines (``.  train``) as they are written, so that in a file they stay in
    order with the lines the stages write there themselves (``STAGE_IO``)."""
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(line_buffering=True)


# --- the code a stage runs ---------------------------------------------------------------------


def _is_type_checking(node: ast.AST) -> bool:
    """Whether ``node`` is ``if TYPE_CHECKING:`` (or ``if typing.TYPE_CHECKING:``)."""
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imported_names(tree: ast.AST) -> frozenset[str]:
    """Every name an import statement under ``tree`` imports from (``a.b`` and ``a.b.c`` for
    ``from a.b import c``; relative imports left out), at any depth, but those only type
    checkers run (the body of ``if TYPE_CHECKING:``; its ``else:`` runs)."""
    found: set[str] = set()
    pending = [tree]
    while pending:
        for child in ast.iter_child_nodes(pending.pop()):
            if isinstance(child, ast.Import):
                found |= {alias.name for alias in child.names}
            elif isinstance(child, ast.ImportFrom):
                if child.module and child.level == 0:
                    found.add(child.module)
                    found |= {f"{child.module}.{alias.name}" for alias in child.names}
            elif _is_type_checking(child):
                pending.append(ast.Module(body=child.orelse, type_ignores=[]))
            else:
                pending.append(child)
    return frozenset(found)


def source(module: str) -> Path | None:
    """The file of a package module (a package is its ``__init__.py``), or None."""
    parts = module.split(".")[1:]
    candidates = [PACKAGE_DIR.joinpath(*parts, "__init__.py")]
    if parts:
        candidates.append(PACKAGE_DIR.joinpath(*parts[:-1], parts[-1] + ".py"))
    return next((path for path in candidates if path.is_file()), None)


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    """The tree without the docstrings of its module, classes and functions (in place)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


def _tree_hash(tree: ast.AST) -> str:
    """The hash of a syntax tree without its docstrings (the tree is changed)."""
    return hashlib.sha256(ast.dump(_strip_docstrings(tree)).encode()).hexdigest()


def code_hash(text: str) -> str:
    """The hash of a module's syntax tree without docstrings: comments, docstrings, blank lines
    and line breaks do not change it."""
    return _tree_hash(ast.parse(text))


@cache
def _read_source(path: Path, mtime_ns: int, size: int) -> tuple[frozenset[str], str]:
    """The names a source file imports from and its ``code_hash``, from one parse; cached for
    this version of the file (its modification time and size)."""
    tree = ast.parse(path.read_text(), str(path))
    return _imported_names(tree), _tree_hash(tree)


def _source_facts(path: Path) -> tuple[frozenset[str], str]:
    stat = path.stat()
    return _read_source(path, stat.st_mtime_ns, stat.st_size)


@cache
def imports(module: str) -> frozenset[str]:
    """The package modules ``module`` imports (each one that has a file), lazy imports included,
    ``if TYPE_CHECKING:`` imports left out."""
    path = source(module)
    if path is None:
        return frozenset()
    names, _ = _source_facts(path)
    return frozenset(name for name in names
                     if name.split(".")[0] == "bert" and source(name) is not None)


@cache
def module_closure(module: str) -> frozenset[str]:
    """``module`` and every package module it imports, transitively (``bert`` itself always)."""
    seen: set[str] = set()
    pending = [module, "bert"]
    while pending:
        name = pending.pop()
        if name not in seen and source(name) is not None:
            seen.add(name)
            pending.extend(imports(name))
    return frozenset(seen)


def module_files(*modules: str) -> tuple[Path, ...]:
    """The source files of ``modules`` and of every package module they import, transitively."""
    return tuple(sorted({source(name) for module in modules for name in module_closure(module)}))


def code_fingerprint(modules: Iterable[str]) -> dict[str, str]:
    """Per source file the stage runs (relative to the package), the hash of its code."""
    files = module_files(*modules)
    return {str(path.relative_to(PACKAGE_DIR.parent)): _source_facts(path)[1] for path in files}
