"""Command line: ``python -m bert <command> ...``; ``python -m bert --help`` lists the commands."""

from __future__ import annotations

import argparse
import sys

from bert.errors import BertError


def _show(args: argparse.Namespace) -> None:
    from bert.show import show

    print(show(args.path, args.index))


def _stage(args: argparse.Namespace) -> None:
    from bert.layout import Layout
    from bert.logs import setup_logging
    from bert.params import load_params
    from bert.stages import run

    params = load_params(args.params)
    layout = Layout()
    setup_logging(params.logging, layout)
    run(args.command, params, layout)


def build_parser() -> argparse.ArgumentParser:
    """The parser; each subcommand sets ``func``, called with the parsed arguments."""
    from bert.stages import STAGES

    parser = argparse.ArgumentParser(prog="python -m bert", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    for stage in STAGES:
        command = commands.add_parser(stage.name, help=stage.doc)
        command.add_argument("--params", default="params.yaml",
                             help="the parameters file (default: params.yaml)")
        command.set_defaults(func=_stage)
    show = commands.add_parser("show", help="print one example of a dataset file as text")
    show.add_argument("path", help="dataset file, e.g. data/train.h5")
    show.add_argument("index", type=int, help="example number, from 0 (negative counts back)")
    show.set_defaults(func=_show)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a command; a user error prints one line to stderr and returns 2."""
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except BertError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        step = getattr(e, "step", None)
        if step is None:
            print("interrupted; nothing was written; run `doit` to start again", file=sys.stderr)
        else:
            print(f"interrupted at step {step}; checkpoint saved; run `doit train` to resume",
                  file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
