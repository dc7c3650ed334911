"""Reading the YAML files of the workflow (parameters, sweeps) without surprises: PyYAML's safe
loader, a key given twice in one mapping refused (where YAML would keep the later one), and every
error one ParamsError line naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bert.errors import ParamsError, bounded


class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key that appears twice in one mapping (where the later
    one would silently win), at any depth."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            try:
                first = seen.setdefault(key, line)
            except TypeError:  # an unhashable key; the base class says so
                break
            if first != line:
                raise ParamsError(f"key {bounded(key)} appears twice, at lines {first} and "
                                  f"{line}; keep one of them")
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | Path) -> Any:
    """The YAML document of a parameters (or sweep) file, keys unique in every mapping; every
    error is one ParamsError line that names the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found; create it or pass the right path") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ParamsError(f"{path}: cannot be read ({e}); check the file") from None
    return parse_yaml(text, str(path))


def parse_yaml(text: str, source: str) -> Any:
    """``text`` read as YAML, keys unique in every mapping; errors name ``source``."""
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or type(e).__name__
        raise ParamsError(f"{source}: invalid YAML{where} ({problem}); fix the syntax") from None
    except RecursionError:
        raise ParamsError(f"{source}: nested too deeply to be read; fix the file") from None
    except ValueError as e:  # e.g. an integer of more digits than Python converts
        raise ParamsError(f"{source}: a value cannot be read ({bounded(str(e))}); fix the "
                          "file") from None
    except ParamsError as e:
        raise ParamsError(f"{source}: {e}") from None
