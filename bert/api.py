"""The public model object, ``BertForPreTraining``, and ``from_pretrained``.

The object is a config and a dict of parameters, with the model's functions
(``bert.core.model``) as methods and the transformers file format (``bert.storage.interop``) as
``save_pretrained`` / ``from_pretrained``. It sits above both, so that neither the math nor the
storage imports the other.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from bert.core.config import WORD_EMBEDDINGS, BertConfig, param_shapes
from bert.core.model import Params, backward, forward, layer_functions, predict
from bert.core.parameters import init_params, pack_params
from bert.core.streams import model_rng
from bert.storage import interop

log = logging.getLogger(__name__)


class BertForPreTraining:
    """BERT with its MLM and NSP heads; ``params`` is a dict with transformers' names and shapes.

    ``BertForPreTraining(config, seed=0, dtype=np.float32)`` initializes as transformers does,
    drawing from ``seed``. Dropout (when the config asks for it) draws from ``self.rng``, a
    generator seeded from the same seed, unless another generator is passed. ``layers``: the
    layer functions the model runs on, ``"fast"`` (``bert.core.kernels``, the default) or
    ``"reference"`` (``bert.core.layers``, each body its formula: slower, and the one to step
    through in a debugger); their results are equal to round-off.
    """

    def __init__(
        self,
        config: BertConfig,
        seed: int = 0,
        dtype: np.dtype = np.float32,
        params: Mapping[str, np.ndarray] | None = None,
        layers: str = "fast",
    ) -> None:
        layer_functions(layers)  # a bad name is refused here, not at the first forward pass
        self.config, self.layers = config, layers
        if params is None:
            self.params = init_params(config, np.random.default_rng(seed), dtype)
        else:
            self.params = pack_params(config, params, dtype)
        self.rng = model_rng(seed)

    @property
    def dtype(self) -> np.dtype:
        return self.params[WORD_EMBEDDINGS].dtype

    def loss_and_grads(
        self,
        batch: Mapping[str, np.ndarray],
        rng: np.random.Generator | None = None,
        mlm_weight: float = 1.0,
        nsp_weight: float = 1.0,
    ) -> tuple[dict[str, float], Params]:
        """Losses ``{"mlm", "nsp", "total"}`` of a batch and the gradient of ``total``.

        The gradients have the same keys and shapes as ``params``. With both dropout
        probabilities 0 the result is deterministic.
        """
        losses, cache = forward(self.params, self.config, batch, rng or self.rng,
                                mlm_weight, nsp_weight, layers=self.layers)
        return losses, backward(self.params, self.config, cache)

    def forward(
        self, batch: Mapping[str, np.ndarray], mlm_positions: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Inference logits; see ``predict``. ``batch`` needs the three input arrays (B, T)."""
        return predict(self.params, self.config, batch["input_ids"], batch["token_type_ids"],
                       batch["attention_mask"], mlm_positions, layers=self.layers)

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write a transformers directory (``config.json`` + ``model.safetensors``) that
        transformers' ``BertForPreTraining.from_pretrained`` loads; see ``bert.storage.interop``."""
        return interop.save_pretrained(self, directory)


def from_pretrained(
    path: str | Path, dtype: np.dtype = np.float32, seed: int = 0
) -> BertForPreTraining:
    """A model from a transformers directory (``config.json`` + safetensors) or from one of our
    HDF5 weight or checkpoint files. Heads missing from a transformers checkpoint (a bare
    ``BertModel``) are initialized fresh from ``seed`` and reported in the log by name."""
    config, params, missing = interop.load_pretrained(path, dtype)
    if missing:
        fresh = init_params(config, np.random.default_rng(seed), dtype)
        params = {name: params[name] if name in params else fresh[name]
                  for name in param_shapes(config)}
        log.warning("%s: initialized fresh (not in the checkpoint): %s", path, ", ".join(missing))
    return BertForPreTraining(config, dtype=dtype, params=params)
