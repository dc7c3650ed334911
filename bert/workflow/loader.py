"""Reading ``params.yaml``: YAML without surprises, then every value checked against the schema.

The loader rejects unknown keys (suggesting the closest known one), wrong types (a bool is not an
int; an int is accepted where a float is expected), out-of-range values and keys given twice,
then asks each section and the whole for their cross-field problems. Every failure is one
:class:`ParamsError` line that names the file and the key as ``section.key`` and says what to do.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from bert.errors import ParamsError, ResourceError, bounded
from bert.fields import Section
from bert.workflow.overrides import apply_overrides, command_line_error
from bert.workflow.params import Params
from bert.workflow.resources import memory_problems
from bert.workflow.yamlfile import read_yaml

S = TypeVar("S", bound=Section)
# parameters of earlier versions, and where what they chose went
RETIRED = {
    "logging.file": "each stage logs into the folder it writes, a run's stages into "
                    "artifacts/runs/<run>/log.txt",
    "evaluation.results_file": "each run writes its results to artifacts/runs/<run>/results.json",
}

# PyYAML (YAML 1.1) reads 1e-3 as a string; a float field accepts such strings.
_FLOAT_STRING = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def _suggest(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        return f"did you mean '{close[0]}'?"
    return "known keys: " + ", ".join(known)


def _type_name(kind: Any) -> str:
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(
        kind, str(kind)
    )


def _convert(value: Any, kind: Any) -> Any:
    """``value`` as ``kind`` (int, float, bool or str), or raise TypeError."""
    if kind is float:
        if isinstance(value, str) and _FLOAT_STRING.match(value.strip()):
            value = float(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind in (bool, str):
        if isinstance(value, kind):
            return value
    elif typing.get_origin(kind) is tuple:  # tuple[str, ...]: a list of strings, or one string
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise TypeError("a list of strings")
    else:
        raise NotImplementedError(f"parameter type {kind} is not supported")
    raise TypeError(_type_name(kind))


def _check_value(name: str, value: Any, f: dataclasses.Field) -> None:
    low, high = f.metadata["range"]
    choices = f.metadata["choices"]
    texts = value if isinstance(value, tuple) else (value,)
    if any(isinstance(text, str) and "\x00" in text for text in texts):
        raise ParamsError(f"{name} is {bounded(value)}, with a NUL character (\\0) in it, which "
                          "no path or command can hold; remove it")
    if isinstance(value, float) and not math.isfinite(value):
        raise ParamsError(f"{name} is {value}; set it to a finite number")
    if isinstance(value, int | float) and not isinstance(value, bool):
        too_low = low is not None and (value <= low if f.metadata["open_low"] else value < low)
        too_high = high is not None and value > high
        if too_low or too_high:
            left = "(" if f.metadata["open_low"] else "["
            allowed = f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}]"
            raise ParamsError(
                f"{name} is {bounded(value)}, outside {allowed} ({f.metadata['help']}); "
                f"set it to a value in {allowed}"
            )
    if choices is not None and value not in choices:
        raise ParamsError(f"{name} is {bounded(value)}; set it to one of {', '.join(choices)}")


def build_section(cls: type[S], mapping: Any, section: str) -> S:
    """Validate ``mapping`` (from YAML) against the section dataclass ``cls``; return it frozen.

    Raises ParamsError naming ``section.key`` on the first unknown key, wrong type, out-of-range
    value or cross-field inconsistency.
    """
    if mapping is None:
        mapping = {}
    if not isinstance(mapping, Mapping):
        raise ParamsError(f"{section} must be a mapping of key: value, not {bounded(mapping)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in mapping.items():
        name = f"{section}.{key}" if key in fields else f"{section}.{bounded(key).strip(chr(39))}"
        if name in RETIRED:
            raise ParamsError(f"{name} is no longer a parameter: {RETIRED[name]}; remove it")
        if key not in fields:
            suggestion = _suggest(str(key)[:100], list(fields))
            raise ParamsError(f"{name} is not a known parameter; {suggestion}")
        try:
            values[key] = _convert(value, hints[key])
        except TypeError as e:
            raise ParamsError(f"{name} is {bounded(value)}; set it to {e}") from None
        _check_value(name, values[key], fields[key])
    instance = cls(**values)
    for key, message in instance.problems():
        raise ParamsError(f"{section}.{key} {message}")
    return instance


def params_from_mapping(mapping: Any) -> Params:
    """Validate a whole ``params.yaml`` mapping; sections that are absent take their defaults."""
    if mapping is None:
        mapping = {}
    if not isinstance(mapping, Mapping):
        raise ParamsError("the top level must be a mapping of section: {key: value}")
    sections = {f.name: f for f in dataclasses.fields(Params)}
    hints = typing.get_type_hints(Params)
    for key in mapping:
        if key not in sections:
            raise ParamsError(f"{bounded(key).strip(chr(39))} is not a known section; "
                              f"{_suggest(str(key)[:100], list(sections))}")
    params = Params(**{key: build_section(hints[key], value, key)
                       for key, value in mapping.items()})
    for key, message in params.problems():
        raise ParamsError(f"{key} {message}")
    for what, message in memory_problems(params):
        raise ResourceError(f"{what} {message}")
    return params


def load_params(path: str | Path, overrides: Mapping[str, str] | None = None) -> Params:
    """Read and validate a ``params.yaml`` file, with ``overrides`` (``"section.key"`` -> value
    as written on the command line, see ``bert.workflow.overrides``) put over it; every error
    names the file, or the command line for an overridden key."""
    mapping = read_yaml(path)
    if overrides:
        mapping = apply_overrides(mapping, overrides, path)
    try:
        return params_from_mapping(mapping)
    except (ParamsError, ResourceError) as e:
        where = command_line_error(str(e), overrides or {}) or f"{path}: {e}"
        raise type(e)(where) from None
