"""Reading the YAML files of the workflow (parameters, sweeps) without surprises: PyYAML's safe
loader, a key given twice in one mapping refused (where YAML would keep the later one), and every
error one ParamsError line naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bert.errors import ParamsError, bounded
from bert.storage.reading import NotReadable, read_regular

MAX_YAML_BYTES = 1 << 20  # a parameters or sweep file is a few KiB


class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key that appears twice in one mapping (where the later
    one would silently win), at any depth, in block and flow mappings alike. Checked as the
    document is read, before merge keys (``<<``) are expanded."""

    def compose_mapping_node(self, anchor: str | None) -> yaml.MappingNode:
        node = super().compose_mapping_node(anchor)
        seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node,
                                                                            yaml.ScalarNode):
                continue
            key, mark = self.construct_object(key_node), key_node.start_mark
            first = seen.setdefault(key, mark)
            if first is mark:
                continue
            if first.line == mark.line:
                where = f"on line {mark.line + 1}, at columns {first.column + 1} and " \
                        f"{mark.column + 1}"
            else:
                where = f"at lines {first.line + 1} and {mark.line + 1}"
            raise ParamsError(f"key {bounded(key)} appears twice, {where}; keep one of them")
        return node


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
