"""The export stage: the trained model as a transformers directory, complete for an upload to
the Hugging Face Hub as it stands: ``config.json`` and ``model.safetensors``, the tokenizer of the
data (``tokenizer.json``, ``tokenizer_config.json``, ``vocab.txt``; the synthetic language's
too), so that transformers' ``AutoTokenizer`` and ``pipeline("fill-mask")`` load the directory
as it is, and the model card ``README.md`` (``bert.workflow.model_card``).

The directory is one unit: it is written as a new folder that then takes the place of the
previous export in one step, so that it holds one model and its tokenizer, or the previous ones
whole (a full disk or a kill midway leaves the previous export as it was). Files of the user's
in the previous export are carried over."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from bert.data.datasets import dataset_params, load_tokenizer, load_vocab
from bert.data.tokenizer import CONFIG_FILE, TOKENIZER_FILE, VOCAB_FILE, vocab_digest
from bert.errors import DataFileError, remake_hint
from bert.storage.atomic import replacing_folder
from bert.storage.interop import SAFETENSORS, SAFETENSORS_INDEX, export_model, trained_vocabulary
from bert.workflow.layout import Layout
from bert.workflow.model_card import CARD_FILE, write_model_card
from bert.workflow.provenance import check_trained_model

if TYPE_CHECKING:  # the values are read, the module's code does not run
    from bert.workflow.params import Params

log = logging.getLogger(__name__)

# what an export of ours holds (anything else in the folder is the user's, and is kept)
EXPORT_FILES = ("config.json", SAFETENSORS, SAFETENSORS_INDEX, TOKENIZER_FILE, CONFIG_FILE,
                VOCAB_FILE, CARD_FILE)


def export(params: Params, layout: Layout) -> Path:
    """Write the run's ``export/`` from its ``model.h5``, once it is checked to be the trained
    model of ``params`` (and, for text data, trained with the test set's vocabulary): the
    tokenizer of that vocabulary, then the model, then the model card."""
    check_trained_model(params, layout)
    vocab = load_vocab(layout.test_data)
    if vocab is not None:
        recorded = trained_vocabulary(layout.model_weights)[0]
        if recorded is not None and recorded != vocab_digest(vocab):
            raise DataFileError(f"{layout.model_weights}: was trained with another vocabulary "
                                f"than {layout.test_data} holds; {remake_hint('train')}")
    tokenizer = load_tokenizer(layout.test_data)
    with replacing_folder(layout.export_dir, EXPORT_FILES) as staging:
        written = tokenizer.save(staging, dataset_params(layout.test_data)["sequence_length"])
        export_model(layout.model_weights, staging)
        write_model_card(params, layout, tokenizer, staging,
                         [path.name for path in written] + ["config.json", SAFETENSORS])
    log.info("exported %s to %s (transformers' BertForPreTraining.from_pretrained loads it)",
             layout.model_weights, layout.export_dir)
    return layout.export_dir
