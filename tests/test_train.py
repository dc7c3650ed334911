"""Training through the Python API: exact resumption, checkpoints, schedules, divergence."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bert.data.datasets import make_datasets
from bert.engine import pool
from bert.errors import TrainingDivergedError
from bert.storage import checkpoint as ckpt
from bert.workflow.init import initialize
from bert.workflow.layout import Layout
from bert.workflow.params import bert_config
from bert.workflow.train import learning_rate, run_params, train
from tests.workflow import tiny_params


@pytest.fixture
def layout(tmp_path) -> Layout:
    """A project folder with data and initial weights made from the tiny parameters."""
    layout = Layout(tmp_path)
    params = tiny_params()
    make_datasets(params.data, layout.data_dir)
    initialize(params, layout)
    return layout


def run_folder(layout: Layout, params) -> object:
    return layout.checkpoints / ckpt.fingerprint(run_params(params, layout))


def assert_same_state(a: ckpt.TrainingState, b: ckpt.TrainingState) -> None:
    assert a.step == b.step
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name], err_msg=name)
        np.testing.assert_array_equal(a.optimizer["exp_avg_sq"][name],
                                      b.optimizer["exp_avg_sq"][name], err_msg=name)
    assert a.history == b.history
    drop_timing = [{k: v for k, v in r.items() if k not in ("seconds", "tokens_per_second")}
                   for r in a.epoch_history]
    assert drop_timing == [{k: v for k, v in r.items()
                            if k not in ("seconds", "tokens_per_second")}
                           for r in b.epoch_history]


def test_more_epochs_continue_the_run_bit_identically(layout, tmp_path):
    straight = train(tiny_params(training={"epochs": 3}), layout, progress=False)
    other = Layout(tmp_path / "other")
    params = tiny_params()
    make_datasets(params.data, other.data_dir)
    initialize(params, other)
    train(tiny_params(training={"epochs": 2}), other, progress=False)
    resumed = train(tiny_params(training={"epochs": 3}), other, progress=False)
    assert_same_state(straight, resumed)
    assert len(resumed.epoch_history) == 3
    config, weights = ckpt.load_weights(other.model_weights, "fix", bert_config(params))
    for name, value in weights.items():
        np.testing.assert_array_equal(value, straight.params[name])


@pytest.fixture
def restore_threads():
    before = pool.threads()
    yield
    pool.set_threads(before)


def test_a_run_resumed_under_another_thread_count_is_bit_identical(tmp_path, caplog,
                                                                     restore_threads):
    def params(threads: int, epochs: int):  # 4 micro-batches on the threads, dropout on
        return tiny_params(model={"hidden_dropout": 0.1, "attention_dropout": 0.1},
                           training={"micro_batches": 4, "threads": threads, "epochs": epochs})

    straight, resumed = Layout(tmp_path / "straight"), Layout(tmp_path / "resumed")
    for layout in (straight, resumed):
        make_datasets(params(1, 1).data, layout.data_dir)
        initialize(params(1, 1), layout)
    straight_state = train(params(2, 2), straight, progress=False)
    train(params(1, 1), resumed, progress=False)
    with caplog.at_level("INFO"):
        resumed_state = train(params(3, 2), resumed, progress=False)
    assert "resuming from step 6" in caplog.text and "3 compute threads" in caplog.text
    assert_same_state(straight_state, resumed_state)


def test_resuming_mid_epoch_is_bit_identical(layout):
    params = tiny_params()
    full = train(params, layout, progress=False)
    folder = run_folder(layout, params)
    steps = [int(p.stem.split("-")[1]) for p in ckpt.list_checkpoints(folder)]
    assert 8 in steps  # mid-epoch: epochs have 6 steps and checkpoints come every 4
    for path in ckpt.list_checkpoints(folder):
        if int(path.stem.split("-")[1]) > 8:
            path.unlink()
    resumed = train(params, layout, progress=False)
    assert_same_state(full, resumed)


def test_a_corrupt_newest_checkpoint_is_skipped(layout, caplog):
    params = tiny_params()
    full = train(params, layout, progress=False)
    folder = run_folder(layout, params)
    newest = ckpt.list_checkpoints(folder)[0]
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # truncated
    resumed = train(params, layout, progress=False)
    assert "skipping checkpoint" in caplog.text and newest.name in caplog.text
    assert_same_state(full, resumed)


def test_other_parameters_never_reuse_checkpoints(layout):
    first = tiny_params()
    train(first, layout, progress=False)
    changed = tiny_params(training={"learning_rate": 0.02})
    assert run_folder(layout, changed) != run_folder(layout, first)
    state = train(changed, layout, progress=False)
    assert ckpt.list_checkpoints(run_folder(layout, first))  # the old run is left alone
    assert state.history["learning_rate"][1] == pytest.approx(0.01)  # 0.02 * 1/2 warmup


def test_checkpoint_of_another_run_is_refused(layout):
    params = tiny_params()
    train(params, layout, progress=False)
    path = ckpt.list_checkpoints(run_folder(layout, params))[0]
    other = tiny_params(training={"weight_decay": 0.5})
    with pytest.raises(Exception, match="other parameters"):
        ckpt.load_checkpoint(path, bert_config(other), run_params(other, layout))


def test_checkpoints_are_complete_and_retention_keeps_the_newest(layout):
    params = tiny_params(training={"keep_checkpoints": 2})
    state = train(params, layout, progress=False)
    paths = ckpt.list_checkpoints(run_folder(layout, params))
    assert [p.name for p in paths] == ["step-000000012.h5", "step-000000008.h5"]
    loaded = ckpt.load_checkpoint(paths[0], bert_config(params), run_params(params, layout))
    assert_same_state(state, loaded)


def test_a_nan_loss_stops_training_and_writes_no_nan(layout):
    params = tiny_params()
    config, weights = ckpt.load_weights(layout.init_weights, "fix")
    weights["bert.encoder.layer.0.output.dense.weight"][0, 0] = np.nan
    ckpt.save_weights(layout.init_weights, config, weights, {})
    with pytest.raises(TrainingDivergedError, match=r"step 1: the loss is nan.*learning_rate"):
        train(params, layout, progress=False)
    assert not ckpt.list_checkpoints(run_folder(layout, params))
    assert not layout.model_weights.exists()


def test_steps_past_the_end_of_a_linear_schedule_are_announced(layout, caplog):
    past = tiny_params(training={"lr_schedule": "linear", "decay_steps": 8})  # 12 steps
    with caplog.at_level("WARNING"):
        train(past, layout, progress=False)
    assert ("asks for 12 steps, but the linear schedule's learning rate is 0 from step 8 "
            "(training.decay_steps) on") in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        train(tiny_params(training={"lr_schedule": "linear", "decay_steps": 12}), layout,
              progress=False)
    assert "linear schedule" not in caplog.text


def test_schedules_depend_on_the_step_alone():
    params = tiny_params(training={"warmup_steps": 4, "decay_steps": 12, "lr_schedule": "linear"})
    t = params.training
    assert [learning_rate(s, t) for s in (0, 2, 4, 8, 12, 20)] == pytest.approx(
        [0, 0.005, 0.01, 0.005, 0, 0])
    constant = dataclasses.replace(t, lr_schedule="constant")
    assert [learning_rate(s, constant) for s in (2, 4, 100)] == pytest.approx([0.005, 0.01, 0.01])
    inverse = dataclasses.replace(t, lr_schedule="inverse_sqrt")
    assert [learning_rate(s, inverse) for s in (2, 4, 16)] == pytest.approx([0.005, 0.01, 0.005])
