"""The one order in which the gradients of a batch's micro-batches are summed.

Floating-point addition is not associative, so a sum is reproducible only if its order is
fixed. Here it is a binary tree over the micro-batch indices ``0 … m-1`` that depends on ``m``
alone: the node covering ``[lo, hi)`` is the sum of its left child ``[lo, mid)`` and its right
child ``[mid, hi)``, where ``mid - lo`` is the largest power of two below ``hi - lo``. A process
that computes a contiguous block of micro-batches sums the largest subtrees inside its block
(its *pieces*); whoever holds the pieces of every block finishes the tree above them. Each
addition of the tree is thus the same, whatever the number of processes and whoever does it,
and so is every bit of the result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

V = TypeVar("V")
Node = tuple[int, int]  # [lo, hi): the micro-batches a node of the tree sums


def split(lo: int, hi: int) -> int:
    """Where the node ``[lo, hi)`` (two or more leaves) splits into its two children."""
    return lo + (1 << ((hi - lo - 1).bit_length() - 1))


def pieces(block: Node, count: int) -> list[Node]:
    """The largest nodes of the tree over ``count`` micro-batches inside ``block``, in order."""
    found: list[Node] = []

    def visit(lo: int, hi: int) -> None:
        if block[0] <= lo and hi <= block[1]:
            found.append((lo, hi))
        elif lo < block[1] and block[0] < hi:
            mid = split(lo, hi)
            visit(lo, mid)
            visit(mid, hi)

    visit(0, count)
    return found


def tree_sum(node: Node, value: Callable[[Node], V | None], add: Callable[[V, V], V]) -> V:
    """The sum of ``node``: ``value(n)`` for a node whose sum is known (a leaf, a piece),
    else its children's sums added left + right by ``add`` (which may reuse its first
    argument). Children are finished left to right, so at most one partial sum per level of
    the tree is alive at a time."""
    known = value(node)
    if known is not None:
        return known
    lo, hi = node
    mid = split(lo, hi)
    return add(tree_sum((lo, mid), value, add), tree_sum((mid, hi), value, add))


def sum_pieces(nodes: Sequence[Node], sums: Sequence[V], count: int,
               add: Callable[[V, V], V]) -> V:
    """The sum over all ``count`` micro-batches from the sums of pieces that cover them."""
    by_node = dict(zip(nodes, sums, strict=True))
    return tree_sum((0, count), by_node.get, add)
