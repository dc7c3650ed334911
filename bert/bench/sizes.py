"""The model and batch sizes the benchmarks time, by name, and the model of each."""

from __future__ import annotations

from dataclasses import dataclass

# Nothing that imports NumPy at module level: a worker fixes its thread count first.

DROPOUT = 0.1  # hidden and attention dropout of every benchmark's model


@dataclass(frozen=True)
class Size:
    """A model and batch size to time."""

    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    batch_size: int
    seq_len: int
    repeats: int  # timed steps when --repeats is not given
    description: str

    @property
    def tokens(self) -> int:
        """Tokens per step: the batch's rows times their length."""
        return self.batch_size * self.seq_len


SIZES = {
    "default": Size(64, 64, 2, 4, 128, 32, 32, 30, "params.yaml's default model and batch"),
    "f256": Size(64, 64, 2, 4, 256, 32, 32, 30, "the default with intermediate 256"),
    "text": Size(4000, 128, 2, 4, 512, 32, 64, 10, "text.yaml's model and batch, vocab 4000"),
    "small": Size(64, 32, 2, 2, 128, 8, 32, 50, "hidden 32, 2 layers, batch 8 x 32"),
    "tiny": Size(8192, 128, 2, 2, 512, 32, 128, 10, "BERT-Tiny 2/128/2, vocab 8192"),
    "mini": Size(8192, 256, 4, 4, 1024, 32, 128, 5, "BERT-Mini 4/256/4, vocab 8192"),
    "micro": Size(32, 16, 1, 2, 32, 2, 8, 3, "a toy size for smoke tests"),
}


def make_config(size: Size, dropout: float = DROPOUT):
    """The model of ``size`` (a ``bert.core.config.BertConfig``), at least 512 positions."""
    from bert.core.config import BertConfig

    return BertConfig(vocab_size=size.vocab_size, hidden_size=size.hidden_size,
                      num_hidden_layers=size.num_layers, num_attention_heads=size.num_heads,
                      intermediate_size=size.intermediate_size,
                      max_position_embeddings=max(512, size.seq_len),
                      hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
