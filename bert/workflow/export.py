"""The export stage: the trained model as a transformers directory, complete for an upload to
the Hugging Face Hub as it stands: ``config.json`` and ``model.safetensors``, the tokenizer of the
data (``tokenizer.json``, ``tokenizer_config.json``, ``vocab.txt``; the synthetic language's
too), so that transformers' ``AutoTokenizer`` and ``pipeline("fill-mask")`` load the directory
as it is, and the model card ``README.md`` (``bert.workflow.model_card``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bert.data.datasets import dataset_params, load_tokenizer
from bert.storage.interop import export_model
from bert.workflow.layout import Layout
from bert.workflow.model_card import write_model_card
from bert.workflow.provenance import check_trained_model

if TYPE_CHECKING:  # the values are read, the module's code does not run
    from bert.workflow.params import Params


def export(params: Params, layout: Layout = Layout()) -> Path:
    """Write ``artifacts/export/`` from ``artifacts/model.h5``, once it is checked to be the
    trained model of ``params``: the tokenizer of the test set's vocabulary first, then the
    model, then the model card."""
    check_trained_model(params, layout)
    tokenizer = load_tokenizer(layout.test_data)
    written = tokenizer.save(layout.export_dir,
                             dataset_params(layout.test_data)["sequence_length"])
    model = export_model(layout.model_weights, layout.export_dir)
    write_model_card(params, layout, tokenizer, layout.export_dir,
                     [path.name for path in written] + ["config.json", "model.safetensors"])
    return model
