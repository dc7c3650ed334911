"""Weight files and checkpoints: complete round trips, retention, run fingerprints, and the
newest valid checkpoint of a run."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest

from bert import BertConfig
from bert.core.optim import init_state
from bert.core.parameters import init_params
from bert.errors import DataFileError
from bert.storage import checkpoint as ckpt

CONFIG = BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                    intermediate_size=12, max_position_embeddings=10)
RUN = {"model": {"dim_model": 8}, "training": {"learning_rate": 0.01}}


def make_state(step: int) -> ckpt.TrainingState:
    """A state at ``step`` whose every part differs from a fresh one."""
    rng = np.random.default_rng(step)
    params = init_params(CONFIG, rng)
    optimizer = init_state(params)
    optimizer["step"] = step
    for moment in ("exp_avg", "exp_avg_sq"):
        for value in optimizer[moment].values():
            value += rng.random(value.shape).astype(value.dtype)
    history = {key: rng.random(step).tolist() for key in ckpt.HISTORY_KEYS}
    return ckpt.TrainingState(params, optimizer, history, [{"epoch": 1, "step": step}])


def assert_same(a: ckpt.TrainingState, b: ckpt.TrainingState) -> None:
    assert a.step == b.step and a.history == b.history and a.epoch_history == b.epoch_history
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])
        for moment in ("exp_avg", "exp_avg_sq"):
            np.testing.assert_array_equal(a.optimizer[moment][name], b.optimizer[moment][name])


def test_weights_round_trip_and_name_their_architecture(tmp_path):
    params = init_params(CONFIG, np.random.default_rng(0))
    ckpt.save_weights(tmp_path / "w.h5", CONFIG, params, RUN)
    config, loaded = ckpt.load_weights(tmp_path / "w.h5", "fix")
    assert config == CONFIG and loaded.keys() == params.keys()
    for name, value in params.items():
        np.testing.assert_array_equal(loaded[name], value)
    other = dataclasses.replace(CONFIG, hidden_size=4)
    with pytest.raises(DataFileError, match="another architecture"):
        ckpt.load_weights(tmp_path / "w.h5", "fix", other)


def test_a_checkpoint_holds_everything_a_resumed_run_needs(tmp_path):
    state = make_state(3)
    path = ckpt.save_checkpoint(tmp_path, CONFIG, state, RUN, batches_per_epoch=2, keep=5)
    assert path == tmp_path / "step-000000003.h5"
    assert_same(state, ckpt.load_checkpoint(path, CONFIG, RUN))


def test_only_the_newest_are_kept(tmp_path):
    for step in (1, 2, 3):
        ckpt.save_checkpoint(tmp_path, CONFIG, make_state(step), RUN, 2, keep=2)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == [
        "step-000000003.h5", "step-000000002.h5"]
    assert ckpt.list_checkpoints(tmp_path / "none") == []


def test_the_fingerprint_depends_on_the_values_not_the_order():
    reordered = {"training": {"learning_rate": 0.01}, "model": {"dim_model": 8}}
    assert ckpt.fingerprint(RUN) == ckpt.fingerprint(reordered)
    assert ckpt.fingerprint(RUN) != ckpt.fingerprint({**RUN, "training": {"learning_rate": 0.1}})
    assert len(ckpt.fingerprint(RUN)) == 16


def test_a_checkpoint_of_another_run_is_refused(tmp_path):
    path = ckpt.save_checkpoint(tmp_path, CONFIG, make_state(1), RUN, 2, keep=2)
    with pytest.raises(DataFileError, match="other parameters"):
        ckpt.load_checkpoint(path, CONFIG, {**RUN, "training": {"learning_rate": 0.1}})


def test_the_newest_valid_checkpoint_skips_damaged_and_later_ones(tmp_path, caplog):
    states = {step: make_state(step) for step in (1, 2, 3)}
    for state in states.values():
        ckpt.save_checkpoint(tmp_path, CONFIG, state, RUN, 2, keep=5)
    assert_same(ckpt.newest_valid_checkpoint(tmp_path, CONFIG, RUN, max_step=2), states[2])
    newest = ckpt.checkpoint_path(tmp_path, 3)
    newest.write_bytes(newest.read_bytes()[:1000])  # truncated
    with caplog.at_level(logging.WARNING):
        found = ckpt.newest_valid_checkpoint(tmp_path, CONFIG, RUN, max_step=10)
    assert_same(found, states[2])
    assert "skipping checkpoint" in caplog.text and newest.name in caplog.text
    assert ckpt.newest_valid_checkpoint(tmp_path, CONFIG, RUN, max_step=0) is None
