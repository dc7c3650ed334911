"""BERT pretraining (masked language modelling + next sentence prediction) in NumPy alone.

The public API: ``BertConfig`` (the architecture, convertible from/to transformers' config
dicts) and ``BertForPreTraining`` (parameters under transformers' names, ``loss_and_grads``
for training, ``forward`` for inference).
"""

__version__ = "0.1.0"

from bert.config import BertConfig  # noqa: E402
from bert.model import BertForPreTraining  # noqa: E402

__all__ = ["BertConfig", "BertForPreTraining", "__version__"]
