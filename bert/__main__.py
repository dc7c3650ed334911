"""Command line: ``bert <command> ...`` (or ``python -m bert <command> ...``); ``bert --help``
lists the commands, ``bert <command> --help`` says what one reads and writes."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import NoReturn

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


def _init_project(args: argparse.Namespace) -> None:
    from bert.workflow.project import init_project

    for path in init_project(args.folder):
        print(f"wrote {path}")
    print(f"now: cd {args.folder} && doit")


def _runs(args: argparse.Namespace) -> None:
    from pathlib import Path

    from bert.views.runs import all_runs, json_list, markdown_table, text_table

    names = None
    if args.sweep:
        from bert.workflow.plan import runs_asked

        names = [run.name for run in runs_asked({"sweep": args.sweep})]
    runs = all_runs(Path("."), names)
    if args.plot:
        from bert.views.runs_plot import draw_runs

        draw_runs(runs, args.plot)
    print(json_list(runs) if args.json else markdown_table(runs) if args.markdown
          else text_table(runs))


def _curves(args: argparse.Namespace) -> None:
    from bert.views.text import curves_text
    from bert.workflow.layout import Layout

    test = args.test or Layout.recorded().test_data
    print(curves_text(args.history, test))


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


WATCH_SECONDS = 2.0  # how often a stage makes sure its lock file is still in place


def _lock_lost(error: BertError) -> None:
    """The stage's lock file was replaced while it ran, and another process holds the new one:
    say so, and stop as on SIGTERM (the train stage after its step, with a checkpoint)."""
    print(f"error: the lock file was removed or replaced while this stage ran: {error}; this "
          "stage stops now", file=sys.stderr, flush=True)
    os.kill(os.getpid(), signal.SIGTERM)


def _stage(args: argparse.Namespace) -> None:
    from bert.parallel.mpi import launcher_rank, rank_guard
    from bert.workflow.layout import Layout
    from bert.workflow.loader import load_params
    from bert.workflow.lock import hold
    from bert.workflow.logs import setup_logging
    from bert.workflow.overrides import check_run_name, run_name, split_variables
    from bert.workflow.run_record import RunOrigin
    from bert.workflow.stages import stage
    from bert.workflow.tasks import run

    record = stage(args.command)
    with contextlib.ExitStack() as held:
        with rank_guard():  # in an MPI job, a rank failing here must not leave the others waiting
            _, overrides = split_variables(dict(_setting(text) for text in args.set))
            params = load_params(args.params, overrides)
            name = check_run_name(args.run) if args.run else run_name(args.params, overrides)
            layout = Layout.of(params, name)
            folder = getattr(layout, record.folder)
            if launcher_rank() == 0:  # the other ranks of an MPI job run under rank 0's lock
                shared = record.folder != "run_dir"  # data and initial weights: wait for them
                what = f"the run {name}" if not shared else f"{folder}"
                held.enter_context(hold(layout.lock(record.folder), what, wait=shared)).watch(
                    WATCH_SECONDS, _lock_lost)
            setup_logging(params.logging, layout.log(record.folder))
        extra = {"origin": RunOrigin(args.params, overrides, args.sweep)} \
            if args.command == "train" else {}
        run(args.command, params, layout, tuple(args.parts), **extra)


def _setting(text: str) -> tuple[str, str]:
    """``--set section.key=value`` as (key, value)."""
    key, equals, value = text.partition("=")
    if not equals:
        from bert.errors import ParamsError

        raise ParamsError(f"--set {text}: give a parameter as section.key=value")
    return key, value


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
    layout = Layout()  # the default run's files (data and the optimum: from its record)
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
    curves.add_argument("--test", help="the test set holding the optimum (default: the run's, "
                        "as its run.json names it)")
    curves.set_defaults(func=_curves)
    init = commands.add_parser(
        "init-project", help="make a folder to run the workflow in, outside a clone: write its "
        "dodo.py (the installed package's tasks) and the default params.yaml")
    init.add_argument("folder", help="the project folder (made if missing)")
    init.set_defaults(func=_init_project)
    runs = commands.add_parser(
        "runs", help="list the runs of this project folder side by side: what differs, steps, "
        "time, test scores against the optimum, status (reads artifacts/runs/*/)")
    runs.add_argument("--sweep", help="only the runs of this sweep file, in its order")
    runs.add_argument("--json", action="store_true",
                      help="a JSON list: name, params, results, status, ...")
    runs.add_argument("--markdown", action="store_true", help="a Markdown table")
    runs.add_argument("--plot", metavar="FILE",
                      help="also draw the runs' test MLM curves against the optimum into FILE "
                      "(.png or .svg; needs matplotlib)")
    runs.set_defaults(func=_runs)
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
                      "the --model directory, else the test set of the run params)")
    fill.add_argument("--top", type=_positive, default=5,
                      help="guesses per [MASK], 1 or more (default: 5)")
    fill.set_defaults(func=_fill_mask)
    return parser


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM stops a command as Ctrl-C does (the train stage: after its step, with a
    checkpoint); a second one is ignored, so that the first is handled to its end."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run a command; a user error prints one line to stderr and returns 2."""
    args = build_parser().parse_args(argv)
    with _sigterm_stops():
        return _run(args)


@contextlib.contextmanager
def _sigterm_stops() -> Iterator[None]:
    """SIGTERM handled as ``_terminate`` says for the block (in the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(args: argparse.Namespace) -> int:
    try:
        # doit starts a stage with Ctrl-C and SIGTERM blocked, so that one that comes while
        # Python starts waits for the handlers: here, inside the try
        signal.pthread_sigmask(signal.SIG_UNBLOCK, (signal.SIGINT, signal.SIGTERM))
        args.func(args)
        sys.stdout.flush()  # inside the try: a closed pipe is reported below
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
    except BrokenPipeError:  # the reader went away (``... | head -1``): nothing left to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    return 0


if __name__ == "__main__":
    sys.exit(main())
