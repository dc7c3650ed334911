"""Sweep files: several runs of one base parameters file, each with its own overrides.

    base: params.yaml          # the parameters every variant starts from (project-relative)
    threads: 1                 # compute threads of each run (default 1; 0: one per CPU)
    variants:                  # named variants, each with its overrides (section.key: value)
      shipped: {}
      lr-3e-3: {training.learning_rate: 0.003}
    grid:                      # every combination of these values, named after them
      training.learning_rate: [0.002, 0.006]
      training.nsp_loss_weight: [0.25, 0.5]

``doit sweep=sweeps/lr.yaml -n 2`` runs every variant (two at a time), each in its own run folder
named ``<sweep>.<variant>`` (a grid's variants are named after their values, as
``lr.learning_rate@0.002+nsp_loss_weight@0.25``); runs that share their data or initial
weights share those stages. The thread count changes no result, so each run ends bit-identical
to the same parameters run alone.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bert.errors import ParamsError, bounded
from bert.workflow.overrides import check_run_name, override_words, split_variables
from bert.workflow.yamlfile import read_yaml

KEYS = {"base": "the base parameters file", "threads": "compute threads of each run",
        "variants": "named variants and their overrides", "grid": "values to combine"}


@dataclass(frozen=True)
class Variant:
    """One run of a sweep: its name and what it changes in the base parameters (values as they
    would be written on the command line)."""

    name: str
    overrides: dict[str, str]


@dataclass(frozen=True)
class Sweep:
    """A sweep file, read and checked."""

    path: Path
    base: Path
    threads: int
    variants: tuple[Variant, ...]

    @property
    def name(self) -> str:
        return self.path.stem


def as_text(value: Any) -> str:
    """A YAML value as it would be written on the command line (read back to the same value)."""
    if isinstance(value, str):
        return value
    return yaml.safe_dump(value, default_flow_style=True, width=1 << 16).strip().removesuffix(
        "\n...").strip()


def _overrides(where: str, mapping: Any) -> dict[str, str]:
    if mapping is None:
        return {}
    if not isinstance(mapping, dict):
        raise ParamsError(f"{where} must be a mapping of section.key: value, not "
                          f"{bounded(mapping)}")
    variables = {str(key): as_text(value) for key, value in mapping.items()}
    known, overrides = split_variables(variables)
    if known:
        raise ParamsError(f"{where}: {', '.join(known)} is a doit variable, not a parameter; "
                          "give parameters as section.key")
    return overrides


def read_sweep(path: str | Path) -> Sweep:
    """The sweep file at ``path``; ParamsError naming the file for anything wrong in it."""
    path = Path(path)
    document = read_yaml(path)
    if not isinstance(document, dict):
        raise ParamsError(f"{path}: a sweep file is a mapping with base, variants and/or grid")
    try:
        return _sweep(path, document)
    except ParamsError as error:
        raise ParamsError(f"{path}: {error}") from None


def _sweep(path: Path, document: dict) -> Sweep:
    unknown = [key for key in document if key not in KEYS]
    if unknown:
        raise ParamsError(f"{bounded(unknown[0])} is not a sweep key; the keys are "
                          f"{', '.join(KEYS)}")
    base = document.get("base", "params.yaml")
    threads = document.get("threads", 1)
    if not isinstance(base, str) or not base:
        raise ParamsError(f"base is {bounded(base)}; name the base parameters file")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise ParamsError(f"threads is {bounded(threads)}; set it to 0 (one per CPU) or more")
    variants = []
    named = document.get("variants") or {}
    if not isinstance(named, dict):
        raise ParamsError("variants must be a mapping of name: {section.key: value}")
    for name, mapping in named.items():
        variants.append(Variant(check_run_name(f"{path.stem}.{name}"),
                                _overrides(f"variants.{name}", mapping)))
    variants += _grid(path.stem, document.get("grid"))
    if not variants:
        raise ParamsError("names no variant; add variants: or grid:")
    seen: set[str] = set()
    for variant in variants:
        if variant.name in seen:
            raise ParamsError(f"two variants are named {variant.name}; rename one")
        seen.add(variant.name)
    return Sweep(path, Path(base), threads, tuple(variants))


def _grid(stem: str, grid: Any) -> list[Variant]:
    """Every combination of the grid's values, in the order given (the last key fastest)."""
    if grid is None:
        return []
    if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
        raise ParamsError("grid must be a mapping of section.key: [values...], each list "
                          "non-empty")
    keys = list(_overrides("grid", {key: None for key in grid}))
    variants = []
    for values in itertools.product(*(grid[key] for key in keys)):
        overrides = {key: as_text(value) for key, value in zip(keys, values, strict=True)}
        label = "+".join(override_words(overrides))
        variants.append(Variant(check_run_name(f"{stem}.{label}"), overrides))
    return variants
