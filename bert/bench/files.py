"""The files of training, per size: ``python -m bert.bench files``.

Times writing and reading a training checkpoint (``save_checkpoint``, ``load_checkpoint``) and
the model file (``save_weights``, ``load_weights``), because training pays for them: every
``training.checkpoint_every_steps`` steps (and at each epoch's end) it writes a checkpoint, the
weights with AdamW's two moments and the history, and prunes the oldest; a resumed run reads
one; the model file is written once at the end and read by ``evaluate`` and ``export``. The
state is a fresh model of the size (``init_params``, float32 as training keeps it), copies of
its weights as the moments, and a short history, in a temporary folder. Each operation gets one
untimed call, then ``--repeats`` timed ones (``bert.bench.clock.times``); each checkpoint is
of the next step, as in training, keeping the newest ``KEEP``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from bert.bench.clock import summary, times
from bert.bench.sizes import SIZES, make_config
from bert.bench.tables import files_table
from bert.core.flat import FlatParams
from bert.core.parameters import init_params
from bert.storage import h5io
from bert.storage.checkpoint import (
    CHECKPOINT_SCHEMA,
    HISTORY_KEYS,
    TrainingState,
    load_checkpoint,
    load_weights,
    save_checkpoint,
    save_weights,
)

KEEP = 3  # checkpoints kept, as training.keep_checkpoints
FIRST_STEP = 100  # the step of the first checkpoint: as many history values per key
BATCHES_PER_EPOCH = 50
FIX = "it is the benchmark's own file"
OPERATIONS = ("save_checkpoint", "load_checkpoint", "save_weights", "load_weights")


def copy(params: FlatParams) -> FlatParams:
    """A copy of ``params`` in its own buffer (the moments' stand-in)."""
    found = params.zeros_like()
    found.flat[:] = params.flat
    return found


def measure(name: str, repeats: int, folder: Path) -> dict:
    """The four operations' ``summary`` at size ``name``, with the files' sizes."""
    config = make_config(SIZES[name])
    params = init_params(config, np.random.default_rng(0))
    state = TrainingState(
        params=params,
        optimizer={"step": FIRST_STEP, "exp_avg": copy(params), "exp_avg_sq": copy(params)},
        history={key: [0.5] * FIRST_STEP for key in HISTORY_KEYS}, epoch_history=[])
    run_params = {"benchmark": "files", "size": name}
    checkpoints, model = folder / "checkpoints", folder / "model.h5"
    written: list[Path] = []

    def write_checkpoint() -> None:
        state.optimizer["step"] += 1
        for values in state.history.values():
            values.append(0.5)
        written.append(save_checkpoint(checkpoints, config, state, run_params,
                                       BATCHES_PER_EPOCH, KEEP))

    operations = {
        "save_checkpoint": write_checkpoint,
        "load_checkpoint": lambda: load_checkpoint(written[-1], config, run_params),
        "save_weights": lambda: save_weights(model, config, params, run_params),
        "load_weights": lambda: load_weights(model, FIX, config),
    }
    found = {}
    for operation, call in operations.items():
        call()
        found[operation] = summary(times(call, repeats))
    return {"size": name, "parameters": int(params.flat.size),
            "checkpoint_datasets": len(h5io.read(
                written[-1], schema=CHECKPOINT_SCHEMA, schema_version=None, specs={}, fix=FIX,
                names=(), describe=True).datasets),
            "checkpoint_mib": written[-1].stat().st_size / 2**20,
            "model_mib": model.stat().st_size / 2**20, **found}


def run(args: argparse.Namespace) -> None:
    """``python -m bert.bench files``: a row per size, as a table or ``--json``."""
    results = []
    for name in args.sizes:
        with tempfile.TemporaryDirectory(prefix="bert-bench-files-") as folder:
            results.append(measure(name, args.repeats, Path(folder)))
    report = {"repeats": args.repeats, "keep": KEEP, "results": results}
    print(json.dumps(report, indent=2) if args.json else files_table(report))
