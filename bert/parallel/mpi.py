"""Data-parallel training over MPI (mpi4py): which rank computes what, and the fixed-order sum.

Every rank holds the whole model and optimizer state. Of a batch's ``m`` micro-batches, rank r
of N computes the contiguous block ``[r m/N, (r+1) m/N)`` and sums it as far as the tree of
``bert.core.summation`` allows (its pieces). The pieces then meet in a reduce-scatter done by
hand: the flattened gradient (P parameters) is cut into N chunks; rank c receives chunk c of
every rank's pieces (``Alltoallv``), finishes the tree on it, and the finished chunks are
gathered everywhere (``Allgatherv``). Each rank sends and receives about 2 (N-1)/N times the
gradient, as a ring allreduce does, but every element is added in the tree's order, so the
result has the same bits on 1 or N processes. The losses travel the same way, as Python floats.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from bert.core.step import Partial
from bert.core.summation import Node, pieces, sum_pieces
from bert.errors import MissingExtraError
from bert.parallel.extra import mpi_available

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

# How long a failing rank leaves the launcher to forward its last line before it aborts the job.
FORWARDING_SECONDS = 0.5

# Where MPI launchers put a process's rank and the job's size before MPI starts: MPICH's hydra
# and Intel MPI, Open MPI, Slurm.
RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "SLURM_PROCID")
SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "SLURM_NTASKS")


def _announced(variables: tuple[str, ...], default: int) -> int:
    return int(next((os.environ[v] for v in variables if os.environ.get(v)), default))


def launcher_rank() -> int:
    """This process's rank as its launcher announced it (0 when not started by one), read from
    the environment without starting MPI."""
    return _announced(RANK_VARIABLES, 0)


@contextmanager
def rank_guard() -> Iterator[None]:
    """In a job of several ranks, stop the job when this rank fails in the block (see
    ``fail_fast``); a rank that simply exited would leave the others waiting forever. Outside
    such a job, or without mpi4py, nothing."""
    if _announced(SIZE_VARIABLES, 1) > 1 and mpi_available():
        with fail_fast(world(), lambda error: False):
            yield
    else:
        yield


def world() -> Any:
    """``MPI.COMM_WORLD`` (MPI is initialised on first use). MissingExtraError, in one line
    naming the rank, when the MPI library cannot be loaded (missing, or not the one mpi4py was
    built for): every rank of the job says it, since each may run on another host."""
    try:
        from mpi4py import MPI
    except (ImportError, RuntimeError, OSError) as error:
        size = _announced(SIZE_VARIABLES, 1)
        who = f"rank {launcher_rank()} of {size}: " if size > 1 else ""
        detail = "; ".join(line.strip() for line in str(error).splitlines() if line)[:300]
        raise MissingExtraError(
            f"{who}the MPI library cannot be loaded ({detail}); install it with pip install -e "
            '".[mpi]", or point MPI4PY_LIBMPI at the library mpi4py was built for') from None
    return MPI.COMM_WORLD


def cores_per_rank(comm: Any) -> int:
    """This rank's share of its host's CPUs: ranks on one host would otherwise each start a
    compute thread per CPU and oversubscribe them."""
    from mpi4py import MPI

    on_host = comm.Split_type(MPI.COMM_TYPE_SHARED).Get_size()
    return max(1, len(os.sched_getaffinity(0)) // on_host)


def block(rank: int, size: int, count: int) -> Node:
    """The micro-batches rank ``rank`` of ``size`` computes, of ``count`` (a multiple of size)."""
    share = count // size
    return (rank * share, (rank + 1) * share)


def chunk_bounds(length: int, size: int) -> list[int]:
    """Where a flat vector of ``length`` elements is cut into ``size`` near-equal chunks."""
    return [length * c // size for c in range(size + 1)]


def _add_in_place(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.add(a, b, out=a)


def _add_losses(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    return (a[0] + b[0], a[1] + b[1])


class MpiReduction:
    """A ``bert.core.step.Reduction`` over the ranks of a communicator."""

    def __init__(self, comm: Any) -> None:
        self.comm = comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self._received: np.ndarray | None = None  # reused from step to step (no page faults)

    def block(self, count: int) -> Node:
        return block(self.rank, self.size, count)

    def total(self, nodes: Sequence[Node], sums: Sequence[Partial], count: int) -> Partial:
        """The sum, written into the first piece's gradient buffer (as the one-process sum
        accumulates into its first piece) once every piece has been sent."""
        grads = sums[0].grads  # every piece in the parameters' flat layout
        flats = [s.grads.flat for s in sums]
        chunk = self._reduce_scatter(flats, count)
        self.comm.Allgatherv(chunk, [grads.flat, np.diff(chunk_bounds(len(grads.flat),
                                                                      self.size)).tolist()])
        every = [loss for ranks in self.comm.allgather([(s.mlm, s.nsp) for s in sums])
                 for loss in ranks]
        mlm, nsp = sum_pieces(self._all_pieces(count), every, count, _add_losses)
        return Partial(grads, mlm, nsp)

    def _all_pieces(self, count: int) -> list[Node]:
        """Every rank's pieces, in rank order (which is micro-batch order)."""
        return [node for r in range(self.size) for node in pieces(block(r, self.size, count),
                                                                   count)]

    def _reduce_scatter(self, flats: list[np.ndarray], count: int) -> np.ndarray:
        """This rank's chunk of the total, from every rank's pieces (``flats``: this rank's,
        each (P,))."""
        bounds = chunk_bounds(len(flats[0]), self.size)
        widths = np.diff(bounds).tolist()
        if len(flats) == 1:  # one piece: its chunks already lie in the order of the ranks
            send = flats[0]
        else:
            send = np.concatenate([flat[bounds[c]:bounds[c + 1]]
                                   for c in range(self.size) for flat in flats])
        per_rank = [len(pieces(block(r, self.size, count), count)) for r in range(self.size)]
        shape = (sum(per_rank), widths[self.rank])  # (all pieces, this rank's chunk)
        if self._received is None or self._received.shape != shape \
                or self._received.dtype != send.dtype:
            self._received = np.empty(shape, send.dtype)
        received = self._received
        self.comm.Alltoallv([send, [len(flats) * w for w in widths]],
                            [received, [n * shape[1] for n in per_rank]])
        return sum_pieces(self._all_pieces(count), list(received), count, _add_in_place)

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is true on any rank (every rank gets the same answer)."""
        return bool(self.comm.allreduce(int(flag), op=_max_op()))


def _max_op() -> Any:
    from mpi4py import MPI

    return MPI.MAX


@contextmanager
def fail_fast(comm: Any, shared: Callable[[BaseException], bool]) -> Iterator[None]:
    """Take the whole job down at once when this rank raises (its peers would otherwise wait
    forever in the next collective): one line naming the rank and the cause, then
    ``MPI_Abort``. An exception for which ``shared`` is true happens on every rank alike (it
    follows from values all ranks share) and is let through."""
    try:
        yield
    except BaseException as error:  # noqa: BLE001 - any failure of one rank ends the job
        if shared(error):
            raise
        cause = str(error) or type(error).__name__
        print(f"error: rank {comm.Get_rank()} of {comm.Get_size()} failed: "
              f"{type(error).__name__}: {cause}; the job is stopped", file=sys.stderr,
              flush=True)
        # The launcher forwards a rank's output as it reads it; on MPI_Abort it ends the job at
        # once, and a line it has not read yet is lost (seen once with MPICH's hydra).
        time.sleep(FORWARDING_SECONDS)
        comm.Abort(1)
