"""A tiny configuration of the whole workflow, and helpers for tests that run it in a temporary
project folder: through the Python API (``make_run``) or through ``doit``."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import yaml

from bert.workflow.layout import DEFAULT_RUN, Layout
from bert.workflow.loader import params_from_mapping
from bert.workflow.params import Params

ROOT = Path(__file__).resolve().parents[1]
TINY = {
    "logging": {"level": "INFO", "progress_bar": False},
    "data": {"vocab_size": 16, "sequence_length": 16, "batch_size": 8, "num_train_batches": 6,
             "num_test_batches": 2, "num_topics": 2, "successors": 2},
    "model": {"dim_model": 16, "num_heads": 2, "dim_ff": 24, "num_layers": 1},
    "training": {"epochs": 2, "learning_rate": 0.01, "warmup_steps": 2, "decay_steps": 100,
                 "checkpoint_every_steps": 4, "keep_checkpoints": 10},
    "evaluation": {"batch_size": 16},
}
# the stages of the default run, in order, by the Python functions that make them
API_STAGES = ("data", "init", "train", "evaluate", "report")
TIMING = ("seconds", "tokens_per_second")


def tiny(**changes: dict) -> dict:
    """TINY with ``changes`` merged per section, e.g. ``tiny(training={"epochs": 3})``."""
    mapping = copy.deepcopy(TINY)
    for section, values in changes.items():
        mapping.setdefault(section, {}).update(values)
    return mapping


def tiny_params(**changes: dict) -> Params:
    return params_from_mapping(tiny(**changes))


def write_params(folder: Path, mapping: dict, name: str = "params.yaml") -> Path:
    path = folder / name
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


def layout_of(folder: Path, params: Params | dict, run: str = DEFAULT_RUN) -> Layout:
    """The files of run ``run`` of ``params`` (or of a mapping) in the project ``folder``, as
    the workflow names them."""
    if isinstance(params, dict):
        params = params_from_mapping(params)
    return Layout.of(params, run, folder)


def make_project(folder: Path, mapping: dict) -> Path:
    """A project folder: the repository's dodo.py and ``mapping`` as params.yaml."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "dodo.py", folder / "dodo.py")
    write_params(folder, mapping)
    return folder


def make_run(folder: Path, mapping: dict, stages: tuple[str, ...] = API_STAGES) -> Layout:
    """The default run of ``mapping`` made in the project ``folder`` through the Python API,
    stage by stage, with the files where ``doit`` would write them (and dodo.py and
    params.yaml beside them, so that commands can go on from there)."""
    from bert.workflow.data import make_data
    from bert.workflow.evaluate import evaluate_model
    from bert.workflow.export import export
    from bert.workflow.init import initialize
    from bert.workflow.report import write_results
    from bert.workflow.run_record import RunOrigin
    from bert.workflow.train import train

    make_project(folder, mapping)
    params = params_from_mapping(mapping)
    layout = layout_of(folder, params)
    steps = {"data": lambda: make_data(params, layout),
             "init": lambda: initialize(params, layout),
             "train": lambda: train(params, layout, progress=False,
                                    origin=RunOrigin("params.yaml", {})),
             "evaluate": lambda: evaluate_model(params, layout),
             "report": lambda: write_results(params, layout),
             "export": lambda: export(params, layout)}
    for name in stages:
        steps[name]()
    return layout


# --- through doit ------------------------------------------------------------------------------


def doit(folder: Path, *args: str, check: bool = True, env: dict | None = None,
         timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "doit", *args], cwd=folder, env=env,
                            capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def ran(result: subprocess.CompletedProcess) -> list[str]:
    """The tasks doit executed, by their full names (it prints ``.  name`` for those)."""
    return [line[3:].strip() for line in result.stdout.splitlines() if line.startswith(".  ")]


def skipped(result: subprocess.CompletedProcess) -> list[str]:
    """The tasks doit found up to date (it prints ``-- name`` for those)."""
    return [line[3:].strip() for line in result.stdout.splitlines() if line.startswith("-- ")]


def stage_of(task: str) -> str:
    """A task's stage, without the run or the folder it is for: ``train:params`` is
    ``train``, ``data:synthetic-1a2b3c4d`` ``data``, ``plots:params:curves`` ``plots:curves``."""
    parts = task.split(":")
    return f"plots:{parts[2]}" if parts[0] == "plots" and len(parts) == 3 else parts[0]


def stages_ran(result: subprocess.CompletedProcess) -> list[str]:
    """The stages doit executed (``stage_of`` each task)."""
    return [stage_of(task) for task in ran(result)]


# --- comparing runs ----------------------------------------------------------------------------


def run_dir(folder: Path, run: str = DEFAULT_RUN) -> Path:
    """The folder of run ``run`` in the project ``folder``."""
    return folder / "artifacts" / "runs" / run


def weights(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        return {name: f[name][()] for name in f if isinstance(f[name], h5py.Dataset)}


def results_without(run: Path, counts: tuple[str, ...] = ()) -> dict:
    """The results.json of the run folder ``run`` without wall-clock timings, and without the
    training keys ``counts`` (how a run was executed, not what it computed)."""
    results = json.loads((run / "results.json").read_text())
    training = results["training"]
    for key in (*TIMING, *counts):
        training.pop(key, None)
        results["params"]["training"].pop(key, None)
    for record in training["per_epoch"]:
        for key in TIMING:
            record.pop(key)
    return results


def assert_same_run(a: Path, b: Path, counts: tuple[str, ...] = ()) -> None:
    """Bit-identical final weights, and results identical but for wall-clock timings (and the
    training keys ``counts``), of the run folders ``a`` and ``b``."""
    wa, wb = weights(a / "model.h5"), weights(b / "model.h5")
    assert wa.keys() == wb.keys()
    for name in wa:
        np.testing.assert_array_equal(wa[name], wb[name], err_msg=name)
    assert results_without(a, counts) == results_without(b, counts)


# --- through the command line ------------------------------------------------------------------


def cli_error(capsys, *args: str) -> str:
    """Run ``python -m bert *args`` in this process; assert that it fails with one error line
    and no traceback, and return that line."""
    from bert.__main__ import main

    code = main(list(args))
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]
