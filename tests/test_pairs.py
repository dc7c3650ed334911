"""Sentence pairs from documents (google-research/bert's construction) and their masking."""

from __future__ import annotations

import itertools

import numpy as np

from bert.core.labels import IGNORE_INDEX as IGNORE
from bert.data.pairs import (
    Pair,
    document_pairs,
    examples_from_pairs,
    full_sentences,
    mask_text,
    pack,
    pack_sequences,
    truncate_pair,
)
from bert.data.tokens import CLS, MASK, PAD, SEP

FIRST, V = 5, 1000  # the first WordPiece id after the specials, the vocabulary size


def documents(num_docs: int = 8, sentences: int = 20) -> list[list[list[int]]]:
    """Documents whose tokens say where they come from: document d, sentence s, token k is
    ``FIRST + 100 d + s`` (one id per sentence, so any cut can be traced back)."""
    rng = np.random.default_rng(1)
    return [[[FIRST + 100 * d + s] * int(rng.integers(2, 9)) for s in range(sentences)]
            for d in range(num_docs)]


def all_pairs(docs, sequence_length=32, short=0.1, seed=0) -> list[Pair]:
    rng = np.random.default_rng(seed)
    return [p for i in range(len(docs))
            for p in document_pairs(rng, docs, i, sequence_length, short,
                                    [*docs[:i], *docs[i + 1:]])]


def origin(token: int) -> tuple[int, int]:
    return divmod(token - FIRST, 100)  # (document, sentence)


def test_a_follows_b_within_a_document_or_b_comes_from_another():
    docs = documents()
    pairs = all_pairs(docs)
    for a, b, is_random in pairs:
        (doc_a, last_a), (doc_b, first_b) = origin(a[-1]), origin(b[0])
        if is_random:
            assert doc_b != doc_a
        else:
            assert doc_b == doc_a and first_b >= last_a  # B continues after A (maybe truncated)
            assert {origin(t)[0] for t in a + b} == {doc_a}
        sentences_a = [origin(t)[1] for t in a]
        assert sentences_a == sorted(sentences_a)  # A is whole sentences in order


def test_labels_are_balanced_and_pairs_fit():
    pairs = all_pairs(documents(num_docs=40, sentences=40), seed=3)
    share = np.mean([p.label for p in pairs])
    assert len(pairs) > 300 and 0.45 < share < 0.62  # 1/2, plus the one-sentence chunks
    assert all(1 <= len(p.a) and 1 <= len(p.b) and len(p.a) + len(p.b) <= 29 for p in pairs)
    lengths = np.array([len(p.a) + len(p.b) for p in pairs])
    assert (lengths == 29).mean() > 0.5  # most are full; the short ones are rarer


def test_truncation_cuts_the_longer_segment_from_either_end():
    rng = np.random.default_rng(0)
    a, b = list(range(20)), list(range(100, 104))
    ta, tb = truncate_pair(rng, a, b, 10)
    assert tb == b and len(ta) == 6
    assert ta == a[a.index(ta[0]):a.index(ta[0]) + 6]  # a contiguous piece
    cuts = {truncate_pair(np.random.default_rng(s), a, b, 10)[0][0] for s in range(20)}
    assert len(cuts) > 2  # from the front sometimes, the back other times
    ta, tb = truncate_pair(rng, list(range(8)), list(range(100, 108)), 10)
    assert len(ta) == len(tb) == 5


def test_packing_and_segment_ids():
    arrays = pack([Pair([7, 8], [9], False), Pair([7], [8, 9, 10], True)], 8, V)
    np.testing.assert_array_equal(arrays["input_ids"][0], [CLS, 7, 8, SEP, 9, SEP, PAD, PAD])
    np.testing.assert_array_equal(arrays["token_type_ids"][0], [0, 0, 0, 0, 1, 1, 0, 0])
    np.testing.assert_array_equal(arrays["attention_mask"][1], [1, 1, 1, 1, 1, 1, 1, 0])
    np.testing.assert_array_equal(arrays["token_type_ids"][1], [0, 0, 0, 1, 1, 1, 1, 0])
    np.testing.assert_array_equal(arrays["nsp_labels"], [0, 1])


def test_masking_rates_and_never_a_special_token():
    rng = np.random.default_rng(0)
    pairs = [Pair(list(rng.integers(FIRST, V, size=10)), list(rng.integers(FIRST, V, size=12)),
                  bool(i % 2)) for i in range(4000)]
    ex = examples_from_pairs(rng, pairs, 32, FIRST, V, None, 0.15)
    ids, labels = ex["input_ids"].astype(int), ex["mlm_labels"].astype(int)
    original = pack(pairs, 32, V)["input_ids"]
    content = original >= FIRST
    selected = labels != IGNORE
    assert not (selected & ~content).any()
    np.testing.assert_array_equal(labels[selected], original[selected])
    np.testing.assert_array_equal(ids[~selected], original[~selected])
    assert abs(selected.sum() / content.sum() - 0.15) < 0.005
    masked = (ids[selected] == MASK).mean()
    kept = (ids[selected] == labels[selected]).mean()
    assert abs(masked - 0.8) < 0.01 and abs(kept - 0.1 - 0.1 / (V - FIRST)) < 0.01
    assert ids[selected & (ids != MASK)].min() >= FIRST  # random tokens are WordPiece tokens


