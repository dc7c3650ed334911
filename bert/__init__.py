"""BERT pretraining (masked language modelling + next sentence prediction) in NumPy alone.

The public API: ``BertConfig`` (the architecture, convertible from/to transformers' config
dicts), ``BertForPreTraining`` (parameters under transformers' names, ``loss_and_grads`` for
training, ``forward`` for inference), ``from_pretrained`` (a model from a transformers
directory or one of our weight files) and ``load_tokenizer`` (the tokenizer of the data, the
WordPiece tokenizer of text or the synthetic language's, from an export directory or a dataset
file). They are imported on first use, so that
running one stage of the workflow loads only the modules that stage needs.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {"BertConfig": "bert.core.config", "BertForPreTraining": "bert.api",
           "from_pretrained": "bert.api", "load_tokenizer": "bert.data.datasets"}
__all__ = [*_PUBLIC, "__version__"]

def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'bert' has no attribute {name!r}")
