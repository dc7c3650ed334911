"""What the benchmarks read of the machine: its description, the BLAS NumPy loaded, whether the
reference (torch and transformers) is installed, and the kernel's accounts in ``/proc`` (a
process's resident memory and its peak, each thread's time running and waiting for a CPU)."""

from __future__ import annotations

import importlib.util
import os
import platform

# Nothing that imports NumPy at module level: a worker fixes its thread count first.

REFERENCE_HINT = ("pip install -e '.[reference]' (torch and transformers) to time transformers' "
                  "BertForPreTraining alongside")


def reference_available() -> bool:
    """Whether torch and transformers are installed."""
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))


def blas_kernel() -> list[dict]:
    """The BLAS libraries NumPy loaded, as threadpoolctl names them: library, version, kernel
    (the ``architecture`` the library chose for this CPU), threads."""
    import numpy as np  # noqa: F401  (the BLAS to describe is the one NumPy loads)
    from threadpoolctl import threadpool_info

    return [{key: info.get(key) for key in ("internal_api", "version", "architecture",
                                            "threading_layer", "num_threads")}
            for info in threadpool_info() if info["user_api"] == "blas"]


def machine() -> dict:
    """The CPU, the load, Python's, NumPy's (and its BLAS's), torch's and transformers'
    versions."""
    info = {"python": platform.python_version(), "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE")}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in f
                               if line.startswith("model name"))
    except (OSError, StopIteration):
        info["cpu"] = platform.processor()
    if hasattr(os, "getloadavg"):
        info["load_average_1min"] = os.getloadavg()[0]
    import numpy as np

    info["numpy"] = np.__version__
    info["blas"] = blas_kernel()
    if reference_available():
        from importlib.metadata import version

        info["torch"], info["transformers"] = version("torch"), version("transformers")
    return info


def status_kib(field: str) -> int | None:
    """A field of ``/proc/self/status`` in KiB (``VmRSS``: the resident set now, ``VmHWM``:
    its peak); None where there is none."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_resident() -> bool:
    """Reset ``VmHWM``, the peak resident set, to the resident set now; False where the kernel
    does not allow it (not Linux)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def thread_cpu() -> dict[str, tuple[int, int]]:
    """Per thread of this process: nanoseconds running and waiting, runnable, for a CPU (the
    kernel's schedstat); empty where there is none."""
    found = {}
    try:
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/schedstat") as f:
                running, waiting = f.read().split()[:2]
            found[tid] = (int(running), int(waiting))
    except (OSError, ValueError):
        return {}
    return found


def cpu_waits(before: dict, after: dict, seconds: float) -> list[float]:
    """Seconds each thread that ran at least 5% of ``seconds`` between two ``thread_cpu``
    readings waited for a CPU."""
    return [(after[t][1] - before[t][1]) / 1e9 for t in after
            if t in before and after[t][0] - before[t][0] >= 0.05 * seconds * 1e9]
