"""``remotefs-emulator``: run a service emulator in the foreground, one subcommand per service.

Prints one JSON line once the sockets are bound (``{"url": "http://127.0.0.1:PORT"}`` for Agave;
``{"token_url": ..., "s3_url": ..., "processes_url": ...}`` for EDITO), serves until
SIGINT/SIGTERM, exits 0.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
from collections.abc import Callable, Sequence
from typing import Any

from remotefs.testing.agave import AgaveEmulator
from remotefs.testing.server import serve_forever

__all__ = ["main"]


def _rate(text: str) -> float:
    """A probability between 0 and 1."""
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def _user(text: str) -> tuple[str, str]:
    """A NAME:PASSWORD pair."""
    name, sep, password = text.partition(":")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME:PASSWORD")
    return name, password


def _add_common(parser: argparse.ArgumentParser) -> None:
    """Options every emulator takes: where to listen and which faults to inject."""
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (%(default)s)")
    parser.add_argument("--port", type=int, default=0, help="port to bind, 0 picks a free one")
    parser.add_argument("--latency-ms", type=int, default=0, help="delay added to every request")
    parser.add_argument(
        "--fail-rate", type=_rate, default=0.0, help="share of requests failing (503 or cut body)"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the fault injector")


def _add_users(parser: argparse.ArgumentParser, user_help: str, token_lifetime: float) -> None:
    """The ``--user`` (repeatable) and ``--token-lifetime`` options."""
    parser.add_argument(
        "--user", type=_user, action="append", metavar="NAME:PASSWORD", help=user_help
    )
    parser.add_argument(
        "--token-lifetime", type=float, default=token_lifetime, help="access token seconds"
    )


def _common_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The emulator keywords that come from the options both subcommands share."""
    return {
        "users": dict(args.user) if args.user else None,
        "token_lifetime": args.token_lifetime,
        "latency_ms": args.latency_ms,
        "fail_rate": args.fail_rate,
        "seed": args.seed,
    }


def _run_agave(args: argparse.Namespace) -> int:
    """Serve the Agave v2 emulator until interrupted."""
    emulator = AgaveEmulator(
        data_dir=args.data,
        staging_delay=args.staging_delay,
        system_id=args.system_id,
        **_common_kwargs(args),
    )
    try:
        serve_forever(emulator.make_app(), args.host, args.port)
    finally:
        emulator.close()
    return 0


def _run_edito(args: argparse.Namespace) -> int:
    """Serve the EDITO emulator (Keycloak, S3 + STS front, process API, moto) until interrupted."""
    from remotefs.testing.edito import EditoEmulator

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: stop.set())
    emulator = EditoEmulator(
        refresh_lifetime=args.refresh_lifetime,
        credential_min=args.credential_min,
        credential_max=args.credential_max,
        host=args.host,
        port=args.port,
        auth_port=args.auth_port,
        process_port=args.process_port,
        job_step_seconds=args.job_step_seconds,
        **_common_kwargs(args),
    )
    with emulator:
        ready = {
            "token_url": emulator.token_url,
            "s3_url": emulator.s3_url,
            "processes_url": emulator.processes_url,
        }
        print(json.dumps(ready), flush=True)
        stop.wait()
    return 0


def _add_edito(services: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``edito`` subcommand and its options."""
    edito = services.add_parser(
        "edito", help="EDITO: Keycloak tokens, MinIO-like STS and S3, the process API"
    )
    _add_common(edito)
    edito.add_argument("--auth-port", type=int, default=0, help="Keycloak port, 0 picks a free one")
    edito.add_argument(
        "--process-port", type=int, default=0, help="process API port, 0 picks a free one"
    )
    edito.add_argument(
        "--job-step-seconds", type=float, default=0.5, help="length of each step of a job"
    )
    _add_users(edito, "a user, with bucket oidc-NAME (repeatable; default demo:demo)", 300)
    edito.add_argument("--refresh-lifetime", type=float, default=1800, help="refresh token seconds")
    edito.add_argument(
        "--credential-min", type=float, default=900, help="smallest STS DurationSeconds"
    )
    edito.add_argument(
        "--credential-max",
        type=float,
        default=604800,
        help="longest STS credential lifetime; longer requests are cut to it",
    )
    edito.set_defaults(run=_run_edito)


def _parser() -> argparse.ArgumentParser:
    """The command line: one subparser per emulated service."""
    parser = argparse.ArgumentParser(
        prog="remotefs-emulator", description="Run a local emulator of a remote research platform."
    )
    services = parser.add_subparsers(dest="service", required=True, metavar="SERVICE")
    agave = services.add_parser("agave", help="Agave v2 (Tapis v2): clients, tokens, files")
    _add_common(agave)
    agave.add_argument(
        "--data", default=None, help="data directory (rootDir is DATA/root); default: a temp dir"
    )
    _add_users(agave, "a user (repeatable; default demo:demo)", 14400)
    agave.add_argument(
        "--staging-delay", type=float, default=0.0, help="seconds before an upload is in place"
    )
    agave.add_argument("--system-id", default="cic.storage", help="id of the storage system")
    agave.set_defaults(run=_run_agave)
    _add_edito(services)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``remotefs-emulator``."""
    args = _parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
