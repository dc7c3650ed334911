"""``python -m bert.bench``: the benchmark of the training step (``bert.bench.step``); with
``--processes N``, of data-parallel training over N MPI ranks (``bert.bench.mpi``)."""

import sys

if any(arg.split("=")[0] == "--processes" for arg in sys.argv[1:]):
    from bert.bench.mpi import main
else:
    from bert.bench.step import main

main()
