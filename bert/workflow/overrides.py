"""Parameters on the command line, and the name of the run they make.

``doit training.learning_rate=0.002 model.num_layers=3`` runs the parameters file with those
keys changed: each ``section.key=value`` is read as YAML (``0.002`` a number, ``true`` a
boolean, ``[a, b]`` a list) and checked like the file's values. It is another run, named after
what differs from its base: ``params+learning_rate=0.002+num_layers=3`` (a key's last part, or
the whole key where the last part alone is ambiguous, as ``training.random_seed``), ``@`` between
a key and its value (doit reads a word with ``=`` as a variable, so a task name cannot hold one):
``params+learning_rate@0.002+num_layers@3``. ``run=NAME`` names it instead.

Every command-line variable of ``doit`` is checked: the known ones (``VARIABLES``) and dotted
parameter keys; anything else is one line with a "did you mean", never silently ignored.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import re
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bert.errors import ParamsError, bounded
from bert.workflow.params import Params
from bert.workflow.yamlfile import parse_yaml

# the doit variables that are not parameters, and what each one is
VARIABLES = {
    "params": "the parameters file (default: params.yaml)",
    "sweep": "a sweep file: run every variant it names (docs/experiments.md)",
    "run": "the name of the run (default: the parameters file's name and what differs)",
}
RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+@,-]{0,119}$")  # a folder name on any system
_UNSAFE = re.compile(r"[^A-Za-z0-9._+@,-]")


def parameter_keys() -> list[str]:
    """Every parameter as ``section.key``, in file order."""
    hints = typing.get_type_hints(Params)
    return [f"{section.name}.{field.name}" for section in dataclasses.fields(Params)
            for field in dataclasses.fields(hints[section.name])]


def _suggestion(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else ""


def split_variables(variables: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """The command-line variables as (the known ones, the parameter overrides), in the order
    given. ParamsError for an unknown variable or parameter, with the closest known name."""
    known, overrides = {}, {}
    keys = parameter_keys()
    for name, value in variables.items():
        if name in VARIABLES:
            known[name] = value
        elif name in keys:
            overrides[name] = value
        else:
            hint = _suggestion(name, [*VARIABLES, *keys]) or (
                f"the variables are {', '.join(VARIABLES)}, or a parameter as section.key"
                if "." not in name else "the parameters are listed in docs/parameters.md")
            what = "parameter" if "." in name else "doit variable"
            raise ParamsError(f"{bounded(name).strip(chr(39))}={bounded(value).strip(chr(39))}: "
                              f"{bounded(name)} is not a known {what}; {hint}")
    return known, overrides


def apply_overrides(mapping: Any, overrides: Mapping[str, str], path: str | Path) -> Any:
    """A copy of a parameters file's mapping with each override put in its section; the values
    are parsed as YAML. A mapping that is not one is returned as it is (the loader says why)."""
    if mapping is None:
        mapping = {}
    if not isinstance(mapping, dict):
        return mapping
    merged = copy.deepcopy(mapping)
    for key, text in overrides.items():
        section, _, name = key.partition(".")
        value = parse_yaml(text, f"{key}={bounded(text).strip(chr(39))} on the command line")
        if merged.get(section) is None:
            merged[section] = {}
        if isinstance(merged[section], dict):
            merged[section][name] = value
    return merged


def command_line_error(message: str, overrides: Mapping[str, str]) -> str | None:
    """``message`` (a loader error) said of the command line when it is about an overridden key,
    else None."""
    for key, value in overrides.items():
        if message.startswith(f"{key} "):
            return f"{key}={bounded(value).strip(chr(39))} on the command line: {message}"
    return None


def short_keys(keys: list[str]) -> dict[str, str]:
    """Each key's shortest unambiguous name: its last part, unless another parameter has the
    same last part (``random_seed``), then the whole key."""
    last = [key.rpartition(".")[2] for key in parameter_keys()]
    return {key: key.rpartition(".")[2] if last.count(key.rpartition(".")[2]) == 1 else key
            for key in keys}


def override_words(overrides: Mapping[str, str]) -> list[str]:
    """``key@value`` for each override, keys sorted and shortened (``short_keys``)."""
    names = short_keys(sorted(overrides))
    return [f"{names[key]}@{overrides[key]}" for key in sorted(overrides)]


def run_name(params_file: str | Path, overrides: Mapping[str, str]) -> str:
    """The name of the run of ``params_file`` with ``overrides``: the file's name without its
    suffix, then ``+key@value`` for each override, keys sorted (``params+learning_rate@0.002``)."""
    return variant_name(Path(params_file).stem, overrides)


def variant_name(base: str, overrides: Mapping[str, str]) -> str:
    """``base`` followed by ``+key@value`` for each override, keys sorted. Characters a folder
    or task name should not hold become ``_``; a name too long keeps its start and gets a digest
    of the overrides, so that it stays unique."""
    name = _UNSAFE.sub("_", "+".join([base, *override_words(overrides)])).lstrip("._+@,-") or "run"
    if not RUN_NAME.match(name):
        from bert.fingerprint import fingerprint

        name = f"{name[:100]}-{fingerprint(dict(overrides))[:8]}"
    return name


def check_run_name(name: str) -> str:
    """``name`` if it can name a run's folder, else ParamsError saying what can."""
    if not RUN_NAME.match(name):
        raise ParamsError(f"run={bounded(name)}: a run's name is 1 to 120 letters, digits and "
                          "._+@,- (starting with a letter or digit); choose another")
    return name
