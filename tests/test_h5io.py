"""HDF5 I/O: round trip, atomic writes, and one clear error for every kind of bad file."""

from __future__ import annotations

import json
import platform

import h5py
import numpy as np
import pytest

from bert import __version__
from bert.errors import DataFileError, OutputError
from bert.storage import h5io, h5write

SCHEMA = "bert-from-scratch/test"
FIX = "run `make it` to regenerate it"
SPECS = {"ids": h5io.Spec(("N", "T"), "u"), "group/labels": h5io.Spec(("N",), "i")}


WORDS = np.array(["[PAD]", "t4", "naïve", "##ing", "日本"])
ABOUT = {"ids": h5io.About("token ids", axes=("example", "position")),
         "group/labels": h5io.About("a label per example, -100 where there is none",
                                    axes=("example",)),
         "group/sub/weights": h5io.About("weights", "nats"),
         "scalar": h5io.About("a number"),
         "words": h5io.About("the vocabulary", axes=("token id",))}


def write(path, **kwargs):
    arrays = {
        "ids": np.arange(4000, dtype=np.uint8).reshape(200, 20),
        "group/labels": np.arange(200, dtype=np.int16) - 100,
        "group/sub/weights": np.linspace(0, 1, 60).reshape(3, 20),
        "scalar": np.float64(2.5),
        "words": WORDS,
    }
    return h5write.write(path, arrays, schema=SCHEMA, schema_version=3, about=ABOUT,
                      creator="tests.test_h5io", params={"b": 1, "a": [1, 2]},
                      attrs={"split": "train", "count": 7},
                      group_attrs={"optimum": {"loss": 1.25, "name": "bayes"}}, **kwargs)


def read(path, **kwargs):
    return h5io.read(path, schema=SCHEMA, schema_version=3, specs=SPECS, fix=FIX,
                     **{"describe": True, **kwargs})


def assert_clear_error(path, match, **kwargs):
    with pytest.raises(DataFileError) as info:
        read(path, **kwargs)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and message.endswith(FIX) and "\n" not in message
    assert match in message, message


def test_round_trip(tmp_path):
    path = write(tmp_path / "sub" / "f.h5")
    contents = read(path, names=["ids", "group/labels", "group/sub/weights", "scalar", "words"])
    assert contents.arrays["ids"].dtype == np.uint8
    np.testing.assert_array_equal(contents.arrays["group/labels"], np.arange(200) - 100)
    np.testing.assert_array_equal(contents.arrays["group/sub/weights"],
                                  np.linspace(0, 1, 60).reshape(3, 20))
    assert contents.arrays["scalar"] == 2.5
    assert list(contents.arrays["words"]) == list(WORDS)
    own = {key: value for key, value in contents.attrs.items() if key not in h5io.ORIGIN_ATTRS}
    assert own == {"schema": SCHEMA, "schema_version": 3, "params": {"a": [1, 2], "b": 1},
                   "split": "train", "count": 7}
    assert contents.attrs["package_version"] == __version__
    assert contents.group_attrs == {"optimum": {"loss": 1.25, "name": "bayes"}}
    with h5py.File(path) as f:
        assert f.attrs["params"] == json.dumps({"a": [1, 2], "b": 1}, sort_keys=True)
        ids = f["ids"]
        assert ids.fletcher32 and ids.compression == "gzip" and ids.shuffle and ids.chunks
        assert f["words"].fletcher32 and f["words"].dtype.kind == "S"  # inside the checksums


def test_string_attributes_read_back_as_str_from_h5py(tmp_path):
    with h5py.File(write(tmp_path / "f.h5")) as f:
        assert f.attrs["split"] == "train" and type(f.attrs["split"]) is str
        assert f["optimum"].attrs["name"] == "bayes"
        assert f["ids"].attrs["description"] == "token ids"
        assert list(f["words"].asstr()[()]) == list(WORDS)


def test_every_dataset_says_what_it_is(tmp_path):
    contents = read(write(tmp_path / "f.h5"), names=())
    assert set(contents.datasets) == set(ABOUT)
    for name, about in ABOUT.items():
        info = contents.datasets[name]
        assert info.attrs["description"] == about.description, name
        assert info.attrs.get("units", "") == about.units, name
        assert info.axes == about.axes, name
    assert contents.datasets["ids"].shape == (200, 20)
    assert contents.datasets["ids"].dtype == np.uint8
    with h5py.File(tmp_path / "f.h5") as f:
        assert [dim.label for dim in f["ids"].dims] == ["example", "position"]


