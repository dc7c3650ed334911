"""How pytest-xdist spreads the tests over its workers (``tests.workers``)."""

from __future__ import annotations

from xdist.scheduler import LoadScopeScheduling

from tests.workers import TORCH_FILES, file_of

TORCH_GROUP = "torch and transformers"


class TorchOnOneWorker(LoadScopeScheduling):
    """pytest-xdist's default ``load`` distribution, one test at a time to whichever worker is
    free, except that the tests of ``TORCH_FILES`` are one unit of work, sent first (units go
    out largest first)."""

    def _split_scope(self, nodeid: str) -> str:
        return TORCH_GROUP if file_of(nodeid) in TORCH_FILES else nodeid
