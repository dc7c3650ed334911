"""One optimizer step of pretraining: forward, backward, gradient clipping, AdamW.

The one definition of a training step, used by the train loop, the benchmark and the tests.
The learning rate and the dropout generator come from the caller, so that the step itself holds
no schedule and no randomness of its own.

A batch may be cut into equal micro-batches (gradient accumulation, and the unit of work that
data-parallel processes share): each one's losses are normalised by the counts of the whole
batch, so that their gradients are parts of one sum, which is added up in the fixed order of
``bert.core.summation``. A ``Reduction`` says which micro-batches this process computes and
finishes the sum; the default is one process computing all of them.

A batch without sentence labels (no ``nsp_labels``: no sentence task) trains no sentence head
(``bert.core.model.SENTENCE_HEAD``): those parameters get no gradient, and as torch's AdamW
skips a parameter whose gradient is None (no moment update, no weight decay), they stay exactly
as they were.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from bert.core.config import BertConfig
from bert.core.flat import FlatParams
from bert.core.labels import IGNORE_INDEX
from bert.core.model import backward, forward, in_sentence_head
from bert.core.optim import AdamWConfig, adamw_step, clip_grad_norm, global_norm
from bert.core.parameters import is_decayed
from bert.core.summation import Node, pieces, split, sum_pieces
from bert.engine.pool import elementwise, for_each_whole

DropoutStreams = Callable[[int], "np.random.Generator | None"]  # micro-batch index -> generator


class NonFiniteError(ArithmeticError):
    """A loss or the gradient norm of a step is NaN or infinite; nothing was updated."""

    def __init__(self, what: str, value: float) -> None:
        super().__init__(f"the {what} is {value}")
        self.what, self.value = what, value


@dataclass(frozen=True)
class StepResult:
    """What one step measured: the losses of the batch and the gradient norm before clipping."""

    losses: dict[str, float]  # "mlm", "nsp" (the sentence task's; 0 without one), "total"
    grad_norm: float


@dataclass
class Partial:
    """The sum over some micro-batches: gradients in the parameters' flat layout, and the MLM
    and NSP losses (each already divided by the whole batch's count)."""

    grads: FlatParams
    mlm: float
    nsp: float


def add_partials(a: Partial, b: Partial) -> Partial:
    """a + b, accumulated into ``a``'s arrays (in one pass over their flat buffers, in blocks
    over the compute pool)."""
    elementwise(np.add, a.grads.flat, b.grads.flat, out=a.grads.flat)
    a.mlm += b.mlm
    a.nsp += b.nsp
    return a


class Reduction(Protocol):
    """Who computes which micro-batches, and how their sums meet."""

    rank: int  # this process among those sharing the work (0: the one that writes)

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` holds on any of the processes (the same answer on all)."""

    def block(self, count: int) -> Node:
        """The micro-batches ``[lo, hi)`` of ``0 … count-1`` that this process computes."""

    def total(self, nodes: Sequence[Node], sums: Sequence[Partial], count: int) -> Partial:
        """The sum over all ``count`` micro-batches, the same on every process, from this
        process's pieces ``nodes`` (see ``bert.core.summation``) and their ``sums`` (whose
        arrays it may reuse for the result)."""


class OneProcess:
    """The default reduction: this process computes every micro-batch."""

    rank = 0

    def any(self, flag: bool) -> bool:
        return flag

    def block(self, count: int) -> Node:
        return (0, count)

    def total(self, nodes: Sequence[Node], sums: Sequence[Partial], count: int) -> Partial:
        return sum_pieces(nodes, sums, count, add_partials)


class PieceSums:
    """The sums of this process's pieces (``bert.core.summation``), made as its micro-batches
    finish, in any order and on any thread: a node of the tree is added, left + right as
    ``tree_sum`` adds it, by the thread that brings the second of its two children. So the sums
    have the tree's bits, the additions overlap the micro-batches still running, and a partial
    sum is freed as soon as it is added in (at most one per level of the tree and thread)."""

    def __init__(self, nodes: Sequence[Node]) -> None:
        self._parents: dict[Node, tuple[Node, bool]] = {}  # child -> (parent, is left child)
        for node in nodes:
            self._link(node)
        self._known: dict[Node, Partial] = {}
        self._lock = threading.Lock()

    def _link(self, node: Node) -> None:
        lo, hi = node
        if hi - lo > 1:
            mid = split(lo, hi)
            for child, left in (((lo, mid), True), ((mid, hi), False)):
                self._parents[child] = (node, left)
                self._link(child)

    def put(self, node: Node, value: Partial) -> None:
        """The sum of ``node`` is ``value``; add it up the tree as far as its siblings allow."""
        while True:
            with self._lock:
                if node not in self._parents:  # a piece: the top of this process's tree
                    self._known[node] = value
                    return
                parent, left = self._parents[node]
                sibling = (node[1], parent[1]) if left else (parent[0], node[0])
                other = self._known.pop(sibling, None)
                if other is None:  # the sibling's thread will add this one
                    self._known[node] = value
                    return
            value = add_partials(value, other) if left else add_partials(other, value)
            node = parent

    def sums(self, nodes: Sequence[Node]) -> list[Partial]:
        return [self._known[node] for node in nodes]


def batch_gradients(
    params: FlatParams, config: BertConfig, batch: Mapping[str, np.ndarray], *,
    rng: np.random.Generator | DropoutStreams | None, mlm_weight: float = 1.0,
    nsp_weight: float = 1.0, micro_batches: int = 1, reduction: Reduction | None = None,
    layers: str = "fast",
) -> Partial:
    """The gradient of the batch's total loss and its two losses, summed over micro-batches
    (the arguments as for ``training_step``): the forward and backward passes of a step.

    This process's micro-batches run on the compute threads, each whole on one thread
    (``bert.engine.pool.for_each_whole``), when each has a dropout stream of its own (or there
    is no dropout); with one generator for all, one after the other, in order. Either way they
    are added up in the tree's order (``PieceSums``), so the bits do not depend on the thread
    count.
    """
    B = len(batch["input_ids"])
    size = B // micro_batches
    normalizers = (int(np.count_nonzero(np.asarray(batch["mlm_labels"]) != IGNORE_INDEX)), B)
    reduction = reduction or OneProcess()
    lo, hi = reduction.block(micro_batches)
    nodes = pieces((lo, hi), micro_batches)
    sums = PieceSums(nodes)
    streams = [rng(i) if callable(rng) else rng for i in range(lo, hi)]  # made in order, here

    def task(i: int) -> None:
        rows = slice((lo + i) * size, (lo + i + 1) * size)
        micro = {name: values[rows] for name, values in batch.items()}
        losses, cache = forward(params, config, micro, streams[i], mlm_weight, nsp_weight,
                                normalizers, layers)
        sums.put((lo + i, lo + i + 1),
                 Partial(backward(params, config, cache), losses["mlm"], losses["nsp"]))

    if rng is None or callable(rng):
        for_each_whole(hi - lo, task)
    else:  # one generator: its draws must follow the micro-batches' order
        for i in range(hi - lo):
            task(i)
    return reduction.total(nodes, sums.sums(nodes), micro_batches)


def training_step(
    params: FlatParams,
    config: BertConfig,
    batch: Mapping[str, np.ndarray],
    optimizer: dict,
    *,
    lr: float,
    adamw: AdamWConfig,
    max_grad_norm: float,
    rng: np.random.Generator | DropoutStreams | None,
    mlm_weight: float = 1.0,
    nsp_weight: float = 1.0,
    micro_batches: int = 1,
    reduction: Reduction | None = None,
    layers: str = "fast",
) -> StepResult:
    """Update ``params`` and ``optimizer`` (``bert.core.optim`` state) in place from one batch.

    batch: the five example arrays, (B, T) and (B,), B a multiple of ``micro_batches``; micro-
    batch i is rows ``[i B/m, (i+1) B/m)``; without ``nsp_labels`` there is no sentence loss
    and the sentence head is left exactly as it is (see the module docstring). Dropout draws
    from ``rng``, or from ``rng(i)`` for micro-batch i when it is a function. The gradient's
    global norm is clipped to ``max_grad_norm`` (0: no clipping). Raises NonFiniteError, before
    anything is updated, when the loss or the gradient norm is not finite. Weight decay follows
    ``decay_rule``. ``layers``: the layer functions, as for ``bert.core.model``.
    """
    total = batch_gradients(params, config, batch, rng=rng, mlm_weight=mlm_weight,
                            nsp_weight=nsp_weight, micro_batches=micro_batches,
                            reduction=reduction, layers=layers)
    losses = {"mlm": total.mlm, "nsp": total.nsp,
              "total": mlm_weight * total.mlm + nsp_weight * total.nsp}
    if not math.isfinite(losses["total"]):
        raise NonFiniteError("loss", losses["total"])
    grads = total.grads
    norm = clip_grad_norm(grads, max_grad_norm) if max_grad_norm > 0 else global_norm(grads)
    if not math.isfinite(norm):
        raise NonFiniteError("gradient norm", norm)
    adamw_step(params, grads, optimizer, lr, adamw, decay_rule(batch))
    return StepResult(losses, norm)


def decay_rule(batch: Mapping[str, np.ndarray]) -> Callable[[str], bool]:
    """Which parameters AdamW decays on this batch: ``parameters.is_decayed``, and without
    sentence labels none of the sentence head, which then has no gradient.

    torch's AdamW skips a parameter whose gradient is None altogether. Here such a parameter
    has a zero gradient and, as no step of the run gives it one, zero moments, so that AdamW's
    update of it is exactly 0: leaving out its weight decay leaves it bit for bit unchanged.
    """
    if "nsp_labels" in batch:
        return is_decayed
    return lambda name: is_decayed(name) and not in_sentence_head(name)
