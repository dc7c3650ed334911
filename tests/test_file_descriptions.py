"""Every HDF5 file the workflow writes explains itself: a description on every dataset (units
where it has them, a label per axis), where the file comes from at its root, the vocabulary as
words, and str attributes for h5py; checked through h5py and, when it is installed, through
the HDF5 tools' own ``h5dump``."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import h5py
import pytest

from bert.data.datasets import make_datasets, synthetic_vocab
from tests.workflow import FILE_KINDS, tiny_project

H5DUMP = shutil.which("h5dump")
ROOT_ATTRS = ("schema", "schema_version", "params", "description", "creator", "created",
              "package_version", "python_version", "numpy_version", "h5py_version",
              "hdf5_version")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Each kind of file: the tiny project's, and the data files of text data."""
    folder = tmp_path_factory.mktemp("files")
    found = tiny_project(folder / "synthetic")
    try:
        import tokenizers  # noqa: F401
    except ImportError:
        return found
    from tests.textcorpus import text_params, write_corpus

    write_corpus(folder / "text" / "corpus")
    train, test = make_datasets(text_params(), folder / "text" / "data", folder / "text")
    return {**found, "text train": train, "text test": test}


def datasets(f: h5py.File) -> list[str]:
    names: list[str] = []
    f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return names


@pytest.mark.parametrize("kind", [*FILE_KINDS, "text train", "text test"])
def test_every_dataset_says_what_it_is(files, kind):
    if kind not in files:
        pytest.skip("text data needs pip install -e '.[text]'")
    with h5py.File(files[kind]) as f:
        for key in ROOT_ATTRS:
            assert key in f.attrs, key
            assert not isinstance(f.attrs[key], bytes), key  # str, not numpy.bytes_
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", f.attrs["created"])
        for name in datasets(f):
            attrs = f[name].attrs
            assert type(attrs["description"]) is str and len(attrs["description"]) > 10, name
            labels = [dim.label for dim in f[name].dims]
            assert len(labels) == f[name].ndim and all(labels), name
            if "loss" in name:
                assert attrs["units"] == "nats", name


def test_the_vocabulary_is_words(files):
    with h5py.File(files["train"]) as f:
        assert list(f["vocab"].asstr()[()]) == synthetic_vocab(16)
        assert f["vocab"].dims[0].label == "token id"
    if "text test" in files:
        with h5py.File(files["text test"]) as f:
            words = list(f["vocab"].asstr()[()])
            assert words[:5] == ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]"]
            assert any(word.startswith("##") for word in words)


def test_the_labels_and_axes_are_spelled_out(files):
    with h5py.File(files["test"]) as f:
        assert "-100 where no token is predicted" in f["mlm_labels"].attrs["description"]
        assert "0 = B follows A, 1 = B is a segment of another document" in (
            f["nsp_labels"].attrs["description"])
        assert [d.label for d in f["language/transition"].dims] == [
            "topic", "content token", "next content token"]
        assert "P(next token = c' | token c, topic k)" in (
            f["language/transition"].attrs["description"])
        assert "losses in nats" in f["optimum"].attrs["description"]


def h5dump(*args: str) -> str:
    return subprocess.run([H5DUMP, *args], capture_output=True, text=True, check=True,
                          timeout=60).stdout


@pytest.mark.skipif(H5DUMP is None, reason="h5dump is not installed (apt-get install "
                    "hdf5-tools)")
@pytest.mark.parametrize("kind", [*FILE_KINDS, "text test"])
def test_h5dump_shows_a_description_on_every_dataset(files, kind):
    if kind not in files:
        pytest.skip("text data needs pip install -e '.[text]'")
    text = h5dump("-A", str(files[kind]))
    blocks = re.split(r'\n\s*DATASET "', text)[1:]
    with h5py.File(files[kind]) as f:
        assert len(blocks) == len(datasets(f))
    for block in blocks:
        own = re.split(r'\n\s*(?:DATASET|GROUP) "', block)[0]  # up to the next object
        assert 'ATTRIBUTE "description"' in own, block.split('"')[0]


@pytest.mark.skipif(H5DUMP is None, reason="h5dump is not installed (apt-get install "
                    "hdf5-tools)")
def test_h5dump_prints_the_vocabulary_as_words(files):
    text = h5dump("-d", "vocab", str(files["train"]))
    assert '"[PAD]", "[CLS]", "[SEP]", "[MASK]", "t4", "t5"' in text
