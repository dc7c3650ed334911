"""``python -m bert.bench``: the benchmark of the training step (``bert.bench.step``)."""

from bert.bench.step import main

main()
