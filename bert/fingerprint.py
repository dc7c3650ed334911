"""A short stable name for a set of parameters: the hash of their sorted-key JSON."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def fingerprint(values: Mapping[str, Any]) -> str:
    """16 hex digits of the SHA-256 of ``values`` as JSON with sorted keys: the same values give
    the same name, in any order."""
    text = json.dumps(values, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
