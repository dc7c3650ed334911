"""AdamW, clipping and the schedule against their definitions (torch: tests/test_golden.py)."""

from __future__ import annotations

import math

import numpy as np

from bert.core.flat import FlatParams
from bert.core.optim import AdamWConfig, adamw_step, clip_grad_norm, init_state, linear_warmup_decay
from bert.core.parameters import is_decayed


def test_schedule_warms_up_then_decays_to_zero():
    values = [linear_warmup_decay(s, 4, 12) for s in range(15)]
    assert values[:5] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert values[8] == 0.5 and values[12] == 0.0 and values[14] == 0.0
    assert linear_warmup_decay(0, 0, 10) == 1.0  # no warmup starts at the full rate


def test_clipping_scales_to_max_norm_and_reports_the_norm_before():
    grads = FlatParams.of({"a": np.array([3.0, 0.0]), "b": np.array([[4.0]])})
    norm = clip_grad_norm(grads, 1.0)
    assert norm == 5.0
    assert math.isclose(math.hypot(*grads["a"], grads["b"][0, 0]), 1.0, rel_tol=1e-6)
    small = FlatParams.of({"a": np.array([0.1, 0.2])})
    clip_grad_norm(small, 1.0)
    np.testing.assert_array_equal(small["a"], [0.1, 0.2])  # under the limit: untouched


def test_adamw_two_steps_by_hand_and_no_decay_on_biases_and_layernorm():
    config = AdamWConfig(beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=0.1)
    names = ("dense.weight", "dense.bias", "x.LayerNorm.weight")
    params = FlatParams.of({n: np.array([1.0, -2.0]) for n in names})
    state = init_state(params)
    grads = [np.array([0.5, -1.0]), np.array([0.3, 0.2])]
    lr = 0.01
    expected = {n: np.array([1.0, -2.0]) for n in names}
    m = v = np.zeros(2)
    for step, g in enumerate(grads, start=1):
        adamw_step(params, FlatParams.of({n: g for n in names}), state, lr, config, is_decayed)
        m = 0.9 * m + 0.1 * g
        v = 0.99 * v + 0.01 * g * g
        update = lr * (m / (1 - 0.9**step)) / (np.sqrt(v / (1 - 0.99**step)) + 1e-8)
        expected["dense.weight"] = expected["dense.weight"] * (1 - lr * 0.1) - update
        for n in names[1:]:
            expected[n] = expected[n] - update
    assert state["step"] == 2
    for n in names:
        np.testing.assert_allclose(params[n], expected[n], rtol=1e-14)
        np.testing.assert_allclose(state["exp_avg"][n], m, rtol=1e-14)
        np.testing.assert_allclose(state["exp_avg_sq"][n], v, rtol=1e-14)
