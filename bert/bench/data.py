"""The data stage for the default parameters: ``python -m bert.bench data``.

Reports the example generation throughput (tokens per second, padding included) and the time
of the exact optimum on the test set, each the best of a few repeats.
"""

from __future__ import annotations

import argparse

from bert.bench.clock import times
from bert.data.datasets import build_language, build_split
from bert.data.examples import optimum
from bert.data.params import DataParams


def run(args: argparse.Namespace) -> None:
    """``python -m bert.bench data``: both times, and the optimum's values."""
    params = DataParams()
    language = build_language(params)
    train = build_split(params, language, "train")
    test = build_split(params, language, "test")
    tokens = train["input_ids"].size
    generate = min(times(lambda: build_split(params, language, "train"), repeats=3))
    print(f"generation: {tokens} tokens ({train['input_ids'].shape[0]} examples x "
          f"{params.sequence_length}) in {generate:.3f} s = "
          f"{tokens / generate / 1e6:.2f} M tokens/s")
    score = min(times(lambda: optimum(language, test, params.mask_probability), repeats=2))
    result = optimum(language, test, params.mask_probability)
    print(f"optimum: {test['input_ids'].shape[0]} test examples, {result['num_mlm_labels']} "
          f"MLM labels in {score:.2f} s")
    for key, value in result.items():
        print(f"  {key:<20} {value:.4f}" if isinstance(value, float) else f"  {key:<20} {value}")
