"""Centred finite differences in float64, for checking hand-written backward passes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def numerical_gradient(
    f: Callable[[], float], x: np.ndarray, eps: float = 1e-6, max_entries: int | None = None,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """d f / d x by centred differences, perturbing ``x`` in place (restored afterwards).

    Returns ``(flat_indices, gradient_at_those_indices)``; every entry of ``x`` is checked
    unless ``max_entries`` asks for a random sample of that size.
    """
    assert x.dtype == np.float64, "finite differences need float64"
    flat = x.reshape(-1)  # a view: perturbing it perturbs x
    indices = np.arange(flat.size)
    if max_entries is not None and flat.size > max_entries:
        indices = np.sort((rng or np.random.default_rng(0)).choice(flat.size, max_entries,
                                                                   replace=False))
    grad = np.empty(len(indices))
    for n, i in enumerate(indices):
        original = flat[i]
        flat[i] = original + eps
        plus = f()
        flat[i] = original - eps
        minus = f()
        flat[i] = original
        grad[n] = (plus - minus) / (2 * eps)
    return indices, grad


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |actual - expected| / max |expected| (0 when both are all zero)."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    scale = np.max(np.abs(expected)) if expected.size else 0.0
    diff = np.max(np.abs(actual - expected)) if expected.size else 0.0
    if scale == 0:
        return float(diff)
    return float(diff / scale)


def check_gradient(
    f: Callable[[], float], x: np.ndarray, analytic: np.ndarray, tol: float = 1e-7,
    max_entries: int | None = None,
) -> float:
    """Assert the analytic gradient of f w.r.t. x matches finite differences; return the error."""
    assert analytic.shape == x.shape, (analytic.shape, x.shape)
    indices, numeric = numerical_gradient(f, x, max_entries=max_entries)
    assert np.any(numeric != 0) or np.all(analytic == 0), "a zero check cannot fail"
    error = relative_error(analytic.reshape(-1)[indices], numeric)
    assert error <= tol, f"relative gradient error {error:.3e} > {tol:.0e}"
    return error


def check_directional_gradient(
    f: Callable[[], float], x: np.ndarray, analytic: np.ndarray, tol: float = 1e-7,
    directions: int = 3, eps: float = 1e-6, rng: np.random.Generator | None = None,
) -> float:
    """Assert the analytic gradient of f w.r.t. x along random directions ``v``, ``<g, v>``,
    matches ``(f(x + eps v) - f(x - eps v)) / 2 eps``; return the error.

    Each direction moves every entry of ``x`` at once, so every entry of the gradient takes
    part in each check (as in torch.autograd.gradcheck's fast mode), at the cost of two calls
    of ``f`` per direction. ``x`` is restored afterwards.
    """
    assert x.dtype == np.float64, "finite differences need float64"
    assert analytic.shape == x.shape, (analytic.shape, x.shape)
    rng = rng or np.random.default_rng(0)
    original = x.copy()
    numeric, projected = np.empty(directions), np.empty(directions)
    for n in range(directions):
        v = rng.standard_normal(x.shape)
        x[...] = original + eps * v
        plus = f()
        x[...] = original - eps * v
        minus = f()
        x[...] = original
        numeric[n], projected[n] = (plus - minus) / (2 * eps), np.vdot(analytic, v)
    assert np.any(numeric != 0) or np.all(analytic == 0), "a zero check cannot fail"
    error = relative_error(projected, numeric)
    assert error <= tol, f"relative directional gradient error {error:.3e} > {tol:.0e}"
    return error
