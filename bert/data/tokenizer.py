"""The WordPiece tokenizer of text data: built with the ``tokenizers`` library, saved for
transformers, loaded back from a dataset file or an export directory.

The pipeline is BERT's: the BERT normaliser (clean up control characters, spaces around CJK
characters, and with ``lowercase`` also lowercase and strip accents), the BERT pre-tokeniser
(split on whitespace and punctuation), then greedy longest-match-first WordPiece over the
vocabulary learnt by ``bert.data.wordpiece``; a word it cannot spell becomes ``[UNK]``.

The special tokens keep the ids of the synthetic language, so every part of the workflow that
knows ``[PAD] [CLS] [SEP] [MASK]`` works unchanged; ``[UNK]`` comes fifth:
``[PAD]`` 0, ``[CLS]`` 1, ``[SEP]`` 2, ``[MASK]`` 3, ``[UNK]`` 4.

The synthetic language has a tokenizer too (``SyntheticTokenizer``): its text is its tokens
written out (``t4 t17 [MASK] t5``), split at whitespace, one id per token, with no ``[UNK]``.

``save`` writes what transformers' ``AutoTokenizer.from_pretrained`` reads
(``tokenizer.json``, ``tokenizer_config.json``) and ``vocab.txt`` (one entry per line, in id
order) for readers that build a WordPiece tokenizer from it.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from bert.data.tokens import CLS, SEP, SPECIAL_TOKENS, TEXT_SPECIAL_TOKENS, UNK
from bert.data.wordpiece import PREFIX
from bert.errors import DataFileError, MissingExtraError, bounded

MAX_WORD_CHARS = 100  # a longer word is [UNK], as in BERT
MISSING = "the tokenizers library is not installed: pip install -e '.[text]' to use text data"
TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "tokenizer_config.json"
VOCAB_FILE = "vocab.txt"


def _library() -> Any:
    try:
        import tokenizers
    except ImportError:
        raise MissingExtraError(MISSING) from None
    return tokenizers


def _pipeline(lowercase: bool) -> tuple[Any, Any]:
    """BERT's normaliser and pre-tokeniser."""
    tk = _library()
    return (tk.normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                          strip_accents=lowercase, lowercase=lowercase),
            tk.pre_tokenizers.BertPreTokenizer())


