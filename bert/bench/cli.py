"""The benchmarks' command line: ``python -m bert.bench [command] [options]``.

One sub-command per benchmark, each in a module of its own with a ``run(args)``; without a
command, ``step`` runs. ``python -m bert.bench <command> --help`` lists a command's options.
The commands that time something run it in worker processes (``bert.bench.workers``), started
as ``python -m bert.bench <command> --worker ...`` with options this help does not show.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from bert.bench.sizes import DROPOUT, SIZES

# command -> (its module, what it times)
COMMANDS = {
    "step": ("bert.bench.step", "our training step against transformers', per size"),
    "profile": ("bert.bench.passes", "where our step's time goes: each layer's milliseconds, "
                "elements and passes"),
    "processes": ("bert.bench.processes", "data-parallel training: 1 process x 1 thread, x N "
                  "threads, N MPI ranks, micro-batches on N threads"),
    "loop": ("bert.bench.loop", "our whole step against a plain PyTorch training loop"),
    "stage": ("bert.bench.stage", "the whole train stage against a plain PyTorch training loop"),
    "data": ("bert.bench.data", "the data stage: example generation throughput, the optimum's "
             "time"),
    "files": ("bert.bench.files", "the files of training: writing and reading a checkpoint and "
              "the model, per size"),
}
DEFAULT_COMMAND = "step"
STEP_SIZES = "small,default,tiny,mini"
LOOP_SIZES = "default,f256,text,mini"
FILES_SIZES = "default,text,mini"
REFERENCE_NEEDED = "torch and transformers are not installed: pip install -e '.[reference]'"


def size_names(text: str) -> list[str]:
    """``--sizes``: comma-separated names of ``SIZES``."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in SIZES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown size(s) {unknown}: choose among "
                                         f"{', '.join(SIZES)}")
    return names


