"""A tiny configuration of the whole workflow, for tests that run it in a temporary folder."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from bert.workflow.layout import Layout
from bert.workflow.loader import params_from_mapping
from bert.workflow.params import Params

TINY = {
    "logging": {"level": "INFO", "progress_bar": False},
    "data": {"vocab_size": 16, "sequence_length": 16, "batch_size": 8, "num_train_batches": 6,
             "num_test_batches": 2, "num_topics": 2, "successors": 2},
    "model": {"dim_model": 16, "num_heads": 2, "dim_ff": 24, "num_layers": 1},
    "training": {"epochs": 2, "learning_rate": 0.01, "warmup_steps": 2, "decay_steps": 100,
                 "checkpoint_every_steps": 4, "keep_checkpoints": 10},
    "evaluation": {"batch_size": 16},
}


def tiny(**changes: dict) -> dict:
    """TINY with ``changes`` merged per section, e.g. ``tiny(training={"epochs": 3})``."""
    mapping = copy.deepcopy(TINY)
    for section, values in changes.items():
        mapping.setdefault(section, {}).update(values)
    return mapping


def tiny_params(**changes: dict) -> Params:
    return params_from_mapping(tiny(**changes))


def write_params(folder: Path, mapping: dict) -> Path:
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(mapping))
    return path


FILE_KINDS = ("train", "test", "probe_nsp", "probe_sop", "init", "model", "checkpoint")


def tiny_project(folder: Path) -> dict[str, Path]:
    """Data, initial weights, a trained model and its checkpoints of the tiny parameters, made
    through the Python API in ``folder``: each of FILE_KINDS by its path."""
    from bert.data.datasets import SPLITS, make_datasets
    from bert.storage.checkpoint import list_checkpoints
    from bert.workflow.init import initialize
    from bert.workflow.train import train

    layout, params = Layout(folder), tiny_params()
    make_datasets(params.data, layout.data_dir)
    initialize(params, layout)
    train(params, layout, progress=False)
    return {**{split: layout.data_dir / f"{split}.h5" for split in SPLITS},
            "init": layout.init_weights, "model": layout.model_weights,
            "checkpoint": list_checkpoints(next(layout.checkpoints.iterdir()))[0]}