def count_words(texts: Iterable[str], lowercase: bool) -> Counter[str]:
    """How often each pre-tokenised word occurs in ``texts`` (normalised as the tokenizer does)."""
    normalizer, pre_tokenizer = _pipeline(lowercase)
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(w for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    return counts


def _wordpiece(vocab: Sequence[str], lowercase: bool) -> Any:
    """A ``tokenizers`` tokenizer of BERT's pipeline over ``vocab`` (ids are positions)."""
    tk = _library()
    tokenizer = tk.Tokenizer(tk.models.WordPiece(
        {piece: i for i, piece in enumerate(vocab)}, unk_token=TEXT_SPECIAL_TOKENS[UNK],
        max_input_chars_per_word=MAX_WORD_CHARS))
    tokenizer.normalizer, tokenizer.pre_tokenizer = _pipeline(lowercase)
    return tokenizer


class TextTokenizer:
    """A WordPiece tokenizer over a fixed vocabulary (ids are positions in ``vocab``).

    ``backend`` is the tokenizer transformers loads from the export (it knows the special
    tokens); ``plain``, the same without them, reads corpus text (see ``encode_corpus``)."""

    def __init__(self, vocab: Sequence[str], lowercase: bool) -> None:
        tk = _library()
        self.vocab, self.lowercase = list(vocab), lowercase
        backend = _wordpiece(self.vocab, lowercase)
        backend.decoder = tk.decoders.WordPiece(prefix=PREFIX, cleanup=True)
        self.backend = _with_specials(backend, TEXT_SPECIAL_TOKENS)
        self.plain = _wordpiece(self.vocab, lowercase)

    def encode(self, text: str) -> list[int]:
        """The ids of ``text`` as transformers' tokenizer gives them, without [CLS] and [SEP]
        around it: a special token typed in the text (``[MASK]``) is that token."""
        return self.backend.encode(text, add_special_tokens=False).ids

    def encode_corpus(self, texts: Sequence[str]) -> list[list[int]]:
        """The ids of each text of a corpus. The names of special tokens written in it are
        ordinary text, split into pieces (``[MASK]`` is ``[``, ``mask``, ``]``) as
        google-research/bert's tokenizer splits them, so that no text poses as a special token:
        every special token of an example is one the data stage put there."""
        return [e.ids for e in self.plain.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Sequence[int]) -> str:
        """The text of ``ids``: pieces joined into words, no space before punctuation."""
        return self.backend.decode(list(ids), skip_special_tokens=False)

    @property
    def digest(self) -> str:
        """The SHA-256 of the vocabulary (see ``vocab_digest``)."""
        return vocab_digest(self.vocab)

    def token(self, token_id: int) -> str:
        """The vocabulary entry of an id."""
        return self.vocab[token_id]

    def transformers_config(self, max_length: int) -> dict[str, Any]:
        """The contents of ``tokenizer_config.json``: BERT's tokenizer, our special tokens."""
        return {"tokenizer_class": "BertTokenizer", "do_lower_case": self.lowercase,
                "strip_accents": None, "tokenize_chinese_chars": True,
                "model_max_length": max_length, "clean_up_tokenization_spaces": False,
                "pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]",
                "sep_token": "[SEP]", "mask_token": "[MASK]"}

    def save(self, directory: str | Path, max_length: int) -> list[Path]:
        """Write ``tokenizer.json``, ``tokenizer_config.json`` and ``vocab.txt`` into
        ``directory``, as transformers' ``AutoTokenizer.from_pretrained`` reads them."""
        from bert.storage.atomic import replacing, write_bytes, write_json

        directory = Path(directory)
        with replacing(directory / TOKENIZER_FILE) as tmp:
            tmp.write_text(self.backend.to_str(pretty=True), encoding="utf-8")
        return [directory / TOKENIZER_FILE,
                write_json(directory / CONFIG_FILE, self.transformers_config(max_length)),
                write_bytes(directory / VOCAB_FILE, vocab_text(self.vocab))]


class SyntheticTokenizer(TextTokenizer):
    """The synthetic language's tokenizer over its vocabulary (``[PAD] [CLS] [SEP] [MASK] t4
    ...``): the text is split at whitespace and each word is one token; there is no
    ``[UNK]``, so a word outside the vocabulary is refused."""

    def __init__(self, vocab: Sequence[str]) -> None:
        tk = _library()
        self.vocab, self.lowercase = list(vocab), False
        backend = tk.Tokenizer(tk.models.WordLevel(
            {token: i for i, token in enumerate(self.vocab)}, unk_token=TEXT_SPECIAL_TOKENS[UNK]))
        backend.pre_tokenizer = tk.pre_tokenizers.WhitespaceSplit()
        self.backend = _with_specials(backend, SPECIAL_TOKENS)

    def encode(self, text: str) -> list[int]:
        """The ids of ``text``, without special tokens; DataFileError for a word that is no
        token of the language."""
        known = set(self.vocab)
        unknown = [word for word in text.split() if word not in known]
        if unknown:
            raise DataFileError(f"{unknown[0][:40]!r} is not a token of the synthetic language; "
                                f"write its tokens {' '.join(SPECIAL_TOKENS)} "
                                f"{self.vocab[len(SPECIAL_TOKENS)]} ... {self.vocab[-1]}, "
                                "separated by spaces")
        return super().encode(text)

    def transformers_config(self, max_length: int) -> dict[str, Any]:
        """The contents of ``tokenizer_config.json``: the tokenizer of ``tokenizer.json`` as it
        is (no [UNK]; BERT's tokenizer class would add one beyond the model's vocabulary)."""
        return {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": max_length,
                "model_input_names": ["input_ids", "token_type_ids", "attention_mask"],
                "clean_up_tokenization_spaces": False, "pad_token": "[PAD]",
                "cls_token": "[CLS]", "sep_token": "[SEP]", "mask_token": "[MASK]"}


def _with_specials(backend: Any, specials: Sequence[str]) -> Any:
    """``backend`` with BERT's special tokens: ``[CLS] A [SEP]`` around one text, ``[CLS] A
    [SEP] B [SEP]`` around a pair (B's token type 1), the specials never split."""
    backend.post_processor = _library().processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", CLS), ("[SEP]", SEP)])
    backend.add_special_tokens(list(specials))
    return backend


def vocab_text(vocab: Sequence[str]) -> bytes:
    """The contents of ``vocab.txt``: one vocabulary entry per line, in id order."""
    return "".join(f"{entry}\n" for entry in vocab).encode("utf-8")


def vocab_digest(vocab: Sequence[str]) -> str:
    """The SHA-256 of a vocabulary, its pieces in id order: a model records the one it was
    trained with, so that a tokenizer of another vocabulary (or ids in another order) is
    refused."""
    return hashlib.sha256("\n".join(vocab).encode("utf-8")).hexdigest()


def vocabulary_problem(vocab: object,
                       specials: Sequence[str] = TEXT_SPECIAL_TOKENS) -> str | None:
    """What makes ``vocab`` (a tokenizer.json's piece -> id) no vocabulary of ours, or None: it
    must map pieces to the ids 0 .. n-1, each once, ``specials`` first."""
    if not isinstance(vocab, dict) or not vocab:
        return "its vocabulary is empty"
    for piece, token_id in vocab.items():
        if not isinstance(token_id, int) or isinstance(token_id, bool) or token_id < 0:
            return f"its vocabulary gives {bounded(piece)} the id {bounded(token_id)}"
    ids = sorted(vocab.values())
    if ids != list(range(len(ids))):
        gap = next(i for i, token_id in enumerate(ids) if token_id != i)
        twice = gap > 0 and ids[gap] == ids[gap - 1]
        which = f"id {ids[gap]} is given twice" if twice else f"id {gap} is missing"
        return f"its {len(ids)} ids are not 0 to {len(ids) - 1}, each once ({which})"
    first = sorted(vocab, key=vocab.__getitem__)[:len(specials)]
    if tuple(first) != tuple(specials):
        return (f"its ids 0 to {len(first) - 1} are {' '.join(first)}, not the special tokens "
                f"{' '.join(specials)}")
    return None


def from_export(path: str | Path) -> TextTokenizer:
    """The tokenizer of an export directory (its ``tokenizer.json``), checked to be one of ours:
    WordPiece for text data, the synthetic language's (a word-level model) for synthetic data,
    over the ids 0 .. n-1 with the special tokens first."""
    path = Path(path)
    fix = "run `doit export` to write it"
    try:
        document = json.loads((path / TOKENIZER_FILE).read_text(encoding="utf-8"))
        vocab = document["model"]["vocab"]
        word_level = document["model"]["type"] == "WordLevel"
        specials = SPECIAL_TOKENS if word_level else TEXT_SPECIAL_TOKENS
        lowercase = False if word_level else bool(document["normalizer"]["lowercase"])
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as e:
        raise DataFileError(f"{path / TOKENIZER_FILE}: no readable tokenizer "
                            f"({type(e).__name__}); {fix}") from None
    problem = vocabulary_problem(vocab, specials)
    if problem is not None:
        raise DataFileError(f"{path / TOKENIZER_FILE}: {problem}, so it is not a tokenizer this "
                            f"workflow wrote; {fix}")
    if specials is SPECIAL_TOKENS:
        return SyntheticTokenizer(sorted(vocab, key=vocab.__getitem__))
    return TextTokenizer(sorted(vocab, key=vocab.__getitem__), lowercase)