def test_a_dataset_without_a_description_is_refused(tmp_path):
    with pytest.raises(ValueError, match="'extra'.* no description"):
        h5write.write(tmp_path / "f.h5", {"extra": np.zeros(3)}, schema=SCHEMA, schema_version=3,
                   about={}, creator="tests")
    with pytest.raises(ValueError, match="2 axis labels for 1 dimensions"):
        h5write.write(tmp_path / "f.h5", {"x": np.zeros(3)}, schema=SCHEMA, schema_version=3,
                   about={"x": h5io.About("x", axes=("a", "b"))}, creator="tests")
    assert not (tmp_path / "f.h5").exists()


def test_the_root_says_where_the_file_comes_from(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    attrs = read(write(tmp_path / "f.h5"), names=()).attrs
    assert attrs["created"] == "2023-11-14T22:13:20Z"
    assert attrs["creator"] == f"bert-from-scratch {__version__}, tests.test_h5io"
    assert attrs["numpy_version"] == np.__version__
    assert attrs["h5py_version"] == h5py.version.version
    assert attrs["hdf5_version"] == h5py.version.hdf5_version
    assert attrs["python_version"] == platform.python_version()


def test_compression_is_optional_checksums_are_not(tmp_path):
    path = write(tmp_path / "f.h5", compress=False)
    with h5py.File(path) as f:
        assert f["ids"].compression is None and f["ids"].fletcher32


def test_chunks_are_the_whole_array_or_slabs_of_at_most_a_mebibyte():
    assert h5write.chunk_shape((200, 20), 1) == (200, 20)
    assert h5write.chunk_shape((1 << 17,), 8) == (1 << 17,)  # exactly 1 MiB
    assert h5write.chunk_shape((1000, 600), 4) == (334, 600)  # 3 near-equal slabs
    assert h5write.chunk_shape((2, 300, 1000), 8) == (1, 100, 1000)
    assert h5write.chunk_shape((3, 1 << 20), 8) == (1, 1 << 17)  # a row is 8 MiB
    assert h5write.chunk_shape((5, 2), 1 << 21) == (1, 1)  # an element is 2 MiB


def test_large_arrays_are_chunked_in_slabs_and_read_back(tmp_path):
    big = np.arange(1000 * 600, dtype=np.float32).reshape(1000, 600)
    path = h5write.write(tmp_path / "f.h5", {"a/b/big": big, "größe": np.arange(3)},
                         schema=SCHEMA, schema_version=3, creator="tests", compress=False,
                         about={"a/b/big": h5io.About("big", axes=("row", "column")),
                                "größe": h5io.About("a non-ASCII name", axes=("ä",))})
    with h5py.File(path) as f:
        assert f["a/b/big"].chunks == (334, 600) and f["a/b/big"].fletcher32
        assert [dim.label for dim in f["größe"].dims] == ["ä"]
    contents = h5io.read(path, schema=SCHEMA, schema_version=3, specs={}, fix=FIX,
                         names=["a/b/big", "größe"])
    np.testing.assert_array_equal(contents.arrays["a/b/big"], big)
    np.testing.assert_array_equal(contents.arrays["größe"], np.arange(3))


def test_same_input_same_contents_and_the_origin_alone_differs(tmp_path, monkeypatch):
    """The arrays and every attribute but those of ORIGIN_ATTRS are the same; with a fixed
    SOURCE_DATE_EPOCH, so are the bytes."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    a = write(tmp_path / "a.h5")
    assert a.read_bytes() == write(tmp_path / "b.h5").read_bytes()
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1800000000")
    c = write(tmp_path / "c.h5")
    assert a.read_bytes() != c.read_bytes()
    names = list(ABOUT)
    first, later = read(a, names=names), read(c, names=names)
    for name in names:
        assert first.arrays[name].tolist() == later.arrays[name].tolist(), name
    differ = {key for key in first.attrs if first.attrs[key] != later.attrs[key]}
    assert differ == {"created"}
    assert first.group_attrs == later.group_attrs


def test_a_malformed_source_date_epoch_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(OutputError, match="SOURCE_DATE_EPOCH is 'yesterday', not a whole number"):
        write(tmp_path / "f.h5")
    assert not (tmp_path / "f.h5").exists()


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = write(tmp_path / "f.h5")
    before = path.read_bytes()
    with pytest.raises(TypeError):
        h5write.write(path, {"bad": np.array([object()])}, schema=SCHEMA, schema_version=3)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["f.h5"]


def test_only_requested_datasets_are_read(tmp_path):
    path = write(tmp_path / "f.h5")
    assert read(path, names=()).arrays == {}
    assert list(read(path).arrays) == ["ids", "group/labels"]


def test_missing_file(tmp_path):
    assert_clear_error(tmp_path / "nope.h5", "file not found")


def test_truncated_file(tmp_path):
    path = write(tmp_path / "f.h5")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert_clear_error(path, "truncated or corrupt")


def test_empty_and_foreign_files(tmp_path):
    empty, text = tmp_path / "empty.h5", tmp_path / "text.h5"
    empty.write_bytes(b"")
    text.write_text("input_ids,labels\n1,2\n")
    assert_clear_error(empty, "empty file")
    assert_clear_error(text, "not an HDF5 file")


def test_hdf5_file_of_another_schema_or_version(tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["ids"] = np.zeros((2, 2))
    assert_clear_error(other, f"not a {SCHEMA} file")
    path = write(tmp_path / "f.h5")
    with pytest.raises(DataFileError, match="schema version 3, this code reads version 4; run"):
        h5io.read(path, schema=SCHEMA, schema_version=4, specs=SPECS, fix=FIX)
    with pytest.raises(DataFileError, match="reads version 1 or 2 .the file was written by a "
                       "newer bert-from-scratch."):
        h5io.read(path, schema=SCHEMA, schema_version=(1, 2), specs=SPECS, fix=FIX)
    assert h5io.read(path, schema=SCHEMA, schema_version=(2, 3), specs=SPECS, fix=FIX,
                     names=()).attrs["schema_version"] == 3
    assert h5io.read(path, schema=SCHEMA, schema_version=None, specs=SPECS, fix=FIX,
                     names=()).attrs["schema_version"] == 3


def test_a_changed_string_attribute_is_detected(tmp_path):
    """String attributes live in the global heap, outside HDF5's checksums; its SHA-256 catches
    a change before HDF5 reads it."""
    path = write(tmp_path / "f.h5")
    data = bytearray(path.read_bytes())
    for text in (b"label per example", b"bayes", b"train", b"example"):  # every kind of owner
        changed = bytearray(data)
        changed[bytes(data).index(text)] ^= 0x20  # a letter's case
        path.write_bytes(bytes(changed))
        assert_clear_error(path, "the strings of its attributes do not match their SHA-256 "
                                 "(global_heap_sha256)")


def test_wrong_shape_dtype_or_missing_dataset(tmp_path):
    path = write(tmp_path / "f.h5")
    assert_clear_error(path, "axis 1 should be 32 (T)", dims={"T": 32})
    specs = {**SPECS, "group/labels": h5io.Spec(("N",), "f")}
    with pytest.raises(DataFileError, match="'group/labels' has dtype int16"):
        h5io.read(path, schema=SCHEMA, schema_version=3, specs=specs, fix=FIX)
    specs = {**SPECS, "mlm_labels": h5io.Spec(("N",))}
    with pytest.raises(DataFileError, match="'mlm_labels' is missing"):
        h5io.read(path, schema=SCHEMA, schema_version=3, specs=specs, fix=FIX)
    specs = {**SPECS, "group/sub/weights": h5io.Spec((3, "N"), "f")}  # N is 200 from "ids"
    with pytest.raises(DataFileError, match=r"axis 1 should be 200 \(N\)"):
        h5io.read(path, schema=SCHEMA, schema_version=3, specs=specs, fix=FIX)


def flip_bit(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x10
    path.write_bytes(bytes(data))


def test_bit_flip_in_data_is_detected(tmp_path):
    path = write(tmp_path / "f.h5")
    with h5py.File(path) as f:
        chunk = f["ids"].id.get_chunk_info(0)
    flip_bit(path, chunk.byte_offset + chunk.size // 2)
    assert_clear_error(path, "failed reading dataset 'ids'")


def test_every_bit_flip_is_detected_or_harmless(tmp_path):
    """Flip one byte at a time across the whole file (data, metadata, attributes): each read
    either raises the clear error or returns exactly the original contents."""
    path = write(tmp_path / "f.h5")
    original = path.read_bytes()
    names = ["ids", "group/labels", "group/sub/weights", "words"]
    reference = read(path, names=names)
    detected = 0
    for offset in range(0, len(original), len(original) // 200 + 1):  # ~200 offsets
        data = bytearray(original)
        data[offset] ^= 0x04
        path.write_bytes(bytes(data))
        try:
            contents = read(path, names=names)
        except DataFileError:
            detected += 1
            continue
        assert contents.attrs == reference.attrs, offset
        assert contents.group_attrs == reference.group_attrs, offset
        assert contents.datasets == reference.datasets, offset
        for name in names:
            np.testing.assert_array_equal(contents.arrays[name], reference.arrays[name])
    assert detected > 0


def test_a_dataset_file_of_forged_size_is_refused(tmp_path):
    """A few kilobytes that declare 8 GB: refused before anything is read."""
    path = tmp_path / "forged.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", shape=(10**9,), dtype=np.float64, chunks=(10**6,),
                         compression="gzip")
        f.attrs["schema"], f.attrs["schema_version"] = "s", 1
    with pytest.raises(DataFileError, match="declares"):
        h5io.read(path, schema="s", schema_version=1, specs={"x": h5io.Spec(("N",))}, fix="x")
