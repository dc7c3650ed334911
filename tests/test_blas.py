"""The BLAS thread control: one thread inside the block, the previous count restored after."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from bert.engine.blas import single_blas_thread


def blas_threads() -> list[int]:
    return [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]


def test_one_thread_inside_and_the_count_restored_after():
    np.ones((2, 2)) @ np.ones((2, 2))  # NumPy's BLAS is loaded
    if not blas_threads():
        pytest.skip("no BLAS library found by threadpoolctl")
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        with single_blas_thread():
            assert blas_threads() == [1] * len(before)
        assert blas_threads() == before
        with pytest.raises(RuntimeError), single_blas_thread():
            raise RuntimeError("restored on the way out of an error too")
        assert blas_threads() == before
