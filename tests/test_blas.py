"""The BLAS thread control: the count set is the count threadpoolctl reads back."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from bert.engine.blas import set_blas_threads


def blas_threads() -> list[int]:
    return [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]


def test_the_count_set_is_the_count_in_use():
    np.ones((2, 2)) @ np.ones((2, 2))  # NumPy's BLAS is loaded
    if not blas_threads():
        pytest.skip("no BLAS library found by threadpoolctl")
    with threadpool_limits(limits=1, user_api="blas"):  # restores the count afterwards
        for count in (2, 1):
            set_blas_threads(count)
            assert blas_threads() == [count] * len(blas_threads())
