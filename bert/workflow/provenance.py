"""Which trained model a file holds, so that no stage reports on the wrong one.

The train stage marks ``artifacts/model.h5`` (attributes ``fingerprint`` and ``step``),
``artifacts/history.json`` (``run``, and its number of steps) and the evaluate stage
``artifacts/metrics.json`` (``model``: ``run`` and ``step``). The stages that read them check
the mark against the parameters: the model of these parameters is the one of their run
(fingerprint), trained to ``training.epochs`` epochs (step). A copied, stale or foreign file is
then one line that says what to do, never results of another model.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bert.core.config import BertConfig
from bert.core.flat import FlatParams
from bert.data.datasets import corpus_digest, load_dataset
from bert.data.examples import num_examples
from bert.errors import DataFileError, bounded, remake_hint
from bert.storage import checkpoint as ckpt
from bert.storage import h5io
from bert.workflow.layout import Layout
from bert.workflow.run import run_fingerprint, run_params

if TYPE_CHECKING:  # the values are read; the export stage runs no parameter-validation code
    from bert.workflow.params import Params

def project_run_params(params: Params, layout: Layout) -> dict:
    """``run_params`` of ``params`` on the project's training set (its text's digest)."""
    return run_params(params, corpus_digest(layout.train_data))


def whole_batches(train_data: Mapping[str, np.ndarray], batch_size: int) -> int:
    """Optimizer steps per epoch over ``train_data``: its whole batches (a remainder of text
    data waits for later epochs, whose order differs)."""
    return num_examples(train_data) // batch_size


def batches_per_epoch(params: Params, layout: Layout) -> int:
    """Optimizer steps per epoch: ``data.num_train_batches`` for the synthetic language, the
    whole batches of the training file for text (its size follows from the text)."""
    if params.data.source == "synthetic":
        return params.data.num_train_batches
    return whole_batches(load_dataset(layout.train_data), params.data.batch_size)


def model_id(params: Params, layout: Layout) -> dict[str, Any]:
    """The mark of the trained model of ``params``: its run's fingerprint and its final step."""
    return {"run": run_fingerprint(params, corpus_digest(layout.train_data)),
            "step": params.training.epochs * batches_per_epoch(params, layout)}


def check_model_id(
    found: Mapping[str, Any], params: Params, layout: Layout, path: Path, stage: str
) -> None:
    """Raise DataFileError unless ``found`` (a file's mark) is ``model_id(params, layout)``."""
    wanted = model_id(params, layout)
    if dict(found) == wanted:
        return
    if found.get("run") is None:
        what = "has no mark of the run that trained it (it is not the train stage's output)"
    elif found.get("run") != wanted["run"]:
        what = (f"comes from another run ({bounded(found.get('run'))}; these parameters "
                f"train {wanted['run']})")
    else:
        what = (f"is from step {bounded(found.get('step'))} of the run, not from the end of "
                f"training.epochs (step {wanted['step']})")
    raise DataFileError(f"{path}: {what}; {remake_hint(stage)}")


def check_trained_model(params: Params, layout: Layout) -> None:
    """Raise DataFileError unless ``artifacts/model.h5`` is the trained model of ``params``
    (its attributes alone are read)."""
    path = layout.model_weights
    header = h5io.read(path, schema=ckpt.WEIGHTS_SCHEMA, schema_version=ckpt.READABLE_VERSIONS,
                       specs={}, fix=remake_hint("train"), names=())
    check_model_id({"run": header.attrs.get("fingerprint"), "step": header.attrs.get("step")},
                   params, layout, path, "train")


def load_trained_model(
    params: Params, layout: Layout, config: BertConfig
) -> tuple[BertConfig, FlatParams]:
    """The weights of ``artifacts/model.h5``, checked to be the trained model of ``params``
    (of architecture ``config``)."""
    check_trained_model(params, layout)
    return ckpt.load_weights(layout.model_weights, remake_hint("train"), config)
