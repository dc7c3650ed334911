"""How much memory the machine has, and refusing work that cannot fit in it.

Checked before allocating: a size declared by a file or implied by parameters is compared with
the machine's memory (its physical memory, or the container's limit when lower), so that an
oversized request is one line ("this needs ~32 GiB; the machine has 24") instead of a
MemoryError traceback minutes later.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from bert.errors import ResourceError

_CGROUP_LIMITS = (Path("/sys/fs/cgroup/memory.max"),
                  Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"))


@cache
def machine_bytes() -> int:
    """The memory this process may use: physical memory, or a lower container limit."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 1 << 62  # unknown: do not refuse
    for limit in _CGROUP_LIMITS:
        try:
            text = limit.read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total


def gib(num_bytes: float) -> str:
    """A size in GiB with two significant digits, e.g. ``32`` or ``0.25``."""
    value = num_bytes / 2**30
    return f"{value:.0f}" if value >= 10 else f"{value:.2g}"


def require_memory(num_bytes: float, what: str, fix: str) -> None:
    """Raise ResourceError when ``num_bytes`` (an estimate) exceeds the machine's memory."""
    if num_bytes > machine_bytes():
        raise ResourceError(f"{what}: this needs ~{gib(num_bytes)} GiB; the machine has "
                            f"{gib(machine_bytes())}; {fix}")