def test_whole_word_masking_selects_all_pieces_of_a_word():
    continuation = np.zeros(V, dtype=bool)
    continuation[500:] = True  # ids 500.. are ## pieces
    rng = np.random.default_rng(0)
    # 40000 words: a head piece, then 0 to 2 ## pieces; cut into rows of 30 between [CLS], [SEP]
    continues = rng.integers(0, 3, size=40000)
    tokens = rng.integers(500, V, size=40000 + continues.sum())
    tokens[np.arange(40000) + np.cumsum(continues) - continues] = rng.integers(FIRST, 500, 40000)
    rows = (len(tokens) - 1) // 30
    ids = np.column_stack([np.full(rows, CLS), tokens[:rows * 30].reshape(rows, 30),
                           np.full(rows, SEP)])
    _, labels = mask_text(rng, ids, FIRST, V, continuation, 0.15)
    selected = labels != IGNORE
    follows = continuation[ids] & (ids >= FIRST)
    follows[:, 0] = False
    prev_content = np.zeros_like(follows)
    prev_content[:, 1:] = ids[:, :-1] >= FIRST
    inner = follows & prev_content  # a ## piece after a piece of its word
    np.testing.assert_array_equal(selected[:, 1:][inner[:, 1:]],
                                  selected[:, :-1][inner[:, 1:]])
    heads = (ids >= FIRST) & ~inner
    assert abs(selected[heads].mean() - 0.15) < 0.01
    assert not selected[:, 0].any() and not selected[:, -1].any()


def sop_pairs(docs, sequence_length=32, short=0.1, seed=0) -> list[Pair]:
    rng = np.random.default_rng(seed)
    return [p for i in range(len(docs))
            for p in document_pairs(rng, docs, i, sequence_length, short, [], "sop")]


def test_sentence_order_pairs_are_one_document_in_order_or_swapped():
    pairs = sop_pairs(documents(num_docs=40, sentences=40), seed=3)
    assert len(pairs) > 300
    for a, b, swapped in pairs:
        assert {origin(t)[0] for t in a + b} == {origin(a[0])[0]}  # one document
        first, second = (b, a) if swapped else (a, b)
        sentences = [origin(t)[1] for t in first + second]
        assert sentences == sorted(sentences)  # consecutive text, in the document's order
        assert 1 <= len(a) and 1 <= len(b) and len(a) + len(b) <= 29
    assert 0.45 < np.mean([p.label for p in pairs]) < 0.55
    # the cut between the two falls after any of the chunk's sentences
    seconds = [len({origin(t)[1] for t in (a if swapped else b)}) for a, b, swapped in pairs]
    firsts = [len({origin(t)[1] for t in (b if swapped else a)}) for a, b, swapped in pairs]
    assert max(seconds) > 2 and max(firsts) > 2


def test_a_one_sentence_chunk_is_cut_in_two_for_sentence_order():
    """ALBERT would pair a lone long sentence with a random B; here it becomes two parts of
    itself (a one-token sentence gives no pair)."""
    docs = [[[FIRST + 100 * d + k for k in range(40)], [FIRST + 100 * d + 99]] for d in range(30)]
    pairs = sop_pairs(docs, short=0.0)
    assert len(pairs) == 30  # the long sentence of each document; the last token alone: none
    for a, b, swapped in pairs:
        first, second = (b, a) if swapped else (a, b)
        tokens = first + second  # two pieces of the sentence, each cut by the truncation
        assert np.all(np.diff(tokens) > 0) and len(tokens) == 29
        assert len({origin(t)[0] for t in tokens}) == 1 and max(origin(t)[1] for t in tokens) < 40


def test_full_sentences_pack_whole_sentences_across_documents():
    docs = documents(num_docs=6, sentences=10)
    docs[2][3] = [FIRST + 203] * 70  # longer than a sequence: cut in pieces
    sequences = full_sentences(np.random.default_rng(0), docs, 32, 0.0)
    assert all(1 <= len(s) <= 30 for s in sequences)
    stream = [t for s in sequences for t in s]
    # nothing lost or reordered: the documents in order, a [SEP] where one ends in a sequence
    joined = [t for s in sequences for t in s if t != SEP]
    assert joined == [t for d in docs for s in d for t in s]
    for s in sequences:
        for left, right in itertools.pairwise(s):
            if right == SEP:
                assert origin(left)[1] == 9  # after a document's last sentence
            elif left != SEP:
                assert origin(left)[0] == origin(right)[0]  # else within one document
    assert stream.count(SEP) >= 2  # sequences do run on into the next document
    # whole sentences: the next sequence starts a new sentence (but in the one cut in pieces)
    for before, after in itertools.pairwise(sequences):
        assert origin(after[0]) != origin(before[-1]) or origin(after[0]) == (2, 3)
    assert np.mean([len(s) for s in sequences[:-1]]) > 24  # packed up to the length


def test_full_sentences_short_targets():
    docs = documents(num_docs=20, sentences=30)
    lengths = [len(s) for s in full_sentences(np.random.default_rng(1), docs, 32, 0.5)]
    assert min(lengths) < 10 and max(lengths) <= 30
    assert 0.3 < np.mean(np.array(lengths) < 22) < 0.7


def test_packing_sequences_without_a_sentence_task():
    arrays = pack_sequences([[7, 8, SEP, 9], [7]], 8)
    np.testing.assert_array_equal(arrays["input_ids"][0], [CLS, 7, 8, SEP, 9, SEP, PAD, PAD])
    np.testing.assert_array_equal(arrays["input_ids"][1], [CLS, 7, SEP, PAD, PAD, PAD, PAD, PAD])
    assert not arrays["token_type_ids"].any() and "nsp_labels" not in arrays
    np.testing.assert_array_equal(arrays["attention_mask"][1], [1, 1, 1, 0, 0, 0, 0, 0])
