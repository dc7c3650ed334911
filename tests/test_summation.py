"""The fixed summation tree over micro-batches: its shape, and its independence of who sums."""

from __future__ import annotations

import numpy as np
import pytest

from bert.core.summation import pieces, split, sum_pieces, tree_sum


def leaves_sum(values: list[np.ndarray], node: tuple[int, int]) -> np.ndarray:
    return tree_sum(node, lambda n: values[n[0]].copy() if n[1] - n[0] == 1 else None,
                    lambda a, b: np.add(a, b, out=a))


def test_the_tree_splits_at_the_largest_power_of_two_below_the_size():
    assert [split(0, n) for n in (2, 3, 4, 5, 8, 9, 12)] == [1, 2, 2, 4, 4, 8, 8]
    assert split(8, 12) == 10


def test_pieces_are_the_largest_subtrees_inside_a_block():
    assert pieces((0, 8), 8) == [(0, 8)]
    assert pieces((4, 8), 8) == [(4, 8)]
    assert pieces((0, 3), 6) == [(0, 2), (2, 3)]
    assert pieces((3, 6), 6) == [(3, 4), (4, 6)]
    assert pieces((4, 8), 12) == [(4, 8)]


@pytest.mark.parametrize("count", [1, 2, 3, 4, 6, 8, 12])
def test_any_split_into_contiguous_blocks_gives_the_same_bits(count):
    rng = np.random.default_rng(count)
    # float32 values of mixed magnitudes, so that the order of the additions shows in the bits
    values = [(rng.normal(size=1000) * 10.0 ** rng.integers(-4, 4, size=1000)).astype(np.float32)
              for _ in range(count)]
    whole = leaves_sum(values, (0, count))
    for ranks in (r for r in range(1, count + 1) if count % r == 0):
        share = count // ranks
        nodes = [n for r in range(ranks) for n in pieces((r * share, (r + 1) * share), count)]
        sums = [leaves_sum(values, node) for node in nodes]
        total = sum_pieces(nodes, sums, count, lambda a, b: np.add(a, b, out=a))
        np.testing.assert_array_equal(total, whole)
    in_index_order = values[0].copy()
    for value in values[1:]:
        in_index_order += value
    np.testing.assert_allclose(whole, in_index_order, rtol=1e-4, atol=1e-3)
    if count >= 4:  # the tree is not the left-to-right order, and it shows
        assert not np.array_equal(whole, in_index_order)
