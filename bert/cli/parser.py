"""The commands of ``bert``, their arguments and their help: each stage of the workflow (what it
reads and writes, from its record in ``bert.workflow.stages``) and the commands that show
files and models. Each command's parser sets ``func``, its function in ``bert.cli.commands``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from bert import __version__
from bert.cli.commands import (
    fill_mask,
    list_runs,
    make_project,
    print_attention,
    print_curves,
    print_predictions,
    run_stage,
    show_file,
)

DESCRIPTION = ("BERT pretraining (MLM + NSP) in NumPy alone. The workflow's stages (data, init, "
               "train, evaluate, report, export, plots) run one by one here, or all together "
               "with doit; the other commands show what the files and the model hold.")
# What the stages read besides the files of the layout, in words where a path depends on them.
IN_WORDS = {"text_sources": "the text files of data.text_files (data.source: text)",
            "init_sources": "the weights model.init_from names (when it is set)"}


def _part_of(names: list[str]) -> Callable[[str], str]:
    """An argument type accepting one of ``names`` (the parts of a stage)."""

    def part(name: str) -> str:
        if name not in names:
            raise argparse.ArgumentTypeError(f"no {name!r}; choose from {', '.join(names)}")
        return name

    return part


class _Parser(argparse.ArgumentParser):
    """argparse, with a wrong argument said in one line, as every other error is."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message}; see `{self.prog} --help`\n")


def _positive(text: str) -> int:
    """An argument type: an integer of 1 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not 1 or more")
    return value


def _program() -> str:
    """How the command was called: ``python -m bert`` or the ``bert`` script."""
    return "python -m bert" if Path(sys.argv[0]).name == "__main__.py" else "bert"


def _in_words(names: Sequence[str]) -> str:
    """The files of the layout members ``names``, at the default parameters."""
    from bert.workflow.layout import Layout
    from bert.workflow.params import Params

    layout, params, found = Layout(Path("."), "<run>", "<data>", "<init>"), Params(), []
    for name in names:
        paths = [str(path) for path in layout.files((name,), params)]
        found += paths or [IN_WORDS[name]]
    return ", ".join(dict.fromkeys(found))


def _reads_in_words(keys: Sequence[str]) -> str:
    """Parameter keys of a stage record (``-section.key`` leaves one out), in words."""
    return ", ".join(f"but not {key[1:]}" if key.startswith("-") else key for key in keys)


def stage_description(stage: object) -> str:
    """What a stage's command does, reads and writes, for its ``--help``."""
    parts = stage.parts or (stage,)
    inputs = [name for part in parts for name in part.inputs]
    outputs = [name for part in parts for name in part.outputs]
    reads = [key for part in parts for key in part.reads]
    lines = [stage.doc,
             f"Reads: {_in_words(inputs) if inputs else 'no file'}"
             + (f"; the parameters {_reads_in_words(dict.fromkeys(reads))}" if reads else "")
             + ".", f"Writes: {_in_words(outputs)}."]
    return " ".join(lines)


def _example_arguments(command: argparse.ArgumentParser, model_help: str, model: str) -> None:
    """The arguments of a command that shows one example: the dataset file, the example's
    number, the weights file."""
    command.add_argument("path", help="a dataset file (a data folder's test.h5)")
    command.add_argument("index", type=int, help="example number, from 0 (negative counts back)")
    command.add_argument("--model", default=model, help=model_help)


