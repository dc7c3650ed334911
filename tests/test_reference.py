"""The reference itself: the committed fixture is reproducible and exercises what it claims to.

Skipped without torch and transformers (pip install '.[reference]').
"""

from __future__ import annotations

import numpy as np
import pytest

from bert.bench.system import reference_available
from tests.make_golden import CLS, FIXTURE, IGNORE, MASK, PAD, SEP, generate, read

# torch and transformers are imported by the tests, not when the file is collected: a worker
# that runs none of them never pays for the import (tests/workers.py)
pytestmark = pytest.mark.skipif(
    not reference_available(), reason="the reference needs torch and transformers "
                                      "(pip install '.[reference]')")


@pytest.fixture(scope="module")
def reference():
    """tests/reference.py, which imports torch and transformers."""
    from tests import reference

    return reference


@pytest.fixture(scope="module")
def committed() -> dict:
    return read(FIXTURE)


@pytest.fixture(scope="module")
def regenerated() -> dict:
    return generate()


def _family(key: str) -> str:
    """The kind of a reference tensor (``grads``, ``adam/exp_avg``, ``final``, ...): tensors
    of one kind share a scale."""
    return key.rsplit("/", 1)[0] if "/" in key else key


def test_regenerating_gives_the_committed_fixture(committed, regenerated) -> None:
    """Our own part of the fixture (config, weights, batch) is drawn with NumPy's generators and
    comes back bit for bit. transformers' outputs come back to float64 round-off: torch picks
    its float64 kernels by CPU, so another CPU model rounds some sums differently (seen: 1 ulp
    here and there between two x86 CPUs). The bound is 1e-12 of the largest value of the same
    kind of tensor, so that a pure round-off tensor (the key bias's gradient and moments, 0 in
    exact arithmetic) is held to the scale of its siblings, not to its own noise."""
    assert committed["config"] == regenerated["config"]
    assert committed["optim"] == regenerated["optim"]
    for group in ("params", "batch", "reference"):
        assert set(committed[group]) == set(regenerated[group]), group
    for group in ("params", "batch"):
        for key, value in regenerated[group].items():
            stored = committed[group][key]
            assert stored.dtype == value.dtype and stored.shape == value.shape, f"{group}/{key}"
            assert np.array_equal(stored, value), f"{group}/{key} differs from a fresh run"
    reference = committed["reference"]
    scale: dict[str, float] = {}
    for key, value in reference.items():
        scale[_family(key)] = max(scale.get(_family(key), 0.0), float(np.max(np.abs(value))))
    for key, value in regenerated["reference"].items():
        stored = reference[key]
        assert stored.dtype == value.dtype and stored.shape == value.shape, f"reference/{key}"
        worst = float(np.max(np.abs(stored - value)))
        assert worst <= 1e-12 * scale[_family(key)], f"reference/{key} differs by {worst:.3g}"


def test_fixture_meets_its_design(committed, reference) -> None:
    config, optim = committed["config"], committed["optim"]
    params, batch, ref = committed["params"], committed["batch"], committed["reference"]
    assert FIXTURE.stat().st_size < 1_000_000
    assert config["intermediate_size"] != 4 * config["hidden_size"]
    assert config["num_attention_heads"] > 1 and config["num_hidden_layers"] > 1
    assert set(params) == set(reference.hf_param_names(config))

    # non-trivial biases and LayerNorm parameters; the [PAD] row as transformers leaves it
    for name, value in params.items():
        if name.endswith("bias") or "LayerNorm" in name:
            assert np.all(value != np.round(value)), name  # moved off 0 / 1
    assert np.all(params["bert.embeddings.word_embeddings.weight"][PAD] == 0)

    # padding, both segments, specials in place, MLM labels on attended words only
    ids, types, mask = batch["input_ids"], batch["token_type_ids"], batch["attention_mask"]
    labels = batch["mlm_labels"]
    assert ids.shape[1] < config["max_position_embeddings"]
    assert (mask == 0).any(axis=1).sum() == 2 and np.all(ids[mask == 0] == PAD)
    assert np.all(types[mask == 0] == 0) and (types == 1).any() and (types[mask == 1] == 0).any()
    assert np.all(ids[:, 0] == CLS) and np.all((ids == SEP).sum(axis=1) == 2)
    labelled = labels != IGNORE
    assert np.all(labelled.sum(axis=1) >= 2)
    assert np.all(mask[labelled] == 1) and np.all(labels[labelled] > MASK)
    shown = ids[labelled]
    assert (shown == MASK).any() and (shown == labels[labelled]).any()
    assert ((shown != MASK) & (shown != labels[labelled])).any()  # a random word
    assert set(batch["nsp_labels"]) == {0, 1}

    # clipping active on some step and not on another; warmup then full lr
    norms = ref["steps/grad_norm"]
    assert np.any(norms > optim["max_grad_norm"]) and np.any(norms < optim["max_grad_norm"])
    np.testing.assert_allclose(ref["steps/lr"], optim["lr"] * np.array([0.0, 0.5, 1.0]))

    # the reference's own bookkeeping
    assert all(value.dtype == np.float64 for value in ref.values())
    assert ref["loss_total"] == ref["loss_mlm"] + ref["loss_nsp"]
    assert ref["steps/loss_total"][0] == ref["loss_total"]
    assert ref["adam/step"] == optim["steps"]
    assert (
        len([k for k in ref if k.startswith("hidden_states/")]) == config["num_hidden_layers"] + 1
    )
    assert np.ptp(ref["mlm_logits"], axis=-1).min() > 1.0  # far from uniform


def test_rejects_params_that_do_not_match(committed, reference) -> None:
    config, optim, batch = committed["config"], committed["optim"], committed["batch"]
    kwargs = {k: optim[k] for k in ("lr", "weight_decay", "eps", "max_grad_norm")}
    kwargs |= {"betas": tuple(optim["betas"]), "warmup_steps": 2, "total_steps": 5, "steps": 1}
    params = dict(committed["params"])

    missing = {k: v for k, v in params.items() if k != "cls.predictions.bias"}
    with pytest.raises(KeyError, match="cls.predictions.bias"):
        reference.run_reference(config, missing, batch, **kwargs)
    aliased = params | {"cls.predictions.decoder.bias": params["cls.predictions.bias"]}
    with pytest.raises(KeyError, match="cls.predictions.decoder.bias"):
        reference.run_reference(config, aliased, batch, **kwargs)
    transposed = params | {
        "bert.encoder.layer.0.intermediate.dense.weight": params[
            "bert.encoder.layer.0.intermediate.dense.weight"
        ].T
    }
    with pytest.raises(ValueError, match="intermediate.dense.weight"):
        reference.run_reference(config, transposed, batch, **kwargs)


def test_float32_reference_is_close_to_float64(committed, reference) -> None:
    config, optim, batch = committed["config"], committed["optim"], committed["batch"]
    kwargs = {k: optim[k] for k in ("lr", "weight_decay", "eps", "max_grad_norm", "steps")}
    kwargs |= {k: optim[k] for k in ("warmup_steps", "total_steps")}
    ref32 = reference.run_reference(
        config,
        committed["params"],
        batch,
        betas=tuple(optim["betas"]),
        dtype=reference.torch.float32,
        **kwargs,
    )
    for key in ("mlm_logits", "loss_total", "grads/bert.embeddings.word_embeddings.weight"):
        assert ref32[key].dtype == np.float32
        expected = committed["reference"][key]
        assert np.max(np.abs(ref32[key] - expected)) <= 1e-4 * np.max(np.abs(expected)), key
