"""Reading the YAML files of the workflow (parameters, sweeps) without surprises: PyYAML's safe
loader, a key given twice in one mapping refused (where YAML would keep the later one), and every
error one ParamsError line naming the file.

The document is composed into PyYAML's tree of nodes by libyaml, in C, when PyYAML has it
(``yaml.CSafeLoader``), else by PyYAML's own parser in Python (``yaml.SafeLoader``): the C parser
reads a parameters file several times faster, and one is read at every doit start and stage.
That tree is walked once, each node once (an alias is the node of its anchor, so a shared or
recursive tree is walked in its size), refusing a key given twice in any mapping and nesting
deeper than MAX_DEPTH; only then are the Python values constructed, in Python for both parsers.
Keys are compared as constructed (``1``, ``01`` and ``1.0`` are one key), merge keys (``<<``) as
written, before they are expanded, so a merge may still override what it merges."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import yaml

from bert.errors import ParamsError, bounded
from bert.storage.reading import NotReadable, read_regular

MAX_YAML_BYTES = 1 << 20  # a parameters or sweep file is a few KiB
MAX_DEPTH = 100  # lists and mappings one in another; a parameters file nests 3
MERGE_TAG = "tag:yaml.org,2002:merge"
TOO_DEEP = "nested too deeply to be read; fix the file"
LIBYAML_TOO_DEEP = "exceeded maximum nesting depth"  # libyaml's problem past its 1000 levels


def twice(key: Any, first: yaml.Mark, again: yaml.Mark) -> str:
    """What to say of ``key`` given at ``first`` and ``again`` in one mapping."""
    if first.line == again.line:
        where = f"on line {again.line + 1}, at columns {first.column + 1} and {again.column + 1}"
    else:
        where = f"at lines {first.line + 1} and {again.line + 1}"
    return f"key {bounded(key)} appears twice, {where}; keep one of them"


def check_keys(node: yaml.MappingNode, construct: Callable[[yaml.Node], Any]) -> None:
    """Refuse a scalar key given twice in the mapping ``node``; merge keys are let be."""
    seen: dict[Any, yaml.Mark] = {}
    for key_node, _ in node.value:
        if key_node.tag == MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
            continue
        key, mark = construct(key_node), key_node.start_mark
        if not isinstance(key, Hashable):  # ``!!seq a: 1``, refused as unhashable when built
            continue
        first = seen.setdefault(key, mark)
        if first is not mark:
            raise ParamsError(twice(key, first, mark))


def children(node: yaml.Node) -> list[yaml.Node]:
    """The mappings and lists right inside ``node``, keys before their values, in order."""
    if isinstance(node, yaml.MappingNode):
        inside = [child for pair in node.value for child in pair]
    elif isinstance(node, yaml.SequenceNode):
        inside = node.value
    else:
        return []
    return [child for child in inside if isinstance(child, yaml.CollectionNode)]


def check_tree(root: yaml.Node, construct: Callable[[yaml.Node], Any]) -> None:
    """Refuse a key given twice in any mapping of the tree under ``root``, and nesting deeper
    than MAX_DEPTH. Each node is visited once, at its depth where first written, and a mapping
    is checked after the mappings inside it, as the parser closes them."""
    visited: set[int] = set()
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, closing = stack.pop()
        if closing:
            check_keys(node, construct)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        if depth > MAX_DEPTH:
            raise ParamsError(TOO_DEEP)
        if isinstance(node, yaml.MappingNode):
            stack.append((node, depth, True))
        stack.extend((child, depth + 1, False) for child in reversed(children(node)))


class UniqueKeys:
    """The checks of check_tree, made on the document of a PyYAML loader once it is composed."""

    def get_single_node(self) -> yaml.Node | None:
        node = super().get_single_node()
        if node is not None:
            check_tree(node, self.construct_object)
        return node


class PythonUniqueKeyLoader(UniqueKeys, yaml.SafeLoader):
    """PyYAML's safe loader, in Python, refusing a key that appears twice in one mapping (where
    the later one would silently win), at any depth, in block and flow mappings alike, before
    merge keys (``<<``) are expanded. The loader used where PyYAML has no libyaml."""


def unprintable(error: UnicodeEncodeError) -> yaml.reader.ReaderError:
    """The error PyYAML's reader in Python gives for a character libyaml cannot be given."""
    character = ord(error.object[error.start])
    return yaml.reader.ReaderError("<unicode string>", error.start, character, "unicode",
                                   "special characters are not allowed")


UniqueKeyLoader: type[UniqueKeys] = PythonUniqueKeyLoader

if yaml.__with_libyaml__:
    class LibyamlUniqueKeyLoader(UniqueKeys, yaml.CSafeLoader):
        """PythonUniqueKeyLoader's checks on the document libyaml composes."""

        def __init__(self, stream: Any) -> None:
            try:
                super().__init__(stream)
            except UnicodeEncodeError as e:  # a lone surrogate (a command line not in UTF-8)
                raise unprintable(e) from None

    UniqueKeyLoader = LibyamlUniqueKeyLoader


def read_yaml(path: str | Path) -> Any:
    """The YAML document of a parameters (or sweep) file, keys unique in every mapping; every
    error is one ParamsError line that names the file."""
    path = Path(path)
    try:
        text = read_regular(path, MAX_YAML_BYTES).decode("utf-8")
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found; create it or pass the right path") from None
    except NotReadable as e:
        raise ParamsError(f"{path}: {e.problem} for parameters; pass the YAML file of the "
                          "parameters") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ParamsError(f"{path}: cannot be read ({e}); check the file") from None
    return parse_yaml(text, str(path))


def parse_yaml(text: str, source: str) -> Any:
    """``text`` read as YAML, keys unique in every mapping; errors name ``source``."""
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)
    except yaml.YAMLError as e:
        raise ParamsError(f"{source}: {yaml_problem(e)}") from None
    except RecursionError:
        raise ParamsError(f"{source}: {TOO_DEEP}") from None
    except ValueError as e:  # e.g. an integer of more digits than Python converts
        raise ParamsError(f"{source}: a value cannot be read ({bounded(str(e))}); fix the "
                          "file") from None
    except ParamsError as e:
        raise ParamsError(f"{source}: {e}") from None


def yaml_problem(error: yaml.YAMLError) -> str:
    """What to say of a YAML error: where and what, or that it nests too deeply."""
    problem = getattr(error, "problem", None) or type(error).__name__
    if problem == LIBYAML_TOO_DEEP:
        return TOO_DEEP
    mark = getattr(error, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return f"invalid YAML{where} ({problem}); fix the syntax"
