"""Learning a WordPiece vocabulary from word counts, deterministically.

The vocabulary is learnt as BERT's is (and as the ``tokenizers`` trainer does): every word starts
split into characters, the first as is and the others with the continuation prefix ``##``; then
the most frequent pair of adjacent pieces is merged into one new piece, again and again, until
the vocabulary is full or no pair is left. Ties are broken by the pair itself, in code-point
order, so the same counts always give the same vocabulary, byte for byte (the ``tokenizers``
trainer breaks ties by hash-map order, which changes from run to run).

The vocabulary: the special tokens, then the alphabet (sorted), then the merged pieces in the
order they were made.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Mapping, Sequence

PREFIX = "##"  # marks a piece that continues a word


def split_word(word: str) -> list[str]:
    """A word's initial pieces: its characters, all but the first with the ``##`` prefix."""
    return [word[0], *(PREFIX + c for c in word[1:])]


def join_pieces(left: str, right: str) -> str:
    """The piece made by merging two adjacent pieces."""
    return left + right.removeprefix(PREFIX)


def alphabet(words: Mapping[str, int]) -> list[str]:
    """The initial pieces of every word, sorted."""
    return sorted({piece for word in words for piece in split_word(word)})


def learn(words: Mapping[str, int], vocab_size: int, specials: Sequence[str]) -> list[str]:
    """The vocabulary (at most ``vocab_size`` pieces, specials first) learnt from word counts.

    Pair counts are kept up to date incrementally: a merge only revisits the words holding the
    merged pair. The best pair comes from a heap of (-count, pair) entries, where an entry whose
    count is out of date is skipped.
    """
    vocab = [*specials, *alphabet(words)]
    known = set(vocab)
    order = sorted(words)  # a fixed order of the words
    counts = [words[w] for w in order]
    pieces = [split_word(w) for w in order]
    pair_count: dict[tuple[str, str], int] = defaultdict(int)
    where: dict[tuple[str, str], set[int]] = defaultdict(set)  # the words holding a pair
    for i, split in enumerate(pieces):
        for pair in zip(split, split[1:], strict=False):
            pair_count[pair] += counts[i]
            where[pair].add(i)
    heap = [(-c, pair) for pair, c in pair_count.items()]
    heapq.heapify(heap)
    while len(vocab) < vocab_size and heap:
        negative, pair = heapq.heappop(heap)
        if pair_count.get(pair, 0) != -negative or negative == 0:
            continue  # out of date
        merged = join_pieces(*pair)
        if merged not in known:
            known.add(merged)
            vocab.append(merged)
        changed: dict[tuple[str, str], int] = defaultdict(int)
        for i in sorted(where.pop(pair)):
            old = pieces[i]
            new = _merge(old, pair, merged)
            for p in zip(old, old[1:], strict=False):
                changed[p] -= counts[i]
            for p in zip(new, new[1:], strict=False):
                changed[p] += counts[i]
                where[p].add(i)
            pieces[i] = new
        del pair_count[pair]
        for p, delta in sorted(changed.items()):
            if p == pair or delta == 0:
                continue
            pair_count[p] += delta
            if pair_count[p] > 0:
                heapq.heappush(heap, (-pair_count[p], p))
            else:
                del pair_count[p]
    return vocab


def _merge(split: list[str], pair: tuple[str, str], merged: str) -> list[str]:
    """``split`` with every occurrence of the adjacent ``pair`` (left to right) merged."""
    out, i = [], 0
    while i < len(split):
        if i + 1 < len(split) and split[i] == pair[0] and split[i + 1] == pair[1]:
            out.append(merged)
            i += 2
        else:
            out.append(split[i])
            i += 1
    return out
