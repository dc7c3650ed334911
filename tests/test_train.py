"""Training through the Python API: exact resumption, checkpoints, schedules, divergence; every
sentence task and dynamic masking."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from bert.core.model import in_sentence_head
from bert.core.streams import epoch_order
from bert.data.datasets import make_datasets
from bert.data.loading import masking_spec
from bert.data.masking import masked_epoch
from bert.engine import pool
from bert.errors import ParamsError, TrainingDivergedError
from bert.storage import checkpoint as ckpt
from bert.workflow.init import initialize
from bert.workflow.layout import Layout
from bert.workflow.params import bert_config
from bert.workflow.provenance import project_run_params as run_params
from bert.workflow.train import epoch_examples, learning_rate, next_batch, train
from bert.workflow.training_run import open_run
from tests.workflow import tiny_params

# data: sections of the pretraining recipes (the sentence task and the masking)
RECIPES = {"nsp static": {}, "nsp dynamic": {"masking": "dynamic"},
           "sop static": {"sentence_task": "sop"},
           "none dynamic": {"sentence_task": "none", "masking": "dynamic"}}
DYNAMIC = RECIPES["nsp dynamic"]


@pytest.fixture(scope="module")
def make_project(tmp_path_factory):
    """``make_project(folder, **data)``: a project folder with the data and initial weights of
    the tiny parameters with ``data`` changed, made once per ``data`` and copied."""
    made: dict[str, Path] = {}

    def make(folder: Path, **data) -> Layout:
        key = json.dumps(data, sort_keys=True)
        if key not in made:
            made[key] = tmp_path_factory.mktemp("made")
            params = tiny_params(data=data)
            make_datasets(params.data, Layout(made[key]).data_dir)
            initialize(params, Layout(made[key]))
        shutil.copytree(made[key], folder, dirs_exist_ok=True)
        return Layout(folder)

    return make


@pytest.fixture
def layout(make_project, tmp_path) -> Layout:
    """A project folder with data and initial weights made from the tiny parameters."""
    return make_project(tmp_path)


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


@pytest.mark.parametrize("data", RECIPES.values(), ids=RECIPES)
def test_more_epochs_continue_the_run_bit_identically(make_project, tmp_path, data):
    layout = make_project(tmp_path / "straight", **data)
    straight = train(tiny_params(data=data, training={"epochs": 2}), layout, progress=False)
    other = make_project(tmp_path / "other", **data)
    train(tiny_params(data=data, training={"epochs": 1}), other, progress=False)
    resumed = train(tiny_params(data=data, training={"epochs": 2}), other, progress=False)
    assert_same_state(straight, resumed)
    assert len(resumed.epoch_history) == 2
    config, weights = ckpt.load_weights(other.model_weights, "fix",
                                        bert_config(tiny_params(data=data)))
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


@pytest.mark.parametrize("data", RECIPES.values(), ids=RECIPES)
def test_resuming_mid_epoch_is_bit_identical(make_project, tmp_path, data):
    layout = make_project(tmp_path, **data)
    params = tiny_params(data=data)
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
    assert [learning_rate(s, t, 100) for s in (0, 2, 4, 8, 12, 20)] == pytest.approx(
        [0, 0.005, 0.01, 0.005, 0, 0])
    constant = dataclasses.replace(t, lr_schedule="constant")
    assert [learning_rate(s, constant, 100) for s in (2, 4, 100)] == pytest.approx(
        [0.005, 0.01, 0.01])
    inverse = dataclasses.replace(t, lr_schedule="inverse_sqrt")
    assert [learning_rate(s, inverse, 100) for s in (2, 4, 16)] == pytest.approx(
        [0.005, 0.01, 0.005])


def test_the_reference_layers_train_to_the_same_model_within_round_off(layout):
    """training.layers: reference runs every layer as its formula (bert.core.layers): another
    run (its own checkpoints), the same model to float64 round-off, not to the bit."""
    float64 = {"dtype": "float64", "epochs": 1}
    initialize(tiny_params(training={"dtype": "float64"}), layout)
    fast = train(tiny_params(training=float64), layout, progress=False)
    reference = train(tiny_params(training={**float64, "layers": "reference"}), layout,
                      progress=False)
    assert run_folder(layout, tiny_params(training=float64)) != run_folder(
        layout, tiny_params(training={**float64, "layers": "reference"}))
    assert fast.step == reference.step > 0
    np.testing.assert_allclose(reference.history["loss_total"], fast.history["loss_total"],
                               rtol=1e-11)
    differs = False
    for name, value in fast.params.items():
        np.testing.assert_allclose(reference.params[name], value, rtol=1e-9, atol=1e-12,
                                   err_msg=name)
        differs |= not np.array_equal(reference.params[name], value)
    assert differs  # two implementations: equal to round-off, not the same bits


def test_dynamic_masks_are_drawn_afresh_for_each_epoch_from_the_training_seed(make_project,
                                                                              tmp_path):
    layout = make_project(tmp_path, **DYNAMIC)
    params = tiny_params(data=DYNAMIC)
    run = open_run(params, layout)
    assert "mlm_labels" not in run.train_data  # the file holds the unmasked tokens
    first, second = epoch_examples(run, 0), epoch_examples(run, 1)
    assert epoch_examples(run, 1) is second  # computed once per epoch
    assert not np.array_equal(first["mlm_labels"], second["mlm_labels"])
    assert not np.array_equal(first["input_ids"], second["input_ids"])
    for epoch, arrays in ((0, first), (1, second)):
        expected = masked_epoch(run.train_data, params.training.random_seed, epoch,
                                masking_spec(layout.train_data))
        assert arrays.keys() == expected.keys()
        for name in expected:
            np.testing.assert_array_equal(arrays[name], expected[name], err_msg=name)
    reseeded = open_run(tiny_params(data=DYNAMIC, training={"random_seed": 1}), layout)
    assert not np.array_equal(epoch_examples(reseeded, 1)["mlm_labels"], second["mlm_labels"])
    # the batch of a step: its rows of the epoch's order, masked as the epoch masks them
    run.state.optimizer["step"] = run.batches_per_epoch + 1  # epoch 1, batch 1
    batch_size = params.data.batch_size
    rows = epoch_order(params.training.random_seed, 1, len(second["input_ids"]))[
        batch_size:2 * batch_size]
    for name, values in next_batch(run).items():
        np.testing.assert_array_equal(values, second[name][rows], err_msg=name)


def test_dynamic_masking_is_bit_identical_on_any_number_of_threads(make_project, tmp_path):
    states = [train(tiny_params(data=DYNAMIC, training={"threads": threads}),
                    make_project(tmp_path / str(threads), **DYNAMIC), progress=False)
              for threads in (1, 2)]
    assert_same_state(*states)


def test_without_a_sentence_task_the_sentence_head_stays_as_initialized(make_project,
                                                                         tmp_path):
    data = RECIPES["none dynamic"]
    layout = make_project(tmp_path, **data)
    params = tiny_params(data=data)
    state = train(params, layout, progress=False)
    _, initial = ckpt.load_weights(layout.init_weights, "fix")
    _, trained = ckpt.load_weights(layout.model_weights, "fix")
    head = [name for name in initial if in_sentence_head(name)]
    assert len(head) == 4
    for name in initial:
        if in_sentence_head(name):
            np.testing.assert_array_equal(trained[name], initial[name], err_msg=name)
            assert not state.optimizer["exp_avg_sq"][name].any(), name
        elif name.endswith("weight"):
            assert not np.array_equal(trained[name], initial[name]), name
    assert state.history["loss_nsp"] == [0.0] * state.step


@pytest.mark.parametrize("data", RECIPES.values(), ids=RECIPES)
def test_the_epoch_records_name_the_scores_after_the_sentence_task(make_project, tmp_path,
                                                                   data):
    state = train(tiny_params(data=data, training={"epochs": 1}), make_project(tmp_path, **data),
                  progress=False)
    (record,) = state.epoch_history
    task = data.get("sentence_task", "nsp")
    sentence = {f"train_{task}_loss", f"test_{task}_loss", f"test_{task}_accuracy"}
    scores = {key for key in record if key.startswith(("train_", "test_"))}
    assert scores == {"train_mlm_loss", "test_mlm_loss", "test_mlm_accuracy"} | (
        sentence if task != "none" else set())
    if task != "none":
        begin = len(state.history["loss_nsp"]) - 6
        assert record[f"train_{task}_loss"] == pytest.approx(
            np.mean(state.history["loss_nsp"][begin:]), rel=1e-12)


def test_a_schedule_that_ends_at_the_last_step_makes_the_epochs_part_of_the_run(layout):
    """decay_steps: 0: the rate falls to 0 at the run's last step (epochs x batches), so 1 and
    2 epochs are two runs, each ending at 0."""
    ends = {"lr_schedule": "linear", "decay_steps": 0, "warmup_steps": 2}
    one = train(tiny_params(training={**ends, "epochs": 1}), layout, progress=False)
    two = train(tiny_params(training={**ends, "epochs": 2}), layout, progress=False)
    assert len(one.history["learning_rate"]) == 6 and len(two.history["learning_rate"]) == 12
    for state in (one, two):
        rates = state.history["learning_rate"]
        assert rates[-1] == pytest.approx(0.01 / (len(rates) - 2))  # one step before 0
        assert rates[2] == 0.01  # warmup done
    assert one.history["learning_rate"][:6] != two.history["learning_rate"][:6]
    assert run_folder(layout, tiny_params(training={**ends, "epochs": 1})) != run_folder(
        layout, tiny_params(training={**ends, "epochs": 2}))
    with pytest.raises(ParamsError, match="decay_steps is 0, the run's last step .6., not after "
                                          "training.warmup_steps .6."):
        train(tiny_params(training={**ends, "epochs": 1, "warmup_steps": 6}), layout,
              progress=False)


def test_fewer_epochs_use_the_checkpoint_of_that_epoch_and_keep_the_others(project, caplog):
    import logging
    import subprocess
    import sys

    from tests.workflow import layout_of, tiny

    caplog.set_level(logging.INFO, logger="bert")
    params = tiny_params()
    layout = layout_of(project, tiny())
    folder = run_folder(layout, params)
    three = train(tiny_params(training={"epochs": 3}), layout, progress=False)
    kept = {p: p.read_bytes() for p in ckpt.list_checkpoints(folder)}
    two = train(params, layout, progress=False)  # epoch 2 ended at step 12, checkpointed
    assert two.step == 12 and three.step == 18
    assert "this run is already at step 18; using its checkpoint at the end of epoch 2" in (
        caplog.text)
    assert {p: p.read_bytes() for p in ckpt.list_checkpoints(folder)} == kept
    (folder / "step-000000012.h5").unlink()
    kept.pop(folder / "step-000000012.h5")
    result = subprocess.run([sys.executable, "-m", "bert", "train"], cwd=project,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "training.epochs is 2, but this run is already at step 18" in result.stderr
    assert {p: p.read_bytes() for p in ckpt.list_checkpoints(folder)} == kept
