"""The whole train stage against a plain PyTorch training loop: ``python -m bert.bench stage``.

What a user feels is the train stage, not a step: ``python -m bert train`` (the command ``doit``
runs), with its start-up, the batches gathered from the training set, the progress bar, the
scoring at the end of each epoch and the checkpoints. Its time per step is taken as the
difference between a 2-epoch and a 1-epoch run, divided by the steps of an epoch, so that the
start-up (imports, reading the data) cancels.

The same is done for a plain PyTorch loop over the same training set in the same order
(``--worker``): transformers' ``BertForPreTraining`` with the same config, the learning rate of
the same schedule, ``torch.optim.AdamW`` over the same two parameter groups and
``clip_grad_norm_`` (``bert.bench.sides.torch_step``), on ``--threads`` threads; it does nothing
else (no scoring, no checkpoints).

The parameters are a params file (default ``params.yaml``) with ``--set key=value`` changes; the
data and the initial weights are made once in a temporary project folder (not timed), then the
four runs (ours and torch, 1 and 2 epochs) take turns, ``--repeats`` times. Ours is the run
``RUN`` of that folder (``bert.workflow.layout.Layout.of``): its run folder is removed before
each of its runs, so that each starts from the initial weights.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from bert.bench.clock import timed
from bert.bench.sides import torch_adamw, torch_inputs, torch_model, torch_step
from bert.bench.tables import stage_table
from bert.bench.workers import threads_env, worker_command
from bert.workflow.layout import Layout
from bert.workflow.loader import load_params

EPOCHS = (1, 2)  # the two runs whose difference is an epoch of steps
PARAMS_FILE = "params.yaml"  # in the temporary project folder
RUN = "bench"  # the name of our run there (bert.workflow.layout)


def parse_setting(text: str) -> tuple[list[str], object]:
    """``section.key=value`` -> (["section", "key"], the value read as YAML)."""
    key, sep, value = text.partition("=")
    if not sep or "." not in key:
        raise argparse.ArgumentTypeError(f"{text!r}: write section.key=value, e.g. "
                                         "model.dim_ff=256")
    return key.split("."), yaml.safe_load(value)


def project_params(path: Path, settings: list[tuple[list[str], object]]) -> dict:
    """The mapping of the params file with the settings applied, its text files made absolute
    (the project folder is the file's)."""
    mapping = yaml.safe_load(path.read_text()) or {}
    for keys, value in settings:
        section = mapping
        for key in keys[:-1]:
            if not isinstance(section.get(key), dict):  # absent, or empty in the file
                section[key] = {}
            section = section[key]
        section[keys[-1]] = value
    data = mapping.get("data") or {}
    if data.get("text_files"):
        data["text_files"] = [str((path.parent / p).absolute()) for p in data["text_files"]]
    return mapping


def with_epochs(mapping: dict, epochs: int) -> dict:
    return {**mapping, "training": {**(mapping.get("training") or {}), "epochs": epochs}}


def timed_run(command: list[str], folder: Path, env: dict | None = None) -> float:
    """Seconds ``command`` takes in ``folder``; its error output if it fails."""
    done = []
    seconds = timed(lambda: done.append(subprocess.run(command, cwd=folder, env=env,
                                                       capture_output=True, text=True)))
    if done[0].returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed in {folder}:\n{done[0].stderr}")
    return seconds


def write_params(folder: Path, mapping: dict) -> None:
    (folder / PARAMS_FILE).write_text(yaml.safe_dump(mapping))


def stage_command(name: str) -> list[str]:
    """The command of stage ``name`` of our run in the project folder."""
    return [sys.executable, "-m", "bert", name, "--params", PARAMS_FILE, "--run", RUN]


def layout(folder: Path) -> Layout:
    """The files of our run in the project folder ``folder`` (the data and initial weights'
    folders named after the parameters, as the stages name them)."""
    return Layout.of(load_params(folder / PARAMS_FILE), RUN, folder)


def time_ours(folder: Path, mapping: dict, epochs: int) -> float:
    """Seconds of ``python -m bert train`` for ``epochs`` epochs from the initial weights (the
    run's folder removed first: its checkpoints, model, history and record)."""
    write_params(folder, with_epochs(mapping, epochs))
    shutil.rmtree(layout(folder).run_dir, ignore_errors=True)
    return timed_run(stage_command("train"), folder)


def time_theirs(folder: Path, epochs: int, threads: int) -> float:
    """Seconds of the PyTorch loop (``torch_loop``) for ``epochs`` epochs, in a worker process
    of its own with its threads fixed before torch is imported."""
    return timed_run(worker_command("stage", threads, "--epochs", str(epochs)), folder,
                     threads_env(threads))


def torch_loop(epochs: int, threads: int) -> None:
    """The plain PyTorch training loop over the project's training set (in the working folder)
    for ``epochs`` epochs: the batches in the train stage's order (under dynamic masking, each
    epoch's masks), its learning rate."""
    from bert.core.streams import epoch_order
    from bert.data.examples import num_examples
    from bert.data.loading import load_dataset, masking_spec
    from bert.data.masking import masked_epoch
    from bert.workflow.params import bert_config
    from bert.workflow.provenance import whole_batches
    from bert.workflow.train import learning_rate

    params = load_params(PARAMS_FILE)
    files = Layout.of(params, RUN)
    t, batch_size = params.training, params.data.batch_size
    data = load_dataset(files.train_data, params.data)
    spec = masking_spec(files.train_data) if "mlm_labels" not in data else None
    batches = whole_batches(data, batch_size)
    total_steps = epochs * batches
    model = torch_model(bert_config(params), threads)
    optimizer = torch_adamw(model, lr=t.learning_rate)
    examples = data
    for step in range(total_steps):
        epoch, position = divmod(step, batches)
        if spec is not None and position == 0:
            examples = masked_epoch(data, t.random_seed, epoch, spec)
        order = epoch_order(t.random_seed, epoch, num_examples(data))
        rows = order[position * batch_size:(position + 1) * batch_size]
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, t, total_steps)
        torch_step(model, optimizer, torch_inputs({k: v[rows] for k, v in examples.items()}))


