"""The export stage: the trained model as a transformers directory, and for text data its
tokenizer (``tokenizer.json`` and ``tokenizer_config.json``), so that transformers'
``AutoTokenizer`` and ``pipeline("fill-mask")`` load the directory as it is."""

from __future__ import annotations

from pathlib import Path

from bert.data.datasets import load_vocab
from bert.storage.interop import export_model
from bert.workflow.layout import Layout
from bert.workflow.params import Params


def export(params: Params, layout: Layout = Layout()) -> Path:
    """Write ``artifacts/export/``: the tokenizer files first (text data), then the model."""
    vocab = load_vocab(layout.test_data)
    if vocab is not None:
        from bert.data.tokenizer import TextTokenizer

        TextTokenizer(vocab, params.data.lowercase).save(layout.export_dir,
                                                          params.data.sequence_length)
    return export_model(layout.model_weights, layout.export_dir)
