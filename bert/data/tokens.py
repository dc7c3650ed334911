"""The special tokens and their ids, shared by the data, the model's config and the views.

The vocabulary starts with the 4 special tokens; the synthetic language's content tokens follow
as ``t4``, ``t5``, ... Text data (``bert.data.tokenizer``) has a fifth, ``[UNK]``, then its
WordPiece pieces.
"""

from __future__ import annotations

PAD, CLS, SEP, MASK = 0, 1, 2, 3
SPECIAL_TOKENS = ("[PAD]", "[CLS]", "[SEP]", "[MASK]")
NUM_SPECIAL = len(SPECIAL_TOKENS)
UNK = NUM_SPECIAL  # text data only
TEXT_SPECIAL_TOKENS = (*SPECIAL_TOKENS, "[UNK]")
NUM_TEXT_SPECIAL = len(TEXT_SPECIAL_TOKENS)


def token_name(token_id: int) -> str:
    """``[CLS]`` for a special token, ``t17`` for content token id 17."""
    return SPECIAL_TOKENS[token_id] if token_id < NUM_SPECIAL else f"t{token_id}"


def synthetic_vocab(vocab_size: int) -> list[str]:
    """The synthetic language's vocabulary in id order: ``[PAD] [CLS] [SEP] [MASK] t4 ...``."""
    return [*SPECIAL_TOKENS, *map(token_name, range(NUM_SPECIAL, vocab_size))]
