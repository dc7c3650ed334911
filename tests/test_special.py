"""bert.special.erf against the standard library's math.erf, in float64 and float32."""

import math

import numpy as np
import pytest

from bert.core.special import erf

# The range boundaries of the piecewise approximation.
BOUNDARIES = (0.84375, 1.25, 1 / 0.35, 6.0)


def dense_grid() -> np.ndarray:
    """About 800k float64 points: every range, its boundaries, tiny and huge values, both signs."""
    rng = np.random.default_rng(0)
    parts = [
        np.array([0.0, 5e-324, 1e-310, 2.0**-1022, 1e-300, 2.0**-28, 1e-8, 27.0, 1e10, 1e300]),
        np.linspace(0.0, 7.0, 200_001),
        np.logspace(-320, 1, 20_001),
        rng.uniform(0.0, 6.5, 150_000),
    ]
    for b in BOUNDARIES:  # the 500 doubles on either side of each boundary
        parts.append(b + np.arange(-500, 500) * np.spacing(b))
    grid = np.concatenate(parts)
    return np.concatenate([grid, -grid])


def ulp_error(ours: np.ndarray, ref: np.ndarray, dtype: type) -> float:
    """Largest ``|ours - ref|`` in units of the last place of ``ref`` rounded to ``dtype``."""
    spacing = np.spacing(np.abs(ref).astype(dtype)).astype(np.float64)
    spacing = np.maximum(spacing, np.finfo(dtype).smallest_subnormal)
    return float(np.max(np.abs(ours.astype(np.float64) - ref) / spacing))


@pytest.fixture(scope="module")
def grid_and_ref() -> tuple[np.ndarray, np.ndarray]:
    x = dense_grid()
    return x, np.array([math.erf(v) for v in x])


def test_float64_within_one_ulp(grid_and_ref: tuple[np.ndarray, np.ndarray]) -> None:
    x, ref = grid_and_ref
    err = ulp_error(erf(x), ref, np.float64)
    print(f"float64: max error {err:.3f} ulp over {x.size} points")
    assert err <= 1.0


def test_float32_within_one_ulp() -> None:
    x = dense_grid()
    x32 = x[np.abs(x) < 1e38].astype(np.float32)
    for b in np.array(BOUNDARIES, dtype=np.float32):  # the 500 floats on either side
        x32 = np.concatenate([x32, b + np.arange(-500, 500, dtype=np.float32) * np.spacing(b)])
    ref = np.array([math.erf(float(v)) for v in x32])
    err = ulp_error(erf(x32), ref, np.float32)
    print(f"float32: max error {err:.3f} float32 ulp over {x32.size} points")
    assert err <= 1.0


def test_float32_is_not_float64_rounded() -> None:
    # Computing in float64 and rounding would be correctly rounded everywhere; the float32 path
    # must be computed in float32, so somewhere it differs from the correctly rounded value.
    x32 = np.linspace(0, 6, 100_001, dtype=np.float32)
    assert np.any(erf(x32) != erf(x32.astype(np.float64)).astype(np.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_odd_symmetry(dtype: type) -> None:
    x = np.random.default_rng(1).uniform(0, 7, 10_000).astype(dtype)
    np.testing.assert_array_equal(erf(-x), -erf(x))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_special_values(dtype: type) -> None:
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 6.0, -6.0, 100.0], dtype=dtype)
    y = erf(x)
    np.testing.assert_array_equal(y, np.array([0, 0, 1, -1, np.nan, 1, -1, 1], dtype=dtype))
    assert np.signbit(y[1]) and not np.signbit(y[0])  # erf(-0) = -0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_and_shape_preserved(dtype: type) -> None:
    x = np.random.default_rng(2).normal(0, 2, (3, 4, 5)).astype(dtype)
    y = erf(x)
    assert y.dtype == dtype and y.shape == x.shape
    scalar = erf(np.array(0.5, dtype=dtype))
    assert isinstance(scalar, np.ndarray) and scalar.shape == () and scalar.dtype == dtype
    assert erf(np.zeros((0, 3), dtype=dtype)).shape == (0, 3)


def test_integers_become_float64() -> None:
    y = erf(np.arange(-3, 4))
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, erf(np.arange(-3.0, 4.0)))


def test_input_not_modified() -> None:
    x = np.array([-2.0, -0.5, 0.5, 2.0])
    before = x.copy()
    erf(x)
    np.testing.assert_array_equal(x, before)
