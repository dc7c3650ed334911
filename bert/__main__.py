"""Command line: ``bert <command> ...`` (or ``python -m bert <command> ...``); ``bert --help``
lists the commands, ``bert <command> --help`` says what one reads and writes.

Here a command is run: a user's error said in one line, Ctrl-C and SIGTERM stopping it cleanly.
The commands themselves are ``bert.cli``."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator

from bert.cli.parser import build_parser
from bert.errors import BertError
from bert.workflow.interrupts import interrupted_message


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
