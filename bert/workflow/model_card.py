"""The model card of an export: the ``README.md`` a model repository on the Hugging Face Hub shows.

YAML front matter first (``library_name: transformers``, ``pipeline_tag: fill-mask``, ``tags``,
and a ``widget`` example in the model's own vocabulary), then what the model is, how to load it,
its results beside the optimum and the baselines (the evaluate stage's table), how it was
trained, where it comes from (``bert.origin``) and the parameters of its run. The folder it
goes into is complete for an upload as it stands: the card is written, never sent anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from bert.core.config import param_shapes
from bert.data.datasets import load_dataset
from bert.data.tokens import CLS, MASK, SEP
from bert.errors import remake_hint
from bert.storage import checkpoint as ckpt
from bert.storage import h5io
from bert.storage.atomic import write_bytes
from bert.workflow.params import bert_config
from bert.workflow.provenance import check_model_id
from bert.workflow.report import read_history, read_metrics, results
from bert.workflow.stages import stage

if TYPE_CHECKING:
    from bert.data.tokenizer import TextTokenizer
    from bert.workflow.layout import Layout
    from bert.workflow.params import Params

CARD_FILE = "README.md"
TASKS = {"nsp": "next sentence prediction (NSP)", "sop": "sentence order prediction (SOP)",
         "none": "no sentence task"}


def widget_text(arrays: Mapping[str, np.ndarray], tokenizer: TextTokenizer) -> str:
    """A fill-mask example in the model's vocabulary: the first segment of the first example
    of ``arrays`` (a test set), its original tokens restored, one word of its middle masked."""
    ids = arrays["input_ids"][0].astype(int)  # (T,)
    if "mlm_labels" in arrays:
        labels = arrays["mlm_labels"][0].astype(int)  # (T,)
        ids = np.where(labels >= 0, labels, ids)
    end = int(np.flatnonzero(ids == SEP)[0]) if (ids == SEP).any() else len(ids)
    segment = [int(t) for t in ids[1:end] if t != CLS]
    whole = [i for i, t in enumerate(segment) if not tokenizer.token(t).startswith("##")]
    if whole:
        segment[whole[len(whole) // 2]] = MASK
    return tokenizer.decode(segment)


def _cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def results_markdown(results: Mapping, sentence_task: str) -> str:
    """The results beside the optimum and the baselines, as a Markdown table, from the report
    stage's document (``bert.workflow.report.results``; no optimum for text data)."""
    optimum, baselines = results.get("optimum") or {}, results["baselines"]
    gaps = results.get("gap_to_optimum") or {}
    rows = [("test MLM loss", "test_mlm_loss", baselines["unigram_mlm_loss"],
             baselines["uniform_mlm_loss"])]
    if sentence_task != "none":
        name = sentence_task.upper()
        rows += [(f"test {name} loss", "test_nsp_loss", None, baselines["chance_nsp_loss"]),
                 (f"test {name} accuracy", "test_nsp_accuracy", None,
                  baselines["chance_nsp_accuracy"])]
    rows += [("test MLM accuracy", "test_mlm_accuracy", None, None),
             ("train MLM loss", "train_mlm_loss", None, None)]
    lines = ["| | model | Bayes-optimal | unigram | uniform / chance | gap to optimum |",
             "|---|---:|---:|---:|---:|---:|"]
    for what, key, unigram, uniform in rows:
        values = (results[key], optimum.get(key), unigram, uniform, gaps.get(key))
        lines.append(f"| {what} | " + " | ".join(map(_cell, values)) + " |")
    return "\n".join(lines)


def front_matter(params: Params, widget: str) -> str:
    """The card's YAML metadata, as the Hub reads it."""
    tags = ["bert", "fill-mask", "masked-lm", "pretraining", "from-scratch", "numpy",
            "bert-from-scratch",
            "synthetic-data" if params.data.source == "synthetic" else "text"]
    if params.data.sentence_task != "none":
        tags.append(params.data.sentence_task)
    meta = {"library_name": "transformers", "pipeline_tag": "fill-mask", "tags": tags,
            "widget": [{"text": widget}]}
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n"


