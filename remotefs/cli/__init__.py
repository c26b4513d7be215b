"""The ``remotefs`` command.

Start-up stays fast: only argparse loads here; each command imports what it needs when it
runs. Every failure prints one line on stderr and exits with a documented code
(:data:`EXIT_CODES`); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from remotefs import __version__

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_PERMISSION = 4
EXIT_NETWORK = 5
EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_ERROR: "any other error",
    EXIT_USAGE: "bad command line or argument",
    EXIT_NOT_FOUND: "a file or resource does not exist",
    EXIT_PERMISSION: "permission denied or login needed",
    EXIT_NETWORK: "the service could not be reached or timed out",
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(
        prog="remotefs",
        description="Remote research platforms as ordinary filesystems.",
        epilog="exit codes: " + ", ".join(f"{k} {v}" for k, v in EXIT_CODES.items()),
    )
    parser.add_argument("--version", action="version", version=f"remotefs {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("-v", "--verbose", action="store_true", help="log HTTP requests")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo", help="run the main job end to end on a local emulated service"
    )
    demo.add_argument("--rows", type=int, default=1000, help="rows of the demo table")
    return parser


def exit_code_for(exc: BaseException) -> int:
    """The exit code that tells scripts what kind of failure ``exc`` is."""
    if isinstance(exc, FileNotFoundError):
        return EXIT_NOT_FOUND
    if isinstance(exc, PermissionError):
        return EXIT_PERMISSION
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return EXIT_NETWORK
    if isinstance(exc, (ValueError, TypeError)):
        return EXIT_USAGE
    return EXIT_ERROR


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(name)s: %(message)s",
    )
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        if args.command == "demo":
            from remotefs.cli.demo import run_demo

            run_demo(rows=args.rows)
        return EXIT_OK
    except KeyboardInterrupt:
        print("remotefs: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        cause = _reported(exc)
        print(f"remotefs: error: {cause}", file=sys.stderr)
        return exit_code_for(cause)


def _reported(exc: BaseException) -> BaseException:
    """The exception worth reporting: fsspec re-raises timeouts as a bare FSTimeoutError."""
    if type(exc).__name__ == "FSTimeoutError" and exc.__cause__ is not None:
        return exc.__cause__
    return exc
