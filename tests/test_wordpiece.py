"""The WordPiece learner: merges by count with a fixed tie-break, the same vocabulary every time."""

from __future__ import annotations

from collections import Counter

from bert.data.wordpiece import alphabet, join_pieces, learn, split_word

SPECIALS = ("[PAD]", "[UNK]")


def test_split_and_join():
    assert split_word("cat") == ["c", "##a", "##t"]
    assert join_pieces("c", "##a") == "ca"
    assert join_pieces("##a", "##t") == "##at"


def test_alphabet_then_merges_by_count():
    words = Counter({"abab": 10, "ab": 3, "cd": 2})
    vocab = learn(words, 100, SPECIALS)
    assert vocab[:2] == list(SPECIALS)
    assert vocab[2:2 + len(alphabet(words))] == ["##a", "##b", "##d", "a", "c"]
    merges = vocab[2 + len(alphabet(words)):]
    # a ##b occurs 23 times, ##a ##b 10 times, c ##d 2 times
    assert merges[0] == "ab"
    assert "cd" in merges and merges.index("ab") < merges.index("cd")


def test_ties_broken_by_the_pair_and_the_size_limit_respected():
    words = Counter({"xy": 5, "ab": 5})  # equal counts: (a, ##b) sorts before (x, ##y)
    vocab = learn(words, 7, SPECIALS)
    assert len(vocab) == 7 and vocab[-1] == "ab"
    assert learn(words, 100, SPECIALS)[-2:] == ["ab", "xy"]


def test_the_same_counts_in_any_insertion_order_give_the_same_vocabulary():
    text = ("the quick brown fox jumps over the lazy dog while the other fox sleeps and the "
            "dog barks at the foxes that jump").split()
    forward, backward = Counter(text), Counter(reversed(text))
    assert list(forward) != list(backward)
    assert learn(forward, 60, SPECIALS) == learn(backward, 60, SPECIALS)
