"""Parameters as dataclass fields that carry their own documentation and allowed values.

A section of ``params.yaml`` is a frozen dataclass (a ``Section``) whose fields are declared with
:func:`param`: a default, a help text (the parameters page and the comments of the committed
``params.yaml`` are made from it) and, for numbers, an allowed range, for strings the allowed
choices. ``bert.workflow.loader`` validates a file against them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import field
from typing import Any


def param(
    default: Any,
    help: str,
    *,
    low: float | None = None,
    high: float | None = None,
    open_low: bool = False,
    choices: tuple[str, ...] | None = None,
) -> Any:
    """A dataclass field with its help text and allowed values stored as metadata.

    ``low``/``high`` bound numbers (inclusive; ``open_low`` excludes ``low``); ``choices`` lists
    the allowed strings.
    """
    metadata = {"help": help, "range": (low, high), "open_low": open_low, "choices": choices}
    return field(default=default, metadata=metadata)


class Section:
    """Behaviour shared by every section dataclass."""

    def problems(self) -> Iterator[tuple[str, str]]:
        """Cross-field inconsistencies as ``(key, message with the fix)``; none by default."""
        return iter(())

    def to_dict(self) -> dict[str, Any]:
        """The section as a plain dict with sorted keys (for fingerprints and file attributes);
        a tuple of strings becomes a list."""
        return {f.name: _plain(getattr(self, f.name))
                for f in sorted(dataclasses.fields(self), key=lambda f: f.name)}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def describe(cls: type[Section]) -> list[tuple[str, Any, str]]:
    """``(key, default, help)`` for every field of a section, in declaration order (for docs)."""
    return [(f.name, f.default, f.metadata["help"]) for f in dataclasses.fields(cls)]
