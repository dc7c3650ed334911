"""The special tokens: their ids and names."""

from __future__ import annotations

from bert.data.tokens import CLS, MASK, NUM_SPECIAL, PAD, SEP, SPECIAL_TOKENS, token_name


def test_token_names():
    assert [token_name(i) for i in range(6)] == ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "t4", "t5"]


def test_ids_index_the_names():
    assert [SPECIAL_TOKENS[i] for i in (PAD, CLS, SEP, MASK)] == list(SPECIAL_TOKENS)
    assert NUM_SPECIAL == len(SPECIAL_TOKENS) == 4