def steps_per_epoch(folder: Path) -> int:
    return json.loads(layout(folder).history.read_text())["batches_per_epoch"]


def in_steps_ms(folder: Path) -> float:
    """Our time per step inside the steps of the second epoch, from the history (the stage
    counts only the steps there: no scoring, no checkpoints)."""
    history = json.loads(layout(folder).history.read_text())
    return 1000 * history["epochs"][-1]["seconds"] / history["batches_per_epoch"]


def measure(mapping: dict, repeats: int, threads: int, workdir: Path) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="train-stage-", dir=workdir))
    try:
        write_params(folder, with_epochs(mapping, 1))
        for name in ("data", "init"):
            timed_run(stage_command(name), folder)
        load = os.getloadavg()[0]
        seconds = {side: {e: [] for e in EPOCHS} for side in ("ours", "torch")}
        inside = []
        for r in range(repeats):
            order = EPOCHS if r % 2 == 0 else EPOCHS[::-1]  # each run first as often
            for epochs in order:
                seconds["ours"][epochs].append(time_ours(folder, mapping, epochs))
                if epochs == 2:
                    inside.append(in_steps_ms(folder))
                seconds["torch"][epochs].append(time_theirs(folder, epochs, threads))
        steps = steps_per_epoch(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    per_step = {side: [1000 * (two - one) / steps for one, two in zip(runs[1], runs[2],
                                                                       strict=True)]
                for side, runs in seconds.items()}
    return {"steps_per_epoch": steps, "seconds": seconds, "per_step_ms": per_step,
            "ours_in_steps_ms": inside, "load_average_at_start": load,
            "load_average_at_end": os.getloadavg()[0],
            "speedups": [t / o for o, t in zip(per_step["ours"], per_step["torch"], strict=True)]}


def run(args: argparse.Namespace) -> None:
    """``python -m bert.bench stage``: the four runs, ``--repeats`` times each, then the
    summary (or the JSON)."""
    if args.worker:
        torch_loop(args.epochs, args.threads)
        return
    result = measure(args.mapping, args.repeats, args.threads, args.workdir)
    label = " ".join([str(args.params)] + [f"{'.'.join(k)}={v}" for k, v in args.settings])
    print(json.dumps({"params": label, **result}, indent=2) if args.json
          else stage_table(label, result))