def build_parser() -> argparse.ArgumentParser:
    """The parser; each subcommand sets ``func``, called with the parsed arguments."""
    from bert.workflow.layout import Layout
    from bert.workflow.stages import STAGES

    parser = _Parser(prog=_program(), description=DESCRIPTION)
    parser.add_argument("--version", action="version",
                        version=f"bert-from-scratch {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    for stage in STAGES:
        command = commands.add_parser(stage.name, help=stage.doc,
                                      description=stage_description(stage))
        command.add_argument("--params", default="params.yaml",
                             help="the parameters file (default: params.yaml)")
        command.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                             help="a parameter changed from the file's value (repeatable), as "
                             "doit section.key=value")
        command.add_argument("--run", help="the run's name (default: the parameters file's "
                             "name and what --set changes, as doit names it)")
        command.add_argument("--sweep", help=argparse.SUPPRESS)  # recorded in run.json
        command.set_defaults(func=run_stage, parts=())
        if stage.parts:
            names = [part.name for part in stage.parts]
            command.add_argument("parts", nargs="*", type=_part_of(names), metavar="part",
                                 help=f"the parts to run, among {', '.join(names)} "
                                 "(default: all)")
    show = commands.add_parser(
        "show", help="summarise one of the workflow's files, or print one example of a dataset",
        description="Reads one HDF5 file of the workflow (a dataset, a weights file or a "
        "checkpoint) and prints what it holds: its kind, schema, origin, datasets with shapes, "
        "dtypes and descriptions, the meaning of its labels, its scores and its parameters; for "
        "weights and checkpoints also the architecture, the parameter count, the run and the "
        "step. With an example number, prints that example of a dataset file as text instead. "
        "Writes nothing.")
    show.add_argument("path", help="the file, e.g. a run's model.h5 or a data folder's test.h5")
    show.add_argument("index", type=int, nargs="?",
                      help="example number of a dataset file, from 0 (negative counts back)")
    show.set_defaults(func=show_file)
    layout = Layout()  # the default run's files (data and the optimum: from its record)
    model = f"the weights file (default: {layout.model_weights})"
    predict = commands.add_parser(
        "predict", help="print the model's top-3 guesses at the masked positions of an example",
        description="Reads a dataset file and a weights file and prints, for one example, the "
        "model's three most probable tokens at each masked position beside the original. "
        "Writes nothing.")
    _example_arguments(predict, model, str(layout.model_weights))
    predict.set_defaults(func=print_predictions)
    attention = commands.add_parser(
        "attention", help="print where each token of an example attends most, per head",
        description="Reads a dataset file and a weights file and prints, for one example, the "
        "token each token attends to most in every head of every layer. Writes nothing.")
    _example_arguments(attention, model, str(layout.model_weights))
    attention.add_argument("--layer", type=int, help="only this layer, from 0 (default: all)")
    attention.add_argument("--head", type=int, help="only this head, from 0 (default: all)")
    attention.set_defaults(func=print_attention)
    curves = commands.add_parser(
        "curves", help="print the losses and accuracies of every epoch against the optimum",
        description="Reads the training history and the test set and prints the losses and "
        "accuracies of every epoch beside the optimum and the baselines. Writes nothing.")
    curves.add_argument("--history", default=str(layout.history),
                        help=f"the training history (default: {layout.history})")
    curves.add_argument("--test", help="the test set holding the optimum (default: the run's, "
                        "as its run.json names it)")
    curves.set_defaults(func=print_curves)
    init = commands.add_parser(
        "init-project", help="make a folder to run the workflow in, outside a clone: write its "
        "dodo.py (the installed package's tasks) and the default params.yaml",
        description="Makes FOLDER (if missing), so that doit works there without a clone, and "
        "refuses when either file is there already. Reads: no file. Writes: FOLDER/dodo.py (the "
        "installed package's tasks) and FOLDER/params.yaml (the default parameters).")
    init.add_argument("folder", help="the project folder (made if missing)")
    init.set_defaults(func=make_project)
    runs = commands.add_parser(
        "runs", help="list the runs of this project folder side by side: what differs, steps, "
        "time, test scores against the optimum, status (reads artifacts/runs/*/)",
        description="Prints one line per run: its name, what differs from its base, steps "
        "done, training time, test MLM loss, the share of the MLM gap to the optimum closed, the "
        "sentence task's accuracy, and its status. Reads: the run.json, live.jsonl and "
        "results.json of every run under artifacts/runs/. Writes: the --plot FILE, if given.")
    runs.add_argument("--sweep", help="only the runs of this sweep file, in its order")
    runs.add_argument("--json", action="store_true",
                      help="a JSON list: name, params, results, status, ...")
    runs.add_argument("--markdown", action="store_true", help="a Markdown table")
    runs.add_argument("--plot", metavar="FILE",
                      help="also draw the runs' test MLM curves against the optimum into FILE "
                      "(.png or .svg; needs matplotlib)")
    runs.set_defaults(func=list_runs)
    fill = commands.add_parser(
        "fill-mask", help="print the model's top guesses at each [MASK] of a text (text data)",
        description="Reads a model (our weights file, a checkpoint or an export directory) and "
        "its tokenizer and prints the most probable tokens at each [MASK] of the text, as "
        "transformers' fill-mask pipeline does. Writes nothing.")
    fill.add_argument("text", help='the text, e.g. "the license [MASK] you to copy it"')
    fill.add_argument("--model", default=str(layout.model_weights),
                      help=f"our weights file, a checkpoint or an export directory (default: "
                      f"{layout.model_weights})")
    fill.add_argument("--tokenizer", help="an export directory or a text dataset file (default: "
                      "the --model directory, else the test set of the run whose folder holds "
                      "the model, else of the run params)")
    fill.add_argument("--top", type=_positive, default=5,
                      help="guesses per [MASK], 1 or more (default: 5)")
    fill.set_defaults(func=fill_mask)
    return parser
