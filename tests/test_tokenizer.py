"""The WordPiece tokenizer: the files we write load in transformers and give the same ids and
the same text; ``bert.load_tokenizer`` reads them back from an export or a dataset file."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("tokenizers", reason="text data needs pip install -e '.[text]'")

import bert  # noqa: E402
from bert.data.datasets import synthetic_vocab  # noqa: E402
from bert.data.tokenizer import SyntheticTokenizer, TextTokenizer, count_words  # noqa: E402
from bert.data.tokens import TEXT_SPECIAL_TOKENS  # noqa: E402
from bert.data.wordpiece import learn  # noqa: E402
from bert.errors import DataFileError  # noqa: E402

TRAINING = ("The Quick brown fox jumps over the lazy dog. Naïve café owners don't reorganise "
            "their menus! Prices: 3.14 euros, 42 dollars; (maybe) more? It's a test-case, "
            "isn't it... Straße über Ärger.") * 3
VARIED = [
    "Héllo, Wörld! The QUICK fox — 12345 naïve café",
    "don't STOP: (a) x=3.14; 'quoted' \"double\" ÀÉÎÕÜ ß æ Ω",
    "unknown characters: 中文 ☃ 𝔘 ﬁ ① ½",
    "tabs\tand\nnew lines   and spaces",
    "a [MASK] in the middle and [UNK] too",
    "reorganisation" * 10,  # longer than a word may be: [UNK]
    "",
    "   ",
]


@pytest.fixture(scope="module", params=[True, False], ids=["lowercase", "cased"])
def exported(request, tmp_path_factory):
    lowercase = request.param
    vocab = learn(count_words([TRAINING], lowercase), 90, TEXT_SPECIAL_TOKENS)
    tokenizer = TextTokenizer(vocab, lowercase)
    folder = tmp_path_factory.mktemp("export")
    tokenizer.save(folder, 64)
    return tokenizer, folder


def test_the_specials_keep_the_ids_of_the_synthetic_language():
    assert TEXT_SPECIAL_TOKENS == ("[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]")


def test_the_written_files_are_what_transformers_reads(exported):
    tokenizer, folder = exported
    assert {p.name for p in folder.iterdir()} == {"tokenizer.json", "tokenizer_config.json",
                                                  "vocab.txt"}
    config = json.loads((folder / "tokenizer_config.json").read_text())
    assert config["mask_token"] == "[MASK]" and config["model_max_length"] == 64
    assert (folder / "vocab.txt").read_text(encoding="utf-8").splitlines() == tokenizer.vocab


def test_vocab_txt_gives_a_wordpiece_reader_the_same_ids(exported):
    """A reader that builds BERT's tokenizer from vocab.txt alone (tokenizers'
    BertWordPieceTokenizer, as older transformers' BertTokenizer does) gets our ids."""
    from tokenizers import BertWordPieceTokenizer

    tokenizer, folder = exported
    theirs = BertWordPieceTokenizer(str(folder / "vocab.txt"), lowercase=tokenizer.lowercase,
                                    strip_accents=tokenizer.lowercase)
    for text in VARIED + [TRAINING]:
        assert theirs.encode(text, add_special_tokens=False).ids == tokenizer.encode(text), text


def test_same_ids_and_text_as_transformers_autotokenizer(exported):
    pytest.importorskip("transformers", reason="needs pip install -e '.[reference]'")
    from transformers import AutoTokenizer

    tokenizer, folder = exported
    theirs = AutoTokenizer.from_pretrained(folder)
    for text in VARIED + [TRAINING]:
        ids = tokenizer.encode(text)
        assert theirs(text, add_special_tokens=False)["input_ids"] == ids, text
        assert theirs.decode(ids) == tokenizer.decode(ids), text
    assert theirs("a b", "c")["input_ids"][0] == 1  # [CLS] A [SEP] B [SEP]
    assert theirs("a b", "c")["token_type_ids"][-1] == 1
    assert any(4 in tokenizer.encode(t) for t in VARIED)  # some text is unknown: [UNK]


def test_load_tokenizer_from_an_export_gives_the_same_tokenizer(exported):
    tokenizer, folder = exported
    loaded = bert.load_tokenizer(folder)
    assert loaded.vocab == tokenizer.vocab and loaded.lowercase == tokenizer.lowercase
    for text in VARIED:
        assert loaded.encode(text) == tokenizer.encode(text)


def test_load_tokenizer_without_a_tokenizer_says_so(tmp_path):
    with pytest.raises(DataFileError, match="tokenizer.json.*doit export"):
        bert.load_tokenizer(tmp_path)


SYNTHETIC = synthetic_vocab(64)


@pytest.fixture(scope="module")
def synthetic_export(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic")
    SyntheticTokenizer(SYNTHETIC).save(folder, 32)
    return folder


def test_the_synthetic_language_has_a_tokenizer_of_its_own_ids():
    tokenizer = SyntheticTokenizer(SYNTHETIC)
    assert SYNTHETIC[:6] == ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "t4", "t5"]
    assert tokenizer.encode("t4 t5") == [4, 5]
    assert tokenizer.backend.encode("t4 [MASK]  t63").ids == [1, 4, 3, 63, 2]
    assert tokenizer.decode([4, 3, 63]) == "t4 [MASK] t63"
    with pytest.raises(DataFileError, match="'t64' is not a token of the synthetic language; "
                       r"write its tokens \[PAD\] \[CLS\] \[SEP\] \[MASK\] t4 ... t63"):
        tokenizer.encode("t4 t64")


def test_a_synthetic_export_loads_in_transformers_with_our_ids(synthetic_export):
    pytest.importorskip("transformers", reason="needs pip install -e '.[reference]'")
    from transformers import AutoTokenizer

    theirs = AutoTokenizer.from_pretrained(synthetic_export)
    ours = bert.load_tokenizer(synthetic_export)
    assert isinstance(ours, SyntheticTokenizer) and ours.vocab == SYNTHETIC
    assert len(theirs) == len(SYNTHETIC)  # no [UNK] added beyond the model's vocabulary
    for text in ("t4 t5", "t63 [MASK] t4 t4", "  t9\tt10\n"):
        assert theirs(text)["input_ids"] == [1, *ours.encode(text), 2], text
    assert theirs("t4 t5")["input_ids"] == [1, 4, 5, 2]
    assert theirs.mask_token_id == 3 and theirs.pad_token_id == 0
    assert theirs("t4", "t5")["token_type_ids"] == [0, 0, 0, 1, 1]
