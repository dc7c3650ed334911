"""What a model costs: the memory of its weights and activations, the FLOPs of its products.

Estimates made from the architecture and the batch alone, without building anything: the
workflow refuses parameters that cannot fit in memory before it runs them
(``bert.workflow.resources``), the benchmark reports the rate of the products
(``python -m bert.bench``).

Shape letters: ``B`` batch, ``T`` sequence, ``H`` hidden, ``NH`` heads, ``D`` head size,
``F`` feed-forward, ``V`` vocabulary, ``L`` layers, ``M`` positions scored by the MLM head.
"""

from __future__ import annotations

import dataclasses
import math

from bert.core.config import BertConfig, param_shapes


def weights_bytes(config: BertConfig, itemsize: int = 4) -> int:
    """The memory one copy of the weights of ``config`` takes (arrays and their overhead),
    computed without listing the layers (a config may declare a billion of them)."""

    def size(layers: int) -> tuple[int, int]:
        shapes = param_shapes(dataclasses.replace(config, num_hidden_layers=layers))
        return sum(math.prod(s) for s in shapes.values()), len(shapes)

    (numbers1, arrays1), (numbers2, arrays2) = size(1), size(2)
    extra = config.num_hidden_layers - 1
    numbers = numbers1 + extra * (numbers2 - numbers1)
    arrays = arrays1 + extra * (arrays2 - arrays1)
    return numbers * itemsize + arrays * 1024  # ~1 KiB per array: its object, name and dict slot


def activation_bytes(config: BertConfig, batch_size: int, seq_len: int, itemsize: int = 4) -> int:
    """An upper estimate of the activations one forward pass keeps for the backward pass:
    per layer a dozen (B, T, H) arrays, four (B, T, F) and four (B, NH, T, T), and the heads'
    (B, T, V) logits at the most."""
    H, F, NH = config.hidden_size, config.intermediate_size, config.num_attention_heads
    per_layer = batch_size * seq_len * (12 * H + 4 * F + 4 * NH * seq_len)
    heads = batch_size * seq_len * (config.vocab_size + 4 * H)
    return (config.num_hidden_layers * per_layer + heads) * itemsize


def matmul_flops(config: BertConfig, batch_size: int, seq_len: int,
                 num_scored: int) -> dict[str, float]:
    """Matrix-multiply FLOPs of one forward pass and of one training step (3x: the backward
    pass multiplies twice as much), the MLM head counted at the ``num_scored`` labelled
    positions only, as the model computes it."""
    N, H, F = batch_size * seq_len, config.hidden_size, config.intermediate_size
    T, D = seq_len, config.head_size
    attention = 2 * 2 * batch_size * config.num_attention_heads * T * T * D  # scores, context
    per_layer = 2 * N * H * (3 * H + H + 2 * F) + attention
    heads = 2 * num_scored * H * (H + config.vocab_size) + 2 * batch_size * H * (H + 2)
    forward = config.num_hidden_layers * per_layer + heads
    return {"forward": float(forward), "step": float(3 * forward)}
