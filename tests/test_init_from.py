"""Starting from weights of elsewhere (``model.init_from``: our weights file, a checkpoint or a
transformers directory): whatever cannot be right is refused in one line, quickly, before it
can make a model of NaNs, fill the memory or read a file outside the directory."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from bert.__main__ import main
from bert.core.config import BertConfig, param_shapes
from bert.storage import checkpoint as ckpt
from tests.workflow import cli_error, layout_of, tiny, write_params

MODEL = "artifacts/runs/params/model.h5"
EXPORT = "artifacts/runs/params/export"


def init_from(project: Path, capsys, source: str) -> str:
    """The one error line of the init stage starting from ``source``."""
    write_params(project, tiny(model={"init_from": source}))
    return cli_error(capsys, "init")


def test_nan_weights_are_refused(project, capsys):
    with h5py.File(project / MODEL, "r+") as f:
        f["bert.encoder.layer.0.output.dense.bias"][3] = np.inf
    line = init_from(project, capsys, MODEL)
    assert "tensor 'bert.encoder.layer.0.output.dense.bias' holds NaN or infinite values" in line


def test_a_dataset_is_not_weights(project, capsys):
    data = layout_of(project, tiny()).train_data.relative_to(project)
    line = init_from(project, capsys, str(data))
    assert "this is a dataset, not a weights file or a training checkpoint" in line


def test_a_name_too_long_for_any_file_is_one_short_line(project, capsys):
    line = init_from(project, capsys, "x" * 100_000)
    assert "model.init_from: " in line and "does not exist" in line and len(line) < 400


def test_a_weights_file_declaring_a_huge_vocabulary_is_refused(project, capsys):
    config, weights = ckpt.load_weights(project / MODEL, "fix")
    huge = BertConfig(**{**dataclasses.asdict(config), "vocab_size": 100_000_000})
    ckpt.save_weights(project / "huge.h5", huge, {}, {})
    with h5py.File(project / "huge.h5", "r+") as f:
        for name, shape in param_shapes(huge).items():
            f.create_dataset(name, shape=shape, dtype=np.float32)  # declared, never written
    assert (project / "huge.h5").stat().st_size < 100_000
    started = time.perf_counter()
    line = init_from(project, capsys, "huge.h5")
    assert "declares (100000000, 16)" in line and "but stores only 0 bytes" in line
    assert time.perf_counter() - started < 5


# --- a transformers directory --------------------------------------------------------------------

@pytest.fixture
def exported(project) -> Path:
    pytest.importorskip("safetensors", reason="needs pip install -e '.[interop]'")
    assert main(["export"]) == 0
    return project / EXPORT


def test_nan_in_a_safetensors_import_is_refused(project, exported, capsys):
    import safetensors.numpy

    tensors = safetensors.numpy.load_file(exported / "model.safetensors")
    tensors["bert.pooler.dense.weight"][0, 0] = np.nan
    safetensors.numpy.save_file(tensors, exported / "model.safetensors")
    assert "tensor 'bert.pooler.dense.weight' holds NaN" in init_from(project, capsys, EXPORT)


def test_an_infinite_config_value_is_refused(project, exported, capsys):
    config = exported / "config.json"
    text, replaced = re.subn(r'"initializer_range": [^,\n}]+', '"initializer_range": Infinity',
                             config.read_text())
    assert replaced == 1
    config.write_text(text)
    assert "'initializer_range' is inf" in init_from(project, capsys, EXPORT)


def shard(exported: Path, weight_map: object) -> None:
    (exported / "model.safetensors").rename(exported / "part-1.safetensors")
    (exported / "model.safetensors.index.json").write_text(json.dumps({"weight_map":
                                                                       weight_map}))


@pytest.mark.parametrize(("where", "expected"), [
    ("../outside.safetensors", "shard path '../outside.safetensors' is outside the directory"),
    ("/etc/passwd", "shard path '/etc/passwd' is outside the directory"),
])
def test_shard_paths_outside_the_directory_are_refused(project, exported, capsys, where,
                                                       expected):
    shard(exported, {"bert.pooler.dense.weight": where})
    assert expected in init_from(project, capsys, EXPORT)


def test_a_tensor_in_two_shards_is_refused(project, exported, capsys):
    shard(exported, {"a": "part-1.safetensors", "b": "part-2.safetensors"})
    shutil.copy(exported / "part-1.safetensors", exported / "part-2.safetensors")
    line = init_from(project, capsys, EXPORT)
    assert "is in two shards, part-1.safetensors and part-2.safetensors" in line


@pytest.mark.parametrize(("text", "expected"), [
    ("{not json", "model.safetensors.index.json: not valid JSON"),
    ('{"metadata": {}}', "has no 'weight_map' object"),
    ("[1, 2]", "model.safetensors.index.json: not a JSON object"),
])
def test_a_broken_index_is_refused(project, exported, capsys, text, expected):
    shard(exported, {})
    (exported / "model.safetensors.index.json").write_text(text)
    assert expected in init_from(project, capsys, EXPORT)


@pytest.mark.parametrize(("text", "expected"), [
    ("[" * 100_000 + "]" * 100_000, "config.json: nested too deeply to be read"),
    ('{"num_hidden_layers": 1000000000, "vocab_size": 16, "hidden_size": 16, '
     '"num_attention_heads": 2, "intermediate_size": 24, "max_position_embeddings": 16}',
     "this needs ~"),
    ("{}" + " " * (17 << 20), "far too large for this file"),
])
def test_a_hostile_config_json_is_refused_quickly(project, exported, capsys, text, expected):
    (exported / "config.json").write_text(text)
    started = time.perf_counter()
    assert expected in init_from(project, capsys, EXPORT)
    assert time.perf_counter() - started < 10
