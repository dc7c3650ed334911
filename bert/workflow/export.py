"""The export stage: the trained model as a transformers directory, and for text data its
tokenizer (``tokenizer.json`` and ``tokenizer_config.json``), so that transformers'
``AutoTokenizer`` and ``pipeline("fill-mask")`` load the directory as it is."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bert.data.datasets import dataset_params, load_tokenizer, load_vocab
from bert.storage.interop import export_model
from bert.workflow.layout import Layout
from bert.workflow.provenance import check_trained_model

if TYPE_CHECKING:  # the values are read, the module's code does not run
    from bert.workflow.params import Params


def export(params: Params, layout: Layout = Layout()) -> Path:
    """Write ``artifacts/export/`` from ``artifacts/model.h5``, once it is checked to be the
    trained model of ``params``: for text data the tokenizer of the test set's vocabulary
    first, then the model."""
    check_trained_model(params, layout)
    if load_vocab(layout.test_data) is not None:
        load_tokenizer(layout.test_data).save(
            layout.export_dir, dataset_params(layout.test_data)["sequence_length"])
    return export_model(layout.model_weights, layout.export_dir)
