"""Freed memory stays in the process for the next step (glibc's malloc)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bert.engine.allocation import keep_freed_memory

# Rounds after the first, in which the allocator may map its blocks for the first time.
ROUNDS = 3

# Two 16 MiB arrays allocated and freed together, as a step's activations are: by default glibc
# gives such blocks back to the kernel, and the next round faults their pages in again.
PAIRS = """
import json, resource, sys
import numpy as np
from bert.engine.allocation import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else False
def round_():
    a = np.ones(2**22, np.float32)
    b = np.ones(2**22, np.float32)
    del a, b
round_()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(int(sys.argv[2])):
    round_()
print(json.dumps({"kept": kept,
                  "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""


def faults(mode: str, program: str = PAIRS) -> dict:
    out = subprocess.run([sys.executable, "-c", program, mode, str(ROUNDS)], capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out)


def test_freed_blocks_are_reused_instead_of_faulted_in_again():
    kept = faults("keep")
    if not kept["kept"]:
        pytest.skip("the C library is not glibc: its allocator is left as it is")
    default = faults("default")
    # (a fault maps a 4 KiB page, or a 2 MiB one where the kernel uses transparent huge pages)
    assert default["faults"] >= ROUNDS * 16  # the pattern does fault by default, every round
    assert kept["faults"] <= default["faults"] // 20


# Rounds of six such arrays (96 MiB) on a second thread, as a compute thread running a micro-batch
# allocates: more than the 64 MiB heaps of a thread's arena hold.
ON_A_THREAD = """
import json, resource, sys, threading
import numpy as np
from bert.engine.allocation import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else False
def round_():
    arrays = [np.ones(2**22, np.float32) for _ in range(6)]
    del arrays
def rounds():
    round_()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(int(sys.argv[2])):
        round_()
    print(json.dumps({"kept": kept,
                      "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
thread = threading.Thread(target=rounds)
thread.start()
thread.join()
"""


def test_freed_blocks_are_reused_on_another_thread_too():
    kept = faults("keep", ON_A_THREAD)
    if not kept["kept"]:
        pytest.skip("the C library is not glibc: its allocator is left as it is")
    default = faults("default", ON_A_THREAD)
    assert default["faults"] >= ROUNDS * 16  # by default, every round faults
    assert kept["faults"] <= default["faults"] // 20


def test_the_settings_are_taken_again_without_harm():
    first = keep_freed_memory()
    assert keep_freed_memory() == first
