"""The init stage: the initial weights, as transformers initializes them or from a checkpoint."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from bert.api import BertForPreTraining
from bert.errors import ParamsError, bounded
from bert.storage import checkpoint as ckpt
from bert.workflow.layout import Layout
from bert.workflow.params import Params, bert_config
from bert.workflow.stages import stage

log = logging.getLogger(__name__)


def initialize(params: Params, layout: Layout) -> None:
    """The init stage: write ``artifacts/init.h5``, with transformers' initialization or, with
    ``model.init_from``, the weights of that checkpoint."""
    config = bert_config(params)
    dtype = np.dtype(params.training.dtype)
    if params.model.init_from:
        model = starting_point(params, layout)
    else:
        model = BertForPreTraining(config, seed=params.model.random_seed, dtype=dtype)
    ckpt.save_weights(layout.init_weights, config, model.params, params.subset(stage("init").reads))
    log.info("initial weights written to %s (%d parameters)", layout.init_weights,
             sum(p.size for p in model.params.values()))


def starting_point(params: Params, layout: Layout) -> BertForPreTraining:
    """The model ``model.init_from`` names, checked against the architecture of the params."""
    from bert.api import from_pretrained

    source = layout.under_root(params.model.init_from)
    try:
        exists = source.exists()
    except OSError:  # e.g. a name too long for the file system
        exists = False
    if not exists:
        raise ParamsError(f"model.init_from: {bounded(str(source))} does not exist; point it at "
                          "a transformers directory or a .h5 weight file, or leave it empty")
    model = from_pretrained(source, dtype=np.dtype(params.training.dtype),
                            seed=params.model.random_seed)
    wanted = bert_config(params)
    differences = {key: (value, getattr(wanted, key))
                   for key, value in dataclasses.asdict(model.config).items()
                   if getattr(wanted, key) != value}
    if differences:
        listed = ", ".join(f"{key} {theirs} (params: {ours})"
                           for key, (theirs, ours) in differences.items())
        raise ParamsError(f"model.init_from: {source} has another architecture: {listed}; "
                          "set model: and data: to match it")
    return model