def whole_numbers(text: str) -> list[int]:
    """A comma-separated list of whole numbers, e.g. ``1,2``."""
    try:
        return [int(n) for n in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give whole numbers, e.g. 1,2") from None


def setting(text: str) -> tuple[list[str], object]:
    """``--set section.key=value`` (``bert.bench.stage.parse_setting``)."""
    from bert.bench.stage import parse_setting

    return parse_setting(text)


def add_sizes(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--sizes", type=size_names, default=default,
                        help=f"comma-separated names among {', '.join(SIZES)} "
                             f"(default: {default})")
    parser.add_argument("--size", choices=tuple(SIZES), help=argparse.SUPPRESS)  # a worker's


def add_threads(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help=f"{help} (default: the number of CPUs)")


def add_json(parser: argparse.ArgumentParser, instead_of: str = "a table") -> None:
    parser.add_argument("--json", action="store_true", help=f"print JSON instead of {instead_of}")


def add_worker(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)


def step_options(parser: argparse.ArgumentParser) -> None:
    add_sizes(parser, STEP_SIZES)
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed repetitions per size (default: "
                             f"{', '.join(f'{s.repeats} for {n}' for n, s in SIZES.items())})")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (default: 2)")
    add_threads(parser, "BLAS / torch threads")
    add_json(parser)
    parser.add_argument("--no-reference", action="store_true",
                        help="do not time transformers even when it is installed")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    add_worker(parser)
    # a worker's: the peak memory of one side's step (without, the timing of both)
    parser.add_argument("--side", choices=("ours", "transformers"), help=argparse.SUPPRESS)
    parser.add_argument("--reference", action="store_true", help=argparse.SUPPRESS)


def profile_options(parser: argparse.ArgumentParser) -> None:
    add_sizes(parser, STEP_SIZES)
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed steps per size (default: the size's own, as for step)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (default: 3)")
    add_threads(parser, "compute threads")
    parser.add_argument("--micro-batches", type=int, default=1,
                        help="cut the batch into this many micro-batches, which run on the "
                             "threads (default: 1)")
    add_worker(parser)


def processes_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--processes", type=int, default=2, help="MPI ranks (default 2)")
    parser.add_argument("--size", choices=tuple(SIZES), default="mini",
                        help="the model and batch size (default mini)")
    parser.add_argument("--repeats", type=int, default=6,
                        help="timed steps of each configuration (default 6)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first (default 1)")
    parser.add_argument("--mpiexec", default="mpiexec", help="the launcher (default mpiexec)")
    add_json(parser, "the table")
    parser.add_argument("--micro-batches", type=int, default=None,
                        help="micro-batches of the ranks and of the micro-batch threads "
                             "(default: --processes)")
    parser.add_argument("--switch-interval", type=float, default=None, metavar="SECONDS",
                        help="how long a thread may hold the GIL while another waits for it "
                             "(sys.setswitchinterval), in every configuration (default: "
                             "Python's, 0.005)")
    add_worker(parser)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)  # a worker's


def loop_options(parser: argparse.ArgumentParser) -> None:
    add_sizes(parser, LOOP_SIZES)
    parser.add_argument("--micro-batches", type=whole_numbers, default="1,2",
                        help="our micro-batch counts to time, comma-separated (default: 1,2)")
    add_threads(parser, "compute threads of both sides")
    parser.add_argument("--dropout", type=float, default=DROPOUT,
                        help=f"hidden and attention dropout (default: {DROPOUT})")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed repetitions per size (default: the size's own, as for step)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (default: 2)")
    add_json(parser)
    add_worker(parser)


def stage_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", type=Path, default=Path("params.yaml"),
                        help="the parameters file (default: params.yaml)")
    parser.add_argument("--set", dest="settings", type=setting, nargs="*", default=[],
                        metavar="SECTION.KEY=VALUE",
                        help="change parameters, e.g. model.dim_ff=256 training.micro_batches=2")
    parser.add_argument("--repeats", type=int, default=3,
                        help="times each of the four runs is made (default: 3)")
    add_threads(parser, "torch threads; ours: training.threads")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the temporary project folder goes (default: the system's)")
    add_json(parser, "a summary")
    add_worker(parser)
    parser.add_argument("--epochs", type=int, default=1, help=argparse.SUPPRESS)  # a worker's


def files_options(parser: argparse.ArgumentParser) -> None:
    add_sizes(parser, FILES_SIZES)
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed calls of each operation per size (default: 5)")
    add_json(parser)


OPTIONS = {"step": step_options, "profile": profile_options, "processes": processes_options,
           "loop": loop_options, "stage": stage_options, "data": lambda parser: None,
           "files": files_options}


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The parser and, by command, its sub-parser."""
    parser = argparse.ArgumentParser(
        prog="python -m bert.bench", description="The benchmarks, one command each.",
        epilog=f"Without a command, {DEFAULT_COMMAND}. python -m bert.bench COMMAND --help: "
               "its options.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    parsers = {}
    for name, (module, summary) in COMMANDS.items():
        parsers[name] = commands.add_parser(
            name, help=summary, description=f"{summary[0].upper()}{summary[1:]} ({module}).")
        OPTIONS[name](parsers[name])
    return parser, parsers


def check(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """What the options of ``args.command`` (its sub-parser ``parser``) must agree on, before
    any work. Workers are started with options already checked."""
    if getattr(args, "worker", False):
        return
    if args.command == "processes":
        batch_size = SIZES[args.size].batch_size
        if args.processes < 2 or batch_size % args.processes:
            parser.error("--processes must be 2 or more and divide the batch size")
        args.micro_batches = args.micro_batches or args.processes
        if args.micro_batches % args.processes or batch_size % args.micro_batches:
            parser.error("--micro-batches must be a multiple of --processes and divide the "
                         "batch size")
    if args.command == "files" and args.repeats < 1:
        parser.error("--repeats must be 1 or more")
    if args.command == "loop":
        for name in args.sizes:
            bad = [m for m in args.micro_batches if m < 1 or SIZES[name].batch_size % m]
            if bad:
                parser.error(f"--micro-batches {bad} do not divide the batch of {name} "
                             f"({SIZES[name].batch_size})")
    elif args.command == "stage":
        if not args.params.is_file():
            parser.error(f"{args.params} does not exist; give --params a parameters file")
        from bert.bench.stage import project_params
        from bert.errors import BertError
        from bert.workflow.loader import params_from_mapping

        args.mapping = project_params(args.params, args.settings)
        try:  # bad parameters: one line now, not after the data stage
            params_from_mapping(args.mapping)
        except BertError as error:
            parser.exit(2, f"error: {args.params}: {error}\n")
    if args.command in ("loop", "stage"):  # after the arguments, which need no torch
        from bert.bench.system import reference_available

        if not reference_available():
            parser.error(REFERENCE_NEEDED)


def parse(argv: list[str]) -> argparse.Namespace:
    """The command and its options, checked; ``step`` when the first argument names no
    command."""
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help")):
        argv = [DEFAULT_COMMAND, *argv]
    parser, parsers = build_parser()
    args = parser.parse_args(argv)
    check(args, parsers[args.command])
    return args


def main(argv: list[str] | None = None) -> None:
    """Run the command ``argv`` (default: this process's arguments) names."""
    args = parse(sys.argv[1:] if argv is None else argv)
    importlib.import_module(COMMANDS[args.command][0]).run(args)
