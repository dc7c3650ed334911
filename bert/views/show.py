"""``python -m bert show``: what one of the workflow's files holds (``summarize``: any dataset,
weights file or checkpoint, from what the file says of itself), or one example of a dataset
file as text (``show``: its tokens, segments, masked positions and sentence label)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import yaml

from bert.core.config import param_shapes
from bert.data.datasets import dataset_attrs, load_vocab
from bert.data.examples import LABEL_MEANINGS
from bert.data.tokens import CLS, MASK, SEP, token_name
from bert.data.wordpiece import PREFIX
from bert.errors import check_hint
from bert.storage import h5io
from bert.storage.checkpoint import HISTORY_KEYS, config_from_json
from bert.views.text import load_examples


def format_example(arrays: dict[str, np.ndarray], index: int,
                   token_name: Callable[[int], str] = token_name,
                   sentence_task: str = "nsp") -> str:
    """Example ``index`` of the arrays of a dataset file of ``sentence_task``, as lines of text,
    tokens written by ``token_name``."""
    ids = arrays["input_ids"][index].astype(int)  # (T,)
    digits = "".join
    lines = [
        " ".join(token_name(t) for t in ids),
        f"token_type_ids  {digits(str(t) for t in arrays['token_type_ids'][index])}",
        f"attention_mask  {digits(str(m) for m in arrays['attention_mask'][index])}",
    ]
    if "nsp_labels" in arrays:
        label = int(arrays["nsp_labels"][index])
        lines.append(f"{sentence_task.upper()} label {label}: "
                     f"{LABEL_MEANINGS[sentence_task][label]}")
    else:
        lines.append("no sentence label (data.sentence_task: none)")
    if "mlm_labels" not in arrays:
        lines.append("no MLM labels: the masks are drawn afresh each epoch (data.masking: "
                     "dynamic); the tokens are the originals")
        return "\n".join(lines)
    labels = arrays["mlm_labels"][index].astype(int)  # (T,)
    masked = np.flatnonzero(labels >= 0)
    lines.append(f"MLM labels at {len(masked)} position{'s' if len(masked) != 1 else ''}"
                 + (":" if len(masked) else ""))
    for position in masked:
        seen, original = ids[position], labels[position]
        how = ("masked" if seen == MASK else "unchanged" if seen == original
               else "random replacement")
        lines.append(f"  position {position:>3}  {token_name(seen):>6}  original "
                     f"{token_name(original):<6}  ({how})")
    return "\n".join(lines)


def show(path: str | Path, index: int) -> str:
    """Example ``index`` of the dataset file ``path`` as text, headed by where it comes from."""
    examples = load_examples(path, [index])
    task = dataset_attrs(path).get("sentence_task", "nsp")
    text = format_example(examples.arrays, 0, examples.name, task)
    if load_vocab(path) is not None:  # text data: the two segments as words too
        text += "\n" + "\n".join(segment_words(examples.arrays, 0, examples.name))
    return f"{path}, example {examples.indices[0]} of {examples.count}\n" + text


def segment_words(arrays: dict[str, np.ndarray], index: int,
                  token_name: Callable[[int], str]) -> list[str]:
    """Segments A and B of a text example as words: its WordPiece pieces joined (``##``)."""
    ids = arrays["input_ids"][index].astype(int)  # (T,)
    types = arrays["token_type_ids"][index]
    inside = (arrays["attention_mask"][index] == 1) & (ids != CLS) & (ids != SEP)
    lines = []
    for segment, label in ((0, "A"), (1, "B")):
        pieces = " ".join(token_name(t) for t in ids[inside & (types == segment)])
        if pieces:  # without a sentence task, one segment
            lines.append(f"{label}: " + pieces.replace(f" {PREFIX}", ""))
    return lines


FIX = check_hint("a dataset, weights or checkpoint file of the workflow: data/*.h5, "
                 "artifacts/*.h5, artifacts/checkpoints/*/step-*.h5")
MOMENTS = ("optimizer/exp_avg/", "optimizer/exp_avg_sq/")


def summarize(path: str | Path) -> str:
    """What the workflow's HDF5 file ``path`` holds, from the file alone: its kind and schema,
    its description and origin, its datasets (shape, dtype, axes, description, units), what
    its labels mean, its scores, and its parameters; for weights and checkpoints, the
    architecture, the parameter count, the run and the step."""
    contents = h5io.read(path, schema=tuple(h5io.KINDS), schema_version=None, specs={},
                         fix=FIX, names=(), describe=True)
    attrs = contents.attrs
    lines = [f"{path}: {h5io.KINDS[attrs['schema']]} ({attrs['schema']}, schema version "
             f"{attrs['schema_version']})"]
    if "description" in attrs:
        lines.append(f"  {attrs['description']}")
    lines.append(_origin_line(attrs))
    if attrs["schema"] == "bert-from-scratch/dataset":
        lines += _dataset_lines(contents)
    else:
        lines += _weights_lines(contents)
    lines += ["", "datasets:", *_dataset_table(contents.datasets)]
    params = attrs.get("params")
    if params:
        lines += ["", "params (as the file records them):",
                  *("  " + line for line in yaml.safe_dump(params, sort_keys=True).splitlines())]
    return "\n".join(lines)


def _origin_line(attrs: Mapping) -> str:
    """When and with what a file was made, as far as it says."""
    if "created" not in attrs:
        return (f"made by bert-from-scratch {attrs.get('package_version', '?')} (a file of "
                "schema version 1 records no more)")
    commit = attrs.get("git_commit")
    return (f"made {attrs['created']} by {attrs.get('creator', '?')}"
            + (f", git commit {commit}" if commit else "")
            + f"; Python {attrs.get('python_version', '?')}, NumPy "
            f"{attrs.get('numpy_version', '?')}, h5py {attrs.get('h5py_version', '?')}, HDF5 "
            f"{attrs.get('hdf5_version', '?')}")


def _dataset_lines(contents: h5io.H5Contents) -> list[str]:
    """A dataset file's examples, label meanings and scores."""
    attrs, datasets = contents.attrs, contents.datasets
    shape = datasets["input_ids"].shape if "input_ids" in datasets else (0, 0)
    task = attrs.get("sentence_task", "nsp")
    lines = [f"split {attrs.get('split', '?')}: {shape[0]:,} examples of {shape[1]} tokens; "
             f"sentence task {task}; masking {attrs.get('masking', 'static')}",
             "", "labels:"]
    if "mlm_labels" in datasets:
        lines.append("  mlm_labels: the original token id where a token is predicted, -100 "
                     "elsewhere")
    else:
        lines.append("  mlm_labels: none stored (dynamic masking: drawn afresh each epoch)")
    if "nsp_labels" in datasets:
        lines.append(f"  nsp_labels ({task.upper()}): "
                     "0 = {}, 1 = {}".format(*LABEL_MEANINGS[task]))
    else:
        lines.append("  nsp_labels: none (no sentence task)")
    for group in ("optimum", "baselines"):
        scores = contents.group_attrs.get(group)
        if scores:
            lines += ["", f"{group} (losses in nats, accuracies as fractions):"]
            lines += [f"  {key:<28} {_number(value)}" for key, value in sorted(scores.items())
                      if key != "description"]
    return lines


def _weights_lines(contents: h5io.H5Contents) -> list[str]:
    """A weights file's or a checkpoint's architecture, parameter count, run and step."""
    attrs = contents.attrs
    lines = []
    try:
        config = config_from_json(attrs.get("config", ""), "its config attribute", FIX)
    except Exception:  # a summary shows what it can; reading the weights says what is wrong
        config = None
        lines.append("architecture: unreadable (no valid config attribute)")
    if config is not None:
        count = sum(int(np.prod(shape)) for shape in param_shapes(config).values())
        dtypes = sorted({str(info.dtype) for name, info in contents.datasets.items()
                         if name in param_shapes(config)})
        lines += [f"architecture: {config.num_hidden_layers} layers, hidden size "
                  f"{config.hidden_size}, {config.num_attention_heads} heads, feed-forward "
                  f"{config.intermediate_size}, vocabulary {config.vocab_size}, "
                  f"{config.max_position_embeddings} positions",
                  f"parameters: {count:,} ({', '.join(dtypes)})",
                  f"config: {json.dumps(json.loads(attrs['config']), sort_keys=True)}"]
    if "fingerprint" in attrs:
        lines.append(f"run: {attrs['fingerprint']}")
    if "step" in attrs:
        where = (f" ({_count(attrs['epoch'], 'epoch')} and "
                 f"{_count(attrs['batch_in_epoch'], 'batch', 'batches')} done)"
                 if "batch_in_epoch" in attrs else
                 f" (the end of {_count(attrs['epochs'], 'epoch')})" if "epochs" in attrs else "")
        lines.append(f"step: {attrs['step']:,}{where}")
    elif attrs["schema"] == "bert-from-scratch/weights":
        lines.append("step: none (initial weights, not trained)")
    history = [name for name in contents.datasets if name.startswith("history/")]
    if history:
        lines.append(f"history: {contents.datasets[history[0]].shape[0]:,} steps of "
                     f"{', '.join(key for key in HISTORY_KEYS if f'history/{key}' in history)}"
                     " (losses in nats)")
    return lines


def _dataset_table(datasets: Mapping[str, h5io.DatasetInfo]) -> list[str]:
    """One line per dataset: name, shape, dtype, axes, description (units); the AdamW moments
    of a checkpoint one line per kind."""
    rows, moments = [], {prefix: 0 for prefix in MOMENTS}
    for name, info in datasets.items():
        prefix = next((p for p in MOMENTS if name.startswith(p)), None)
        if prefix is not None:
            moments[prefix] += 1
            if moments[prefix] > 1:
                continue
            name = prefix + "<parameter>"
            description = info.attrs.get("description", "").rsplit(" of ", 1)[0]
            rows.append((name, "like the parameter", str(info.dtype), "",
                         f"{description} of each parameter"))
            continue
        units = f" ({info.attrs['units']})" if "units" in info.attrs else ""
        dtype = f"utf-8 string ({info.dtype.itemsize} bytes)" if info.dtype.kind == "S" else str(
            info.dtype)
        rows.append((name, str(info.shape), dtype, " x ".join(info.axes),
                     info.attrs.get("description", "(no description)") + units))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return ["  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
            + "  " + row[4] for row in rows]


def _count(number: int, one: str, many: str = "") -> str:
    return f"{number:,} {one if number == 1 else many or one + 's'}"


def _number(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)
