"""The whole model: parameter layout, initialization, gradients by finite differences, inference."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from bert import BertConfig, BertForPreTraining
from bert.core.config import WORD_EMBEDDINGS, param_shapes
from bert.core.layers import cross_entropy_backward, linear_backward
from bert.core.model import backward, forward
from tests.numgrad import (
    check_directional_gradient,
    check_gradient,
    numerical_gradient,
    relative_error,
)

TINY = BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
                  intermediate_size=12, max_position_embeddings=10, initializer_range=0.5,
                  hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def make_batch(rng: np.random.Generator, config: BertConfig, B: int = 3, T: int = 8) -> dict:
    """[CLS] A [SEP] B [SEP] rows, the last two padded at the end, a few MLM labels per row."""
    input_ids = rng.integers(4, config.vocab_size, size=(B, T))
    token_type_ids = np.zeros((B, T), dtype=np.int64)
    attention_mask = np.ones((B, T), dtype=np.int64)
    lengths = [T, T - 2, T - 3][:B]
    mlm_labels = np.full((B, T), -100)
    for b, length in enumerate(lengths):
        middle = length // 2
        input_ids[b, [0, middle, length - 1]] = [1, 2, 2]  # [CLS] ... [SEP] ... [SEP]
        token_type_ids[b, middle + 1:length] = 1
        input_ids[b, length:] = 0  # [PAD]
        attention_mask[b, length:] = 0
        for t in (1, middle + 1):
            mlm_labels[b, t] = input_ids[b, t]
            input_ids[b, t] = 3  # [MASK]
    return {"input_ids": input_ids, "token_type_ids": token_type_ids,
            "attention_mask": attention_mask, "mlm_labels": mlm_labels,
            "nsp_labels": np.arange(B) % 2}


def perturbed_model(config: BertConfig, seed: int = 0) -> BertForPreTraining:
    """A float64 model whose biases and LayerNorm parameters are not 0 and 1."""
    model = BertForPreTraining(config, seed=seed, dtype=np.float64)
    rng = np.random.default_rng(seed + 100)
    for value in model.params.values():
        if value.ndim == 1:
            value += rng.normal(scale=0.2, size=value.shape)
    return model


def test_parameter_names_and_shapes_follow_transformers():
    shapes = param_shapes(TINY)
    assert list(shapes)[:3] == [WORD_EMBEDDINGS, "bert.embeddings.position_embeddings.weight",
                                "bert.embeddings.token_type_embeddings.weight"]
    assert shapes["bert.encoder.layer.1.intermediate.dense.weight"] == (12, 8)
    assert shapes["bert.encoder.layer.1.output.dense.weight"] == (8, 12)
    assert shapes["cls.predictions.bias"] == (20,)
    assert shapes["cls.seq_relationship.weight"] == (2, 8)
    assert "cls.predictions.decoder.weight" not in shapes
    assert len(shapes) == 5 + 16 * TINY.num_hidden_layers + 2 + 5 + 2


def test_initialization_matches_transformers_rules():
    config = BertConfig(vocab_size=300, hidden_size=64, num_hidden_layers=1,
                        num_attention_heads=4, intermediate_size=128)
    model = BertForPreTraining(config, seed=3)
    assert all(p.dtype == np.float32 for p in model.params.values())
    for name, value in model.params.items():
        if name.endswith("LayerNorm.weight"):
            assert np.all(value == 1), name
        elif value.ndim == 1:
            assert np.all(value == 0), name
        else:
            std = value[1:].std() if name == WORD_EMBEDDINGS else value.std()
            assert abs(std / 0.02 - 1) < 0.1, (name, std)
            assert abs(value.mean()) < 0.002, name
    assert np.all(model.params[WORD_EMBEDDINGS][config.pad_token_id] == 0)
    again = BertForPreTraining(config, seed=3, dtype=np.float64)
    for name, value in model.params.items():
        np.testing.assert_array_equal(value, again.params[name].astype(np.float32))
    other = BertForPreTraining(config, seed=4)
    assert not np.array_equal(other.params[WORD_EMBEDDINGS], model.params[WORD_EMBEDDINGS])


@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_model_gradient_matches_finite_differences(dropout):
    config = replace(TINY, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    model = perturbed_model(config)
    batch = make_batch(np.random.default_rng(5), config)
    weights = (0.7, 1.3)  # loss weights that are not 1, so their use is checked too

    def total_loss() -> float:
        losses, _ = forward(model.params, config, batch, np.random.default_rng(9), *weights)
        return losses["total"]

    losses, cache = forward(model.params, config, batch, np.random.default_rng(9), *weights)
    grads = backward(model.params, config, cache)
    assert grads.keys() == model.params.keys()
    worst = 0.0
    for name, value in model.params.items():
        assert grads[name].shape == value.shape and grads[name].dtype == np.float64
        if name.endswith("attention.self.key.bias"):
            # softmax is shift-invariant per query, so the key bias has no effect on the loss
            _, numeric = numerical_gradient(total_loss, value)
            assert np.all(grads[name] == 0) and np.max(np.abs(numeric)) < 1e-8
            continue
        # every entry of every gradient, along random directions
        worst = max(worst, check_directional_gradient(total_loss, value, grads[name], tol=1e-6))
    print(f"whole-model finite-difference check, dropout {dropout}: worst {worst:.2e}")


def test_the_whole_model_check_finds_one_wrong_entry_of_a_gradient():
    """The check above along random directions finds one entry off by 1e-3 of the largest,
    where 24 entries checked one by one (as it once did) miss it when it is not among them."""
    model = perturbed_model(TINY)
    batch = make_batch(np.random.default_rng(5), TINY)
    _, cache = forward(model.params, TINY, batch)
    name = "bert.encoder.layer.0.attention.output.dense.weight"
    wrong = backward(model.params, TINY, cache)[name]
    wrong.flat[7] += 1e-3 * np.max(np.abs(wrong))

    def total_loss() -> float:
        return forward(model.params, TINY, batch)[0]["total"]

    assert check_gradient(total_loss, model.params[name], wrong, tol=1e-6, max_entries=24) < 1e-6
    with pytest.raises(AssertionError, match="directional gradient error"):
        check_directional_gradient(total_loss, model.params[name], wrong, tol=1e-6)


def test_padding_row_gets_only_the_decoder_gradient():
    model = perturbed_model(TINY)
    batch = make_batch(np.random.default_rng(2), TINY)
    batch["input_ids"][0, 2] = TINY.pad_token_id  # a [PAD] looked up at an attended position
    losses, cache = forward(model.params, TINY, batch)
    grads = backward(model.params, TINY, cache)
    # the decoder's part alone: dlogits (M, V) back through logits = t @ word_embeddings.T
    dlogits = cross_entropy_backward(1.0, cache.mlm_loss)
    _, ddecoder, _ = linear_backward(dlogits, cache.mlm_head.decoder)
    np.testing.assert_array_equal(grads[WORD_EMBEDDINGS][0], ddecoder[0])
    assert np.any(ddecoder[0] != 0)


def test_loss_weights_scale_losses_and_gradients():
    model = perturbed_model(TINY)
    batch = make_batch(np.random.default_rng(1), TINY)
    losses_1, grads_1 = model.loss_and_grads(batch)
    losses_2, grads_2 = model.loss_and_grads(batch, mlm_weight=2.0, nsp_weight=0.0)
    assert losses_1["total"] == losses_1["mlm"] + losses_1["nsp"]
    assert losses_2["total"] == 2 * losses_2["mlm"]
    assert np.all(grads_2["cls.seq_relationship.weight"] == 0)
    np.testing.assert_allclose(grads_2["cls.predictions.bias"], 2 * grads_1["cls.predictions.bias"],
                               rtol=1e-12)


def test_without_sentence_labels_the_sentence_head_does_not_run(monkeypatch):
    """No nsp_labels (no sentence task): no pooler, no sentence classifier, no sentence loss;
    the rest of the gradient is the MLM loss's alone."""
    import bert.core.model as model_module
    from bert.core.model import in_sentence_head

    model = perturbed_model(TINY)
    batch = make_batch(np.random.default_rng(2), TINY)
    _, mlm_only = model.loss_and_grads(batch, nsp_weight=0.0)
    unlabelled = {k: v for k, v in batch.items() if k != "nsp_labels"}

    def no_head(*args):
        raise AssertionError("the sentence head ran without sentence labels")

    monkeypatch.setattr(model_module, "_nsp_head_forward", no_head)
    monkeypatch.setattr(model_module, "_nsp_head_backward", no_head)
    losses, cache = forward(model.params, TINY, unlabelled, mlm_weight=2.0, nsp_weight=0.5)
    assert cache.nsp_head is None and cache.nsp_loss is None
    assert losses["nsp"] == 0 and losses["total"] == 2 * losses["mlm"]
    grads = backward(model.params, TINY, forward(model.params, TINY, unlabelled)[1])
    head = [name for name in grads if in_sentence_head(name)]
    assert sorted(head) == ["bert.pooler.dense.bias", "bert.pooler.dense.weight",
                            "cls.seq_relationship.bias", "cls.seq_relationship.weight"]
    for name, grad in grads.items():
        if in_sentence_head(name):
            assert not grad.any(), name
        else:
            np.testing.assert_allclose(grad, mlm_only[name], rtol=1e-13, atol=1e-16,
                                       err_msg=name)


