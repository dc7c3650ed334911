"""What each command of ``bert`` does, given its parsed arguments (``bert.cli.parser`` says
which function a command runs). A command imports what it needs when it runs, so that
``bert --help`` and each command load only their own modules."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys

from bert.errors import BertError


def show_file(args: argparse.Namespace) -> None:
    """``bert show``: the summary of a file, or one example of a dataset."""
    from bert.views.show import show, summarize

    print(summarize(args.path) if args.index is None else show(args.path, args.index))


def print_predictions(args: argparse.Namespace) -> None:
    """``bert predict``: the model's top guesses at an example's masked positions."""
    from bert.views.predictions import predict_text

    print(predict_text(args.path, args.index, args.model))


def print_attention(args: argparse.Namespace) -> None:
    """``bert attention``: where each token of an example attends most, per head."""
    from bert.views.attention import attention_text

    print(attention_text(args.path, args.index, args.model, args.layer, args.head))


def make_project(args: argparse.Namespace) -> None:
    """``bert init-project``: a project folder with its dodo.py and params.yaml."""
    from bert.workflow.project import init_project

    for path in init_project(args.folder):
        print(f"wrote {path}")
    print(f"now: cd {args.folder} && doit")


def list_runs(args: argparse.Namespace) -> None:
    """``bert runs``: the runs of the project folder side by side (and their plot)."""
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


def print_curves(args: argparse.Namespace) -> None:
    """``bert curves``: the scores of every epoch against the optimum."""
    from bert.views.curves import curves_text
    from bert.workflow.layout import Layout

    test = args.test or Layout.recorded().test_data
    print(curves_text(args.history, test))


def fill_mask(args: argparse.Namespace) -> None:
    """``bert fill-mask``: the model's top guesses at each [MASK] of a text."""
    from bert.views.fill_mask import fill_mask_text

    print(fill_mask_text(args.text, args.model, args.tokenizer, args.top))


WATCH_SECONDS = 2.0  # how often a stage makes sure its lock file is still in place


def _lock_lost(error: BertError) -> None:
    """The stage's lock file was replaced while it ran, and another process holds the new one:
    say so, and stop as on SIGTERM (the train stage after its step, with a checkpoint)."""
    print(f"error: the lock file was removed or replaced while this stage ran: {error}; this "
          "stage stops now", file=sys.stderr, flush=True)
    os.kill(os.getpid(), signal.SIGTERM)


def run_stage(args: argparse.Namespace) -> None:
    """``bert <stage>``: one stage of the workflow, under the lock of the folder it writes,
    logging into that folder."""
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
