"""The command line's grammar: every command, its options and its help.

Only argparse loads here (``remotefs --help`` and ``--version`` stay fast); what a command
does lives in the module named by :data:`COMMANDS`, imported when it runs.
"""

from __future__ import annotations

import argparse

from remotefs import __version__
from remotefs.cli.services import JOB_SERVICES, SERVICES

#: command -> "module:function" that runs it (the function takes the parsed arguments).
COMMANDS = {
    "login": "remotefs.cli.accounts:login",
    "logout": "remotefs.cli.accounts:logout",
    "whoami": "remotefs.cli.accounts:whoami",
    "profiles": "remotefs.cli.accounts:profiles",
    "ls": "remotefs.cli.files:ls",
    "cat": "remotefs.cli.files:cat",
    "du": "remotefs.cli.files:du",
    "mkdir": "remotefs.cli.files:mkdir",
    "rm": "remotefs.cli.files:rm",
    "cp": "remotefs.cli.copy:cp",
    "mv": "remotefs.cli.copy:mv",
    "sync": "remotefs.cli.sync:sync",
    "jobs": "remotefs.cli.jobs:command",
    "demo": "remotefs.cli.demo:command",
}
URL_HELP = "a local path or any fsspec URL (agave://SYSTEM/path, edito://bucket/key, memory://...)"
#: the values of remotefs.jobs.JobStatus a listing filters by (not imported: start-up).
JOB_STATUSES = ("accepted", "running", "successful", "failed", "dismissed")


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be a number of seconds above 0")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _pair(text: str) -> tuple[str, str]:
    """``NAME=VALUE``, split at the first ``=``."""
    name, equals, value = text.partition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def _transfers(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError("must be between 1 and 64")
    return value


class _Rule(argparse.Action):
    """Keeps --include and --exclude in command-line order: the first matching rule wins."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        rules = list(getattr(namespace, "rules", None) or [])
        rules.append((self.const, str(values)))
        namespace.rules = rules


def build_parser(exit_codes: dict[int, str]) -> argparse.ArgumentParser:
    """The argument parser of every command; ``exit_codes`` go into the help's epilog."""
    codes = "\n".join(f"  {code}  {meaning}" for code, meaning in exit_codes.items())
    parser = argparse.ArgumentParser(
        prog="remotefs",
        description="Remote research platforms as ordinary filesystems: log in, then list, "
        "copy and sync between local paths, agave://, edito:// and any fsspec URL; run "
        "remote processes with `remotefs jobs`.",
        epilog=f"exit codes:\n{codes}\n\nsee docs/cli.md for the full reference",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"remotefs {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log HTTP requests (secrets redacted)"
    )
    profile = argparse.ArgumentParser(add_help=False)
    profile.add_argument(
        "--profile",
        metavar="NAME",
        help="profile of the service (default: $REMOTEFS_PROFILE, else 'default')",
    )
    json_out = argparse.ArgumentParser(add_help=False)
    json_out.add_argument("--json", action="store_true", help="print JSON")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _accounts(commands, profile, json_out)
    _files(commands, profile, json_out)
    _jobs(commands, json_out)
    demo = commands.add_parser(
        "demo", help="run the main job end to end on a local emulated service"
    )
    demo.add_argument("--rows", type=int, default=1000, help="rows of the demo table")
    return parser


def _accounts(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    profile: argparse.ArgumentParser,
    json_out: argparse.ArgumentParser,
) -> None:
    services = sorted(SERVICES)
    login = commands.add_parser(
        "login",
        parents=[profile],
        help="log in to a service; keeps tokens, never the password",
        description="Ask for the password (without echo), obtain tokens and keep them in the "
        "private credential store; the profile's settings go to config.toml.",
    )
    login.add_argument("service", choices=services, help="the service")
    login.add_argument("--username", help="user name (default: the profile's)")
    login.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    login.add_argument("--base-url", help="agave: the tenant's base URL")
    login.add_argument("--client-name", help="agave: name of the OAuth client to use")
    login.add_argument("--token-url", help="edito: Keycloak's token endpoint")
    login.add_argument("--endpoint-url", help="edito: the S3 (MinIO) endpoint")
    login.add_argument("--region", help="edito: the S3 region")
    login.add_argument("--processes-url", help="edito: the process API (for remotefs jobs)")
    logout = commands.add_parser(
        "logout", parents=[profile], help="forget the tokens of a service's profile"
    )
    logout.add_argument("service", choices=services, help="the service")
    whoami = commands.add_parser(
        "whoami",
        parents=[profile, json_out],
        help="who you are logged in as, and when tokens (and EDITO's S3 keys) expire",
    )
    whoami.add_argument("service", choices=services, help="the service")
    commands.add_parser("profiles", parents=[json_out], help="list profiles and logins")


def _files(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    profile: argparse.ArgumentParser,
    json_out: argparse.ArgumentParser,
) -> None:
    transfer = argparse.ArgumentParser(add_help=False, parents=[profile, json_out])
    transfer.add_argument(
        "--transfers",
        type=_transfers,
        default=4,
        metavar="N",
        help="files transferred at once (default 4)",
    )
    ls = commands.add_parser("ls", parents=[profile, json_out], help="list a directory")
    ls.add_argument("-l", dest="long", action="store_true", help="sizes and modification times")
    ls.add_argument("-R", dest="recursive", action="store_true", help="list subdirectories too")
    ls.add_argument("urls", nargs="+", metavar="URL", help=URL_HELP)
    cp = commands.add_parser(
        "cp",
        parents=[transfer],
        help="copy a file, or with -r the contents of a directory, between any filesystems",
    )
    cp.add_argument("-r", "--recursive", action="store_true", help="copy a directory's contents")
    cp.add_argument("src", metavar="SRC", help=URL_HELP)
    cp.add_argument("dst", metavar="DST", help="destination (a directory if it ends with /)")
    mv = commands.add_parser("mv", parents=[transfer], help="move a file or a directory's contents")
    mv.add_argument("src", metavar="SRC", help=URL_HELP)
    mv.add_argument("dst", metavar="DST", help="destination (a directory if it ends with /)")
    rm = commands.add_parser("rm", parents=[profile], help="remove files")
    rm.add_argument("-r", "--recursive", action="store_true", help="remove directories too")
    rm.add_argument("urls", nargs="+", metavar="URL", help=URL_HELP)
    mkdir = commands.add_parser("mkdir", parents=[profile], help="make directories")
    mkdir.add_argument(
        "-p", "--parents", action="store_true", help="make parents; no error if it exists"
    )
    mkdir.add_argument("urls", nargs="+", metavar="URL", help=URL_HELP)
    cat = commands.add_parser("cat", parents=[profile], help="write files to standard output")
    cat.add_argument("urls", nargs="+", metavar="URL", help=URL_HELP)
    du = commands.add_parser("du", parents=[profile, json_out], help="total size of files")
    du.add_argument("-H", "--human", action="store_true", help="sizes in KiB, MiB, ...")
    du.add_argument("urls", nargs="+", metavar="URL", help=URL_HELP)
    sync = commands.add_parser(
        "sync",
        parents=[transfer],
        help="make DST hold what SRC holds, copying only new and changed files",
        description="Copy the files of SRC that DST lacks or that differ; a file is unchanged "
        "when it has the same size and DST's copy is not older than SRC's (1 s tolerance), "
        "or with --checksum the same MD5 where both sides have one.",
    )
    sync.add_argument("src", metavar="SRC", help=URL_HELP)
    sync.add_argument("dst", metavar="DST", help="destination directory")
    sync.add_argument("--checksum", action="store_true", help="compare MD5 checksums")
    sync.add_argument("--dry-run", action="store_true", help="show what would change")
    sync.add_argument(
        "--delete", action="store_true", help="remove files of DST that SRC does not have"
    )
    sync.add_argument(
        "--include",
        action=_Rule,
        const="include",
        metavar="GLOB",
        help="copy matching files (rules apply in order; the first match wins)",
    )
    sync.add_argument(
        "--exclude", action=_Rule, const="exclude", metavar="GLOB", help="skip matching files"
    )
    sync.set_defaults(rules=[])


def _jobs(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    json_out: argparse.ArgumentParser,
) -> None:
    jobs = commands.add_parser(
        "jobs",
        help="run remote processes: submit with staged inputs, wait, pull the outputs",
        description="Processes and jobs of a job service: edito (EDITO's process API, with the "
        "profile's `remotefs login edito`) or ogc (an OGC API - Processes server at --url). "
        "A job that submit recorded here is reached at its record's URLs.",
    )
    actions = jobs.add_subparsers(dest="action", metavar="ACTION", required=True)
    service = argparse.ArgumentParser(add_help=False)
    service.add_argument("service", choices=sorted(JOB_SERVICES), help="the job service")
    where = service.add_argument_group("service settings")
    where.add_argument(
        "--profile", metavar="NAME", help="edito: the login's profile (default: $REMOTEFS_PROFILE)"
    )
    where.add_argument(
        "--processes-url",
        metavar="URL",
        help="edito: the process API (default: $EDITO_PROCESSES_URL, the profile's, EDITO's)",
    )
    where.add_argument("--url", help="ogc: the server's root URL (default: the job's record)")
    where.add_argument("--token", help="ogc: a bearer token to send")
    job = argparse.ArgumentParser(add_help=False, parents=[service])
    job.add_argument("job_id", metavar="JOB_ID", help="the job's id")
    waiting = argparse.ArgumentParser(add_help=False)
    waiting.add_argument("--timeout", type=_seconds, metavar="S", help="give up after S seconds")
    waiting.add_argument(
        "--cancel-on-timeout", action="store_true", help="dismiss the job when --timeout passes"
    )
    waiting.add_argument(
        "--poll",
        type=_seconds,
        default=30.0,
        metavar="S",
        help="longest pause between status checks (default 30; pauses start at 1 s and grow)",
    )
    actions.add_parser(
        "processes", parents=[service, json_out], help="the processes offered: id, title, version"
    )
    describe = actions.add_parser(
        "describe", parents=[service, json_out], help="a process's inputs and outputs"
    )
    describe.add_argument("process", metavar="PROCESS", help="the process id")
    submit = actions.add_parser(
        "submit",
        parents=[service, waiting],
        help="check the inputs, stage files, run a process; prints the job id first",
        description="Inputs are checked against the process's declared schema before anything "
        "is staged or sent. --input values are read as JSON when they parse (3, true, "
        '"3", [1,2]), else as text.',
    )
    submit.add_argument("process", metavar="PROCESS", help="the process id")
    submit.add_argument(
        "--input",
        dest="inputs",
        type=_pair,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an input (repeat for more): VALUE as JSON if it parses, else as text",
    )
    submit.add_argument(
        "--inputs-json", metavar="FILE", help="a JSON object of inputs ('-': standard input)"
    )
    submit.add_argument(
        "--stage",
        type=_pair,
        action="append",
        default=[],
        metavar="SRC=URL",
        help="copy SRC (a path or URL) to URL first, unless it is there already",
    )
    submit.add_argument("--wait", action="store_true", help="wait, then print the results")
    submit.add_argument(
        "--download", metavar="DIR", help="wait, then download every output into DIR"
    )
    actions.add_parser(
        "status", parents=[job, json_out], help="the job's status, progress and message"
    )
    actions.add_parser(
        "wait",
        parents=[job, waiting],
        help="wait until the job ends: exit 0 if successful, 1 if not, 7 on timeout",
    )
    actions.add_parser("logs", parents=[job], help="the job's log (no logs endpoint: exit 2)")
    actions.add_parser("results", parents=[job, json_out], help="the job's results")
    download = actions.add_parser(
        "download", parents=[job, json_out], help="download every output of the job"
    )
    download.add_argument("dest", metavar="DIR", help="a directory or any fsspec URL")
    actions.add_parser("cancel", parents=[job], help="dismiss the job")
    listing = actions.add_parser("list", parents=[service, json_out], help="jobs, newest first")
    listing.add_argument("--limit", type=_positive, metavar="N", help="at most N jobs")
    listing.add_argument("--status", choices=JOB_STATUSES, help="only jobs with this status")
    listing.add_argument(
        "--local", action="store_true", help="the jobs recorded here, as last seen (no requests)"
    )
