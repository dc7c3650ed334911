"""Command line: ``python -m bert <command> ...``; ``python -m bert --help`` lists the commands."""

from __future__ import annotations

import argparse
import sys

from bert.errors import BertError


def _show(args: argparse.Namespace) -> None:
    from bert.show import show

    print(show(args.path, args.index))


def build_parser() -> argparse.ArgumentParser:
    """The parser; each subcommand sets ``func``, called with the parsed arguments."""
    parser = argparse.ArgumentParser(prog="python -m bert", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
