"""Keep the memory a step frees for the next step, under glibc's malloc.

A training step allocates arrays of the same sizes every time. By default glibc returns blocks
above a threshold that it adapts to the kernel at once (``mmap``/``munmap``) and trims the top
of its heap whenever more than a threshold of it is free, so the next step page-faults every page
back in and the kernel zeroes it again: about 20,000 faults per step of BERT-Mini on half a
batch, some 15% of its time on one thread. ``keep_freed_memory`` fixes the threshold for
``mmap`` at its largest (blocks above it, 32 MiB on 64-bit, still come straight from the
kernel) and the trim threshold far above any step's memory, so that freed blocks stay in the
process to be reused. The process's resident memory then stays at its peak between steps
instead of falling back; the peak itself hardly moves (329.2 MB against 329.0 for that step).

Threads: glibc gives each new thread that allocates an arena of its own, made of 64 MiB heaps
that it unmaps whenever one is empty, whatever the thresholds, so a compute thread that runs a
micro-batch faulted its memory in again at every step (3,158 faults per BERT-Mini step on 2
threads). ``keep_freed_memory`` therefore keeps every thread in the main arena
(``M_ARENA_MAX`` 1), which the thresholds govern; it must run before the compute threads
allocate (``bert.engine.pool.set_threads`` starts them).
Other C libraries (musl, macOS) have no ``mallopt`` with these settings, and nothing is changed
there.
"""

from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD = -1  # glibc's malloc.h
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD_MAX = 32 * 2**20  # the largest glibc accepts on a 64-bit system
TRIM_THRESHOLD = 2**31 - 1  # mallopt takes an int


def keep_freed_memory() -> bool:
    """Set both thresholds and the one arena for this process; whether the C library took
    them."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, TypeError, AttributeError):  # no symbols to look up (Windows), no mallopt
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)) and bool(mallopt(M_ARENA_MAX, 1))