def model_card(params: Params, results: Mapping, origin: Mapping[str, Any], widget: str,
               files: Sequence[str]) -> str:
    """The text of ``README.md``.

    results: the report stage's document of the run (``bert.workflow.report.results``, made
    from the evaluate stage's metrics and the history); origin: the root attributes
    of the trained weights file (``created``, ``creator``, ``git_commit``, versions); widget:
    a fill-mask example (``widget_text``); files: the names of the export's files.
    """
    d, m, t = params.data, params.model, params.training
    config = bert_config(params)
    count = sum(int(np.prod(shape)) for shape in param_shapes(config).values())
    task = TASKS[d.sentence_task]
    data = ("the synthetic language of bert-from-scratch (topics, each a Markov chain over "
            f"{d.vocab_size - 4} content tokens; its Bayes-optimal scores are computed exactly)"
            if d.source == "synthetic" else
            f"the text files {', '.join(d.text_files)} (a WordPiece vocabulary of "
            f"{d.vocab_size} pieces learnt on them)")
    training = results["training"]
    seconds = training.get("seconds")
    rate = training.get("tokens_per_second")
    commit = origin.get("git_commit")
    lines = [
        front_matter(params, widget),
        "# A BERT pretrained from scratch with bert-from-scratch",
        "",
        f"A BERT encoder with its pretraining heads (transformers' `BertForPreTraining`: "
        f"{m.num_layers} layers, hidden size {m.dim_model}, {m.num_heads} heads, feed-forward "
        f"{m.dim_ff}, {d.sequence_length} positions, a vocabulary of {d.vocab_size}; "
        f"{count:,} parameters), pretrained by masked language modelling (MLM) and {task} "
        f"on {data}. It was trained by bert-from-scratch, a NumPy implementation of "
        "BERT pretraining with a hand-written backward pass, checked against transformers.",
        "",
        "## How to use",
        "",
        "```python",
        "from transformers import AutoTokenizer, BertForPreTraining, pipeline",
        "",
        'tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder")',
        'model = BertForPreTraining.from_pretrained("path/to/this/folder")',
        'fill = pipeline("fill-mask", model="path/to/this/folder")',
        f"fill({widget!r})",
        "```",
        "",
        "The tokenizer gives the ids the model was trained on: "
        + ("the synthetic language's tokens written out and separated by spaces (`[PAD]` 0, "
           "`[CLS]` 1, `[SEP]` 2, `[MASK]` 3, `t4` 4, ...; a word outside the vocabulary is an "
           "error, there is no `[UNK]`)." if d.source == "synthetic" else
           "BERT's WordPiece pipeline over the learnt vocabulary (`[PAD]` 0, `[CLS]` 1, "
           "`[SEP]` 2, `[MASK]` 3, `[UNK]` 4)."),
        "",
        "## Results",
        "",
        f"On the test set ({results['evaluated']['test_examples']:,} examples, "
        f"{results['evaluated']['test_mlm_labels']:,} masked tokens). Losses are mean "
        "cross-entropies in nats, accuracies fractions; the gap is how far the model is from "
        "the optimum. "
        + ("The Bayes-optimal scores are exact: no model beats them in expectation."
           if d.source == "synthetic" else
           "Text has no known optimum (the distribution that wrote it is unknown)."),
        "",
        results_markdown(results, d.sentence_task),
        "",
        "## Training",
        "",
        f"- {training['steps']:,} optimizer steps in {training['epochs']} "
        f"epoch{'s' if training['epochs'] != 1 else ''} of {d.batch_size} examples of "
        f"{d.sequence_length} tokens per step"
        + (f", {seconds:.3g} s ({rate:,.0f} tokens per second)" if seconds and rate else "")
        + f", on {t.processes} process{'es' if t.processes > 1 else ''}, in {t.dtype}.",
        f"- AdamW: learning rate {t.learning_rate} ({t.lr_schedule} schedule, "
        f"{t.warmup_steps} warmup steps), betas ({t.adam_beta1}, {t.adam_beta2}), epsilon "
        f"{t.adam_epsilon}, weight decay {t.weight_decay} (not on biases and LayerNorm), "
        f"gradient norm clipped to {t.max_grad_norm}.",
        f"- Loss: {t.mlm_loss_weight} x MLM + {t.nsp_loss_weight} x "
        f"{d.sentence_task.upper()}." if d.sentence_task != "none" else "- Loss: MLM alone.",
        f"- Masking: BERT's ({d.mask_probability:.0%} of the tokens selected; of those 80% "
        f"[MASK], 10% a random token, 10% unchanged), {d.masking}.",
        f"- Dropout: hidden {m.hidden_dropout}, attention {m.attention_dropout}; initializer "
        f"range {m.initializer_range}; seeds: data {d.random_seed}, model {m.random_seed}, "
        f"training {t.random_seed}.",
        "",
        "The same parameters give bit-identical weights: to reproduce the model, run the "
        "workflow of bert-from-scratch with the parameters below (`params.yaml`) and the "
        "versions of the packages in its `constraints.txt`.",
        "",
        "## Where it comes from",
        "",
        f"- Weights written {origin.get('created', 'at an unrecorded time')} by "
        f"{origin.get('creator', 'bert-from-scratch')}"
        + (f", git commit {commit}" if commit else "") + ".",
        f"- Python {origin.get('python_version', '?')}, NumPy {origin.get('numpy_version', '?')}"
        f", h5py {origin.get('h5py_version', '?')}.",
        "",
        "## Parameters",
        "",
        "```yaml",
        yaml.safe_dump(params.subset(stage("report").reads), sort_keys=True).rstrip(),
        "```",
        "",
        "## Files",
        "",
        *[f"- `{name}`" for name in sorted(files)],
        "",
    ]
    return "\n".join(lines)


def write_model_card(params: Params, layout: Layout, tokenizer: TextTokenizer,
                     directory: Path, files: Sequence[str]) -> Path:
    """Write ``directory/README.md`` for the trained model of ``params``, from the metrics and
    the history (checked to be of that model) and the test set."""
    metrics, history = read_metrics(layout.metrics), read_history(layout.history)
    check_model_id(metrics["model"], params, layout, layout.metrics, "evaluate")
    origin = h5io.read(layout.model_weights, schema=ckpt.WEIGHTS_SCHEMA,
                       schema_version=ckpt.READABLE_VERSIONS, specs={}, names=(),
                       fix=remake_hint("train")).attrs
    widget = widget_text(load_dataset(layout.test_data), tokenizer)
    text = model_card(params, results(params, metrics, history), origin, widget,
                      [*files, CARD_FILE])
    return write_bytes(Path(directory) / CARD_FILE, text.encode("utf-8"))
