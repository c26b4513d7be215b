"""The ``remotefs`` command.

Start-up stays fast: only argparse loads here; each command imports what it needs when it
runs (:data:`remotefs.cli.parser.COMMANDS`). Every failure prints one line on stderr and exits
with a documented code (:data:`EXIT_CODES`); ``--debug`` shows the traceback instead, and
``-v`` logs HTTP requests to stderr with secrets redacted.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from remotefs.cli import parser as grammar

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_PERMISSION = 4
EXIT_NETWORK = 5
EXIT_PARTIAL = 6
EXIT_TIMEOUT = 7
EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_ERROR: "any other error",
    EXIT_USAGE: "bad command line or argument (unknown protocol, malformed URL)",
    EXIT_NOT_FOUND: "a file or resource does not exist",
    EXIT_PERMISSION: "permission denied or login needed",
    EXIT_NETWORK: "the service could not be reached or timed out",
    EXIT_PARTIAL: "some files of a multi-file transfer failed (listed on stderr)",
    EXIT_TIMEOUT: "a job did not finish in time",
}
VERBOSE_LOGGERS = (
    "remotefs",
    "urllib3.connectionpool",
    "botocore.endpoint",
    "aiobotocore.endpoint",
    "s3fs",
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    return grammar.build_parser(EXIT_CODES)


def exit_code_for(exc: BaseException) -> int:
    """The exit code that tells scripts what kind of failure ``exc`` is."""
    jobs = sys.modules.get("remotefs.jobs.errors")  # loaded if a job error can have happened
    if jobs is not None:
        if isinstance(exc, jobs.JobTimeoutError):
            return EXIT_TIMEOUT
        if isinstance(exc, jobs.UnsafeOutputError):
            return EXIT_ERROR
    if isinstance(exc, FileNotFoundError):
        return EXIT_NOT_FOUND
    if isinstance(exc, PermissionError):
        return EXIT_PERMISSION
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return EXIT_NETWORK
    if isinstance(exc, (ValueError, TypeError)):
        return EXIT_USAGE
    return EXIT_ERROR


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (a bare path gets said what is wrong with it)."""
    text = " ".join(str(exc).split())
    bare = isinstance(exc, OSError) and exc.strerror is None and " " not in text
    if bare and isinstance(exc, FileNotFoundError):
        return f"no such file or directory: {text}"
    if bare and isinstance(exc, PermissionError):
        return f"permission denied: {text}"
    return text or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    restore = _log_http(args.verbose)
    try:
        module, _, function = grammar.COMMANDS[args.command].partition(":")
        run: Callable[[argparse.Namespace], int] = getattr(
            importlib.import_module(module), function
        )
        return run(args)
    except KeyboardInterrupt:
        print("remotefs: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_ERROR
    except Exception as exc:
        if args.debug:
            raise
        cause = _reported(exc)
        print(f"remotefs: error: {one_line(cause)}", file=sys.stderr)
        return exit_code_for(cause)
    finally:
        restore()


def _reported(exc: BaseException) -> BaseException:
    """The exception worth reporting: fsspec re-raises timeouts as a bare FSTimeoutError."""
    if type(exc).__name__ == "FSTimeoutError" and exc.__cause__ is not None:
        return exc.__cause__
    return exc


def _log_http(verbose: bool) -> Callable[[], None]:
    """With ``-v``, log requests to stderr through the redacting filter; returns the undo."""
    if not verbose:
        return lambda: None
    import logging

    from remotefs.auth.redact import RedactSecrets

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    handler.addFilter(RedactSecrets())
    saved = []
    for name in VERBOSE_LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level))
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)

    def restore() -> None:
        for logger, level in saved:
            logger.removeHandler(handler)
            logger.setLevel(level)

    return restore


def _silence_stdout() -> None:
    """The reader went away (``remotefs cat ... | head``): drop what is still buffered."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
