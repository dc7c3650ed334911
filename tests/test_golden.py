"""The NumPy model against transformers' BertForPreTraining, tensor by tensor.

The committed fixture (tests/fixtures/golden.h5, made by tests/make_golden.py) runs everywhere;
the live comparison runs when torch and transformers are installed.
"""

from __future__ import annotations

import numpy as np
import pytest

from bert import BertConfig, BertForPreTraining
from tests.golden import compare, load_fixture, run_ours

TOLERANCE = {np.float64: 1e-10, np.float32: 1e-4}


def assert_within(differences: dict[str, float], tolerance: float) -> None:
    worst = max(differences, key=differences.get)
    failing = {k: f"{v:.2e}" for k, v in differences.items() if not v <= tolerance}
    assert not failing, f"over {tolerance:.0e}: {failing}"
    assert differences[worst] <= tolerance


@pytest.mark.parametrize("layers", ["fast", "reference"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_matches_the_committed_transformers_fixture(dtype, layers):
    hf_config, optim, params, batch, reference = load_fixture()
    ours = run_ours(hf_config, optim, params, batch, dtype, layers)
    for key, value in ours.items():
        if not key.startswith(("steps/", "loss_")):  # those hold Python floats
            assert value.dtype.kind != "f" or value.dtype == dtype, key  # no silent float64
    assert_within(compare(f"fixture {np.dtype(dtype).name}", ours, reference), TOLERANCE[dtype])


def test_fixture_exercises_what_matters():
    hf_config, optim, params, batch, reference = load_fixture()
    assert (batch["attention_mask"] == 0).any() and (batch["token_type_ids"] == 1).any()
    assert np.any(reference["steps/grad_norm"] > optim["max_grad_norm"])  # clipping active
    assert set(params) == set(BertForPreTraining(BertConfig.from_hf(hf_config)).params)


@pytest.mark.parametrize("layers", ["fast", "reference"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_matches_transformers_live(dtype, layers):
    pytest.importorskip("torch", reason="needs torch: pip install -e '.[test,reference]'")
    pytest.importorskip("transformers", reason="the live comparison needs transformers")
    from tests.reference import run_reference
    from tests.test_model import make_batch

    config = BertConfig(vocab_size=37, hidden_size=12, num_hidden_layers=3, num_attention_heads=3,
                        intermediate_size=20, max_position_embeddings=12, initializer_range=0.3,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    params = BertForPreTraining(config, seed=11, dtype=np.float64).params
    rng = np.random.default_rng(12)
    for value in params.values():
        if value.ndim == 1:
            value += rng.normal(scale=0.1, size=value.shape)
    batch = make_batch(np.random.default_rng(13), config, B=4, T=10)
    optim = {"lr": 3e-3, "weight_decay": 0.05, "betas": [0.8, 0.95], "eps": 1e-6,
             "max_grad_norm": 0.5, "warmup_steps": 1, "total_steps": 4, "steps": 3}
    reference = run_reference(config.to_hf(), params, batch, steps=optim["steps"], lr=optim["lr"],
                              weight_decay=optim["weight_decay"], betas=tuple(optim["betas"]),
                              eps=optim["eps"], max_grad_norm=optim["max_grad_norm"],
                              warmup_steps=optim["warmup_steps"],
                              total_steps=optim["total_steps"])
    ours = run_ours(config.to_hf(), optim, params, batch, dtype, layers)
    assert_within(compare(f"live {np.dtype(dtype).name}", ours, reference), TOLERANCE[dtype])


@pytest.mark.parametrize("layers", ["fast", "reference"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_without_sentence_labels_matches_transformers_and_leaves_the_sentence_head(dtype, layers):
    """No sentence task (RoBERTa's recipe): transformers with ``next_sentence_label=None`` trains
    on the MLM loss alone; the pooler and ``cls.seq_relationship`` get no gradient, so torch's
    AdamW skips them (no weight decay either), and ours must leave them bit for bit too."""
    pytest.importorskip("torch", reason="needs torch: pip install -e '.[test,reference]'")
    pytest.importorskip("transformers", reason="the live comparison needs transformers")
    from bert.core.model import in_sentence_head
    from tests.reference import run_reference
    from tests.test_model import make_batch

    config = BertConfig(vocab_size=37, hidden_size=12, num_hidden_layers=2, num_attention_heads=3,
                        intermediate_size=20, max_position_embeddings=12, initializer_range=0.3,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    initial = BertForPreTraining(config, seed=5, dtype=np.float64).params
    params = {name: value.copy() for name, value in initial.items()}
    rng = np.random.default_rng(6)
    for value in params.values():
        if value.ndim == 1:
            value += rng.normal(scale=0.1, size=value.shape)
    batch = make_batch(np.random.default_rng(7), config, B=4, T=10)
    del batch["nsp_labels"]
    optim = {"lr": 3e-3, "weight_decay": 0.2, "betas": [0.8, 0.95], "eps": 1e-6,
             "max_grad_norm": 0.5, "warmup_steps": 1, "total_steps": 4, "steps": 3}
    reference = run_reference(config.to_hf(), params, batch, steps=optim["steps"], lr=optim["lr"],
                              weight_decay=optim["weight_decay"], betas=tuple(optim["betas"]),
                              eps=optim["eps"], max_grad_norm=optim["max_grad_norm"],
                              warmup_steps=optim["warmup_steps"],
                              total_steps=optim["total_steps"])
    ours = run_ours(config.to_hf(), optim, params, batch, dtype, layers)
    assert_within(compare(f"no sentence task {np.dtype(dtype).name}", ours, reference),
                  TOLERANCE[dtype])
    head = [name for name in params if in_sentence_head(name)]
    assert len(head) == 4
    for name in head:
        start = params[name].astype(dtype)
        np.testing.assert_array_equal(reference[f"final/{name}"], params[name], err_msg=name)
        np.testing.assert_array_equal(ours[f"final/{name}"], start, err_msg=name)
        assert not ours[f"grads/{name}"].any() and not ours[f"adam/exp_avg_sq/{name}"].any()
    assert np.all(ours["steps/loss_nsp"] == 0)
    decayed = "bert.encoder.layer.0.output.dense.weight"
    assert not np.array_equal(ours[f"final/{decayed}"], params[decayed].astype(dtype))
