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

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from bert.data.tokens import CLS, SEP, SPECIAL_TOKENS, TEXT_SPECIAL_TOKENS, UNK
from bert.data.wordpiece import PREFIX
from bert.errors import DataFileError, MissingExtraError

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


class TextTokenizer:
    """A WordPiece tokenizer over a fixed vocabulary (ids are positions in ``vocab``)."""

    def __init__(self, vocab: Sequence[str], lowercase: bool) -> None:
        tk = _library()
        self.vocab, self.lowercase = list(vocab), lowercase
        backend = tk.Tokenizer(tk.models.WordPiece(
            {piece: i for i, piece in enumerate(self.vocab)}, unk_token=TEXT_SPECIAL_TOKENS[UNK],
            max_input_chars_per_word=MAX_WORD_CHARS))
        backend.normalizer, backend.pre_tokenizer = _pipeline(lowercase)
        backend.decoder = tk.decoders.WordPiece(prefix=PREFIX, cleanup=True)
        self.backend = _with_specials(backend, TEXT_SPECIAL_TOKENS)

    def encode(self, text: str) -> list[int]:
        """The ids of ``text``, without special tokens."""
        return self.backend.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """The ids of each text, without special tokens."""
        return [e.ids for e in self.backend.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Sequence[int]) -> str:
        """The text of ``ids``: pieces joined into words, no space before punctuation."""
        return self.backend.decode(list(ids), skip_special_tokens=False)

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


def from_export(path: str | Path) -> TextTokenizer:
    """The tokenizer of an export directory (its ``tokenizer.json``): WordPiece for text data,
    the synthetic language's (a word-level model) for synthetic data."""
    path = Path(path)
    try:
        document = json.loads((path / TOKENIZER_FILE).read_text(encoding="utf-8"))
        vocab = document["model"]["vocab"]
        if document["model"]["type"] == "WordLevel":
            return SyntheticTokenizer(sorted(vocab, key=vocab.__getitem__))
        lowercase = bool(document["normalizer"]["lowercase"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataFileError(f"{path / TOKENIZER_FILE}: no readable tokenizer "
                            f"({type(e).__name__}); run `doit export` to write "
                            "it") from None
    return TextTokenizer(sorted(vocab, key=vocab.__getitem__), lowercase)