def test_loss_and_grads_is_deterministic_without_dropout_and_float32_by_default():
    config = TINY
    model = BertForPreTraining(config, seed=1)
    batch = make_batch(np.random.default_rng(0), config)
    losses_a, grads_a = model.loss_and_grads(batch)
    losses_b, grads_b = model.loss_and_grads(batch)
    assert losses_a == losses_b
    for name in grads_a:
        assert grads_a[name].dtype == np.float32
        np.testing.assert_array_equal(grads_a[name], grads_b[name])


def test_dropout_draws_from_the_model_generator():
    config = replace(TINY, hidden_dropout_prob=0.3)
    batch = make_batch(np.random.default_rng(0), config)
    model = BertForPreTraining(config, seed=1, dtype=np.float64)
    first, _ = model.loss_and_grads(batch)
    second, _ = model.loss_and_grads(batch)
    assert first != second  # a new mask each call
    fresh = BertForPreTraining(config, seed=1, dtype=np.float64)
    assert fresh.loss_and_grads(batch)[0] == first  # same seed, same masks


def test_forward_logits_at_chosen_positions_give_the_training_loss():
    model = perturbed_model(TINY)
    batch = make_batch(np.random.default_rng(4), TINY)
    labelled = batch["mlm_labels"] != -100
    everywhere = model.forward(batch)
    chosen = model.forward(batch, mlm_positions=labelled)
    assert everywhere["mlm_logits"].shape == (3, 8, TINY.vocab_size)
    assert relative_error(chosen["mlm_logits"], everywhere["mlm_logits"][labelled]) < 1e-15
    logits, labels = chosen["mlm_logits"], batch["mlm_labels"][labelled]
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    mlm = -log_probs[np.arange(len(labels)), labels].mean()
    nsp_log_probs = everywhere["nsp_logits"] - np.log(
        np.exp(everywhere["nsp_logits"]).sum(-1, keepdims=True))
    nsp = -nsp_log_probs[np.arange(3), batch["nsp_labels"]].mean()
    losses, _ = model.loss_and_grads(batch)
    assert abs(losses["mlm"] - mlm) < 1e-12 and abs(losses["nsp"] - nsp) < 1e-12


def test_padding_does_not_change_the_unpadded_positions():
    model = perturbed_model(TINY)
    batch = make_batch(np.random.default_rng(6), TINY)
    length = int(batch["attention_mask"][1].sum())
    short = {k: v[1:2, :length] for k, v in batch.items() if v.ndim == 2}
    padded = {k: v[1:2] for k, v in batch.items() if v.ndim == 2}
    h_short = model.forward(short)["hidden_states"][-1]
    h_padded = model.forward(padded)["hidden_states"][-1]
    assert relative_error(h_padded[:, :length], h_short) < 1e-14
