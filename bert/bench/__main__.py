"""``python -m bert.bench [command] [options]``: the benchmarks (``bert.bench.cli``)."""

from bert.bench.cli import main

main()
