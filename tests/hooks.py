"""Code loaded into every Python process a test starts (a ``sitecustomize`` module on
``PYTHONPATH``), to slow a stage down so that a signal, a kill or a second workflow lands in the
middle of it. Each acts in one stage's process alone; doit's own process and the other stages
are left as they are."""

from __future__ import annotations

import os
from pathlib import Path

# The train stage: each step takes 20 ms, so that a signal lands in the middle of training, and
# while a file ``slow`` exists in the project folder a stage that stops waits (60 s at most)
# before it ends, so that it lives on until the test lets it go.
SLOW_TRAIN = """
import sys, time
from pathlib import Path

argv = sys.orig_argv
if argv[1:4] == ["-m", "bert", "train"]:
    import bert.workflow.train as train

    take_step, loop = train.take_step, train.train_loop

    def slow_step(run):
        time.sleep(0.02)
        return take_step(run)

    def slow_stop(run, progress):
        try:
            return loop(run, progress)
        except KeyboardInterrupt:
            deadline = time.monotonic() + 60
            while Path("slow").exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            raise

    train.take_step, train.train_loop = slow_step, slow_stop
"""

# The init stage takes 1 s to start, marked by a file ``starting``.
SLOW_START = """
import sys, time
from pathlib import Path

if sys.orig_argv[1:4] == ["-m", "bert", "init"]:
    Path("starting").touch()
    time.sleep(1)
"""

# The data stage's writes take 1 s each, marked by a file ``writing``.
SLOW_DATA = """
import sys, time
from pathlib import Path

if sys.orig_argv[1:4] == ["-m", "bert", "data"]:
    import bert.storage.h5write as h5write

    write = h5write.write

    def slow_write(*args, **kwargs):
        Path("writing").touch()
        time.sleep(1)
        return write(*args, **kwargs)

    h5write.write = slow_write
"""


def hook(folder: Path, code: str) -> dict[str, str]:
    """The environment that loads ``code`` into every Python process at start-up (written into
    ``folder``/hook)."""
    folder = folder / "hook"
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(code)
    return {**os.environ, "PYTHONPATH": str(folder)}
