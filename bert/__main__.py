"""Command line: ``bert <command> ...`` (or ``python -m bert <command> ...``); ``bert --help``
lists the commands, ``bert <command> --help`` says what one reads and writes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from bert import __version__
from bert.errors import BertError
from bert.workflow.interrupts import interrupted_message

DESCRIPTION = ("BERT pretraining (MLM + NSP) in NumPy alone. The workflow's stages (data, init, "
               "train, evaluate, report, export, plots) run one by one here, or all together "
               "with doit; the other commands show what the files and the model hold.")
# What the stages read besides the files of the layout, in words where a path depends on them.
IN_WORDS = {"text_sources": "the text files of data.text_files (data.source: text)",
            "init_sources": "the weights model.init_from names (when it is set)"}


def _show(args: argparse.Namespace) -> None:
    from bert.views.show import show, summarize

    print(summarize(args.path) if args.index is None else show(args.path, args.index))


def _predict(args: argparse.Namespace) -> None:
    from bert.views.text import predict_text

    print(predict_text(args.path, args.index, args.model))


def _attention(args: argparse.Namespace) -> None:
    from bert.views.text import attention_text

    print(attention_text(args.path, args.index, args.model, args.layer, args.head))


def _curves(args: argparse.Namespace) -> None:
    from bert.views.text import curves_text

    print(curves_text(args.history, args.test))


def _fill_mask(args: argparse.Namespace) -> None:
    from bert.views.fill_mask import fill_mask_text

    print(fill_mask_text(args.text, args.model, args.tokenizer, args.top))


def _part_of(names: list[str]) -> Callable[[str], str]:
    """An argument type accepting one of ``names`` (the parts of a stage)."""

    def part(name: str) -> str:
        if name not in names:
            raise argparse.ArgumentTypeError(f"no {name!r}; choose from {', '.join(names)}")
        return name

    return part


def _stage(args: argparse.Namespace) -> None:
    from bert.parallel.mpi import launcher_rank, rank_guard
    from bert.workflow.layout import Layout
    from bert.workflow.loader import load_params
    from bert.workflow.lock import hold_project_lock
    from bert.workflow.logs import setup_logging
    from bert.workflow.tasks import run

    with rank_guard():  # in an MPI job, a rank failing here must not leave the others waiting
        params = load_params(args.params)
        layout = Layout()
        if launcher_rank() == 0:  # the other ranks of an MPI job run under rank 0's lock
            hold_project_lock(layout.root)
        setup_logging(params.logging, layout)
    run(args.command, params, layout, tuple(args.parts))


def _program() -> str:
    """How the command was called: ``python -m bert`` or the ``bert`` script."""
    return "python -m bert" if Path(sys.argv[0]).name == "__main__.py" else "bert"


def _in_words(names: Sequence[str]) -> str:
    """The files of the layout members ``names``, at the default parameters."""
    from bert.workflow.layout import Layout
    from bert.workflow.params import Params

    layout, params, found = Layout(), Params(), []
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


def build_parser() -> argparse.ArgumentParser:
    """The parser; each subcommand sets ``func``, called with the parsed arguments."""
    from bert.workflow.layout import Layout
    from bert.workflow.stages import STAGES

    parser = argparse.ArgumentParser(prog=_program(), description=DESCRIPTION)
    parser.add_argument("--version", action="version",
                        version=f"bert-from-scratch {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    for stage in STAGES:
        command = commands.add_parser(stage.name, help=stage.doc,
                                      description=stage_description(stage))
        command.add_argument("--params", default="params.yaml",
                             help="the parameters file (default: params.yaml)")
        command.set_defaults(func=_stage, parts=())
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
    show.add_argument("path", help="the file, e.g. data/train.h5, artifacts/model.h5")
    show.add_argument("index", type=int, nargs="?",
                      help="example number of a dataset file, from 0 (negative counts back)")
    show.set_defaults(func=_show)
    layout = Layout()
    model = f"the weights file (default: {layout.model_weights})"
    predict = commands.add_parser(
        "predict", help="print the model's top-3 guesses at the masked positions of an example",
        description="Reads a dataset file and a weights file and prints, for one example, the "
        "model's three most probable tokens at each masked position beside the original. "
        "Writes nothing.")
    predict.add_argument("path", help="dataset file, e.g. data/test.h5")
    predict.add_argument("index", type=int, help="example number, from 0 (negative counts back)")
    predict.add_argument("--model", default=str(layout.model_weights), help=model)
    predict.set_defaults(func=_predict)
    attention = commands.add_parser(
        "attention", help="print where each token of an example attends most, per head",
        description="Reads a dataset file and a weights file and prints, for one example, the "
        "token each token attends to most in every head of every layer. Writes nothing.")
    attention.add_argument("path", help="dataset file, e.g. data/test.h5")
    attention.add_argument("index", type=int,
                           help="example number, from 0 (negative counts back)")
    attention.add_argument("--layer", type=int, help="only this layer, from 0 (default: all)")
    attention.add_argument("--head", type=int, help="only this head, from 0 (default: all)")
    attention.add_argument("--model", default=str(layout.model_weights), help=model)
    attention.set_defaults(func=_attention)
    curves = commands.add_parser(
        "curves", help="print the losses and accuracies of every epoch against the optimum",
        description="Reads the training history and the test set and prints the losses and "
        "accuracies of every epoch beside the optimum and the baselines. Writes nothing.")
    curves.add_argument("--history", default=str(layout.history),
                        help=f"the training history (default: {layout.history})")
    curves.add_argument("--test", default=str(layout.test_data),
                        help=f"the test set holding the optimum (default: {layout.test_data})")
    curves.set_defaults(func=_curves)
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
                      f"the --model directory, else {layout.test_data})")
    fill.add_argument("--top", type=int, default=5, help="guesses per [MASK] (default: 5)")
    fill.set_defaults(func=_fill_mask)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a command; a user error prints one line to stderr and returns 2."""
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except BertError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except MemoryError:
        print("error: out of memory; lower the sizes in the parameters (model:, data:, "
              "evaluation.batch_size) or free memory", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        print(interrupted_message(e), file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
