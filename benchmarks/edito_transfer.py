"""Benchmark edito:// transfers against the EDITO emulator on loopback, side by side with rclone.

One ``remotefs-emulator edito`` (bucket ``oidc-demo``) for the whole run. Many small files
(default 500 x 64 KiB) go up with ``put(recursive=True)`` and come back with
``get(recursive=True)``; one large file (default 256 MiB) with ``put_file`` and ``get_file``.
Each by edito://, by plain s3fs with its defaults (what edito:// does without its transfer
overrides) and by Debian's ``rclone copy`` (an S3 remote on the same endpoint, with STS keys).
Every client runs in its own process, started by GNU time for its peak RSS and CPU time.
The figures are printed and written between the EDITO markers of ``--out`` (default
``docs/performance.md``); the rest of that file is kept byte for byte.

    python benchmarks/edito_transfer.py            # full run, writes docs/performance.md
    python benchmarks/edito_transfer.py --quick    # smoke run, prints only
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _measure import (
    MIB,
    RSS_TOOL,
    Rounds,
    add_size_arguments,
    alternating,
    busy_seconds,
    measure,
    own_seconds,
    parse_run_arguments,
    process_cpu,
    write_data,
    write_private,
)
from _measure import Run as BaseRun
from _measure import emulator as run_emulator
from _report import (
    Target,
    bullets,
    first_line,
    machine,
    markdown_checks,
    markdown_table,
    markers,
    print_table,
    size_label,
    utc_now,
    write_section,
)

RCLONE = shutil.which("rclone") or "/usr/bin/rclone"
USER, PASSWORD = "demo", "demo"
BUCKET = f"oidc-{USER}"
REGION = "waw3-1"
REMOTE = "edito"  # the rclone remote, configured through RCLONE_CONFIG_EDITO_* variables
QUICK = {"size_mib": 32, "files": 50, "rounds": 1}
DEFAULTS = {"size_mib": 256, "files": 500, "rounds": 3}
SMALL_RATIO = 1.25  # small files: edito:// within this multiple of rclone's time
RSS_LIMIT_MIB = 128
SECTION = "edito-benchmark"
BEGIN, END = markers(SECTION)
CLIENTS = ("edito://", "s3fs defaults", "rclone copy")


@dataclass
class Run(BaseRun):
    """One measured process; ``seconds``: the operation as the client timed it (rclone: all)."""

    cpu: float  # user + system seconds of the client process
    server_cpu: float  # CPU seconds of the emulator (front and moto) during the run


@dataclass
class Case(Rounds[Run]):
    """One client doing one transfer, measured over several rounds."""

    scenario: str
    client: str
    nbytes: int
    run: Callable[[], Run] = field(repr=False)
    runs: list[Run] = field(default_factory=list)


# -- processes ----------------------------------------------------------------------------------


def descendants(pid: int) -> list[int]:
    """``pid`` and its live descendants (the emulator and its moto child)."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            queue += [int(child) for child in task.read_text().split()]
    return found


def deadline(nbytes: int) -> float:
    """Seconds a client may take before it is killed (as if it moved only 5 MB/s)."""
    return 60 + nbytes / 5e6


@dataclass
class Emulator:
    """The running EDITO emulator: its URLs and the processes whose CPU time is counted."""

    token_url: str
    s3_url: str
    pids: list[int]

    def cpu(self) -> float:
        """CPU seconds used so far by the emulator and moto."""
        return sum(process_cpu(pid) for pid in self.pids)


@contextmanager
def emulator(log: Path) -> Iterator[Emulator]:
    """Run ``remotefs-emulator edito`` for user demo; yield its URLs."""
    cmd = ["edito", "--port", "0", "--user", f"{USER}:{PASSWORD}"]
    with run_emulator(cmd, log, start_timeout=60, stop_timeout=30) as (urls, pid):
        yield Emulator(urls["token_url"], urls["s3_url"], descendants(pid))


def clean_environ() -> dict[str, str]:
    """This environment without AWS, EDITO and rclone settings that would change the clients."""
    prefixes = ("AWS_", "EDITO_", "RCLONE_")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


class Session:
    """Everything the clients need: URLs, STS keys (private file, rclone variables), a checker."""

    def __init__(self, emu: Emulator, work: Path) -> None:
        from remotefs.edito import s3_credentials

        creds = s3_credentials(USER, PASSWORD, token_url=emu.token_url, endpoint_url=emu.s3_url)
        self.emu = emu
        self.settings = work / "settings.json"
        write_private(
            self.settings,
            json.dumps(
                {
                    "token_url": emu.token_url,
                    "s3_url": emu.s3_url,
                    "key": creds.access_key_id,
                    "secret": creds.secret_access_key,
                    "token": creds.session_token,
                }
            ),
        )
        empty_config = work / "rclone.conf"
        write_private(empty_config, "")
        name = f"RCLONE_CONFIG_{REMOTE.upper()}_"
        self.rclone_env = {
            **clean_environ(),
            "RCLONE_CONFIG": str(empty_config),
            name + "TYPE": "s3",
            name + "PROVIDER": "Minio",
            name + "ACCESS_KEY_ID": creds.access_key_id,
            name + "SECRET_ACCESS_KEY": creds.secret_access_key,
            name + "SESSION_TOKEN": creds.session_token,
            name + "ENDPOINT": emu.s3_url,
            name + "REGION": REGION,
            "RCLONE_S3_NO_HEAD": "true",  # moto: no HEAD after each upload
        }
        self.python_env = clean_environ()
        self.s3 = _boto3_client(emu.s3_url, creds)

    # -- what is on the server ------------------------------------------------------------------

    def names(self, prefix: str) -> list[str]:
        """Names of the objects under ``prefix/``, relative to it."""
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=BUCKET, Prefix=prefix + "/"
        )
        return [item["Key"][len(prefix) + 1 :] for p in pages for item in p.get("Contents", [])]

    def digest(self, key: str) -> str:
        """SHA-256 of one object."""
        body = self.s3.get_object(Bucket=BUCKET, Key=key)["Body"]
        digest = hashlib.sha256()
        for chunk in iter(lambda: body.read(MIB), b""):
            digest.update(chunk)
        return digest.hexdigest()

    def upload(self, local: Path, key: str) -> None:
        """Put a source file in place (boto3, not the clients measured)."""
        self.s3.upload_file(str(local), BUCKET, key)

    def delete(self, prefix: str) -> None:
        """Remove every object under ``prefix/``."""
        names = [f"{prefix}/{name}" for name in self.names(prefix)]
        for start in range(0, len(names), 1000):
            objects = [{"Key": name} for name in names[start : start + 1000]]
            self.s3.delete_objects(Bucket=BUCKET, Delete={"Objects": objects, "Quiet": True})


def _boto3_client(endpoint: str, creds: Any) -> Any:
    """A plain boto3 client with the STS keys, for set-up and checks."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=creds.access_key_id,
        aws_secret_access_key=creds.secret_access_key,
        aws_session_token=creds.session_token,
        config=Config(
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


# -- clients ------------------------------------------------------------------------------------


def python_client(session: Session, client_args: list[str], nbytes: int) -> Callable[[], Run]:
    """A run of this script's ``client`` mode (TOOL OP SOURCE TARGET): one operation."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "client", *client_args]
    cmd += ["--settings", str(session.settings)]

    def run() -> Run:
        before = session.emu.cpu()
        out, wall, rss, cpu = measure(cmd, deadline(nbytes), session.python_env, shown=4)
        seconds = json.loads(out.strip().splitlines()[-1])["seconds"]
        return Run(seconds, wall, rss, cpu, session.emu.cpu() - before)

    return run


def rclone_client(session: Session, copy_args: list[str], nbytes: int) -> Callable[[], Run]:
    """A run of ``rclone copy SOURCE TARGET`` with its defaults, timed as a whole process."""
    cmd = [RCLONE, "copy", *copy_args]

    def run() -> Run:
        before = session.emu.cpu()
        _, wall, rss, cpu = measure(cmd, deadline(nbytes), session.rclone_env, shown=4)
        return Run(wall, wall, rss, cpu, session.emu.cpu() - before)

    return run


# -- scenarios ----------------------------------------------------------------------------------


def file_digest(path: Path) -> str:
    """SHA-256 of a local file."""
    digest = hashlib.sha256()
    with open(path, "rb") as src:
        for chunk in iter(lambda: src.read(MIB), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tree(folder: Path) -> dict[str, str]:
    """Relative names of the files below ``folder`` and their SHA-256."""
    return {
        p.relative_to(folder).as_posix(): file_digest(p) for p in folder.rglob("*") if p.is_file()
    }


def run_rounds(cases: list[Case], rounds: int, after: Callable[[Case], None]) -> None:
    """Run every case once per round, alternating the order; ``after`` checks and cleans up."""
    for number, case in alternating(cases, rounds):
        print(f"  round {number + 1}/{rounds}: {case.scenario}, {case.client}")
        os.sync()  # start each run without the previous one's dirty pages being written back
        case.runs.append(case.run())
        after(case)


def small_files(args: argparse.Namespace, session: Session, work: Path) -> list[Case]:
    """``put``/``get`` of a folder of small files: edito://, s3fs defaults, rclone copy."""
    source = work / "small"
    source.mkdir()
    for i in range(args.files):
        (source / f"f{i:05d}.bin").write_bytes(os.urandom(args.file_kib * 1024))
    expected = tree(source)
    for name in expected:
        session.upload(source / name, f"src/small/{name}")
    label = f"{args.files} x {args.file_kib} KiB"
    nbytes = args.files * args.file_kib * 1024
    return transfers(args, session, work, Transfer("small", label, nbytes, source, expected))


def large_file(args: argparse.Namespace, session: Session, work: Path) -> list[Case]:
    """``put_file``/``get_file`` of one large file: edito://, s3fs defaults, rclone copy."""
    folder = work / "large"
    folder.mkdir()
    size = args.size_mib * MIB
    write_data(folder / "large.bin", size)
    expected = tree(folder)
    session.upload(folder / "large.bin", "src/large/large.bin")
    label = size_label(args.size_mib)
    return transfers(args, session, work, Transfer("large", label, size, folder, expected))


@dataclass(frozen=True)
class Transfer:
    """What a scenario moves: a folder of files, or (``large``) the one file in it."""

    name: str
    label: str
    nbytes: int
    folder: Path
    expected: dict[str, str]  # relative name -> SHA-256

    def commands(self, client: str, upload: bool, prefix: str, local: Path) -> list[str]:
        """The rclone arguments, or the client-mode arguments, of one run."""
        remote = f"{BUCKET}/{prefix}" if upload else f"{BUCKET}/src/{self.name}"
        one = next(iter(self.expected)) if self.name == "large" else None
        folder = self.folder if upload else local
        if client == "rclone copy":  # copies a file into a folder, or a folder's contents
            here = str(folder / one) if one and upload else str(folder)
            there = f"{REMOTE}:{remote}/{one}" if one and not upload else f"{REMOTE}:{remote}"
            return [here, there] if upload else [there, here]
        tool = "edito" if client == "edito://" else "s3fs"
        if one:
            here, there = str(folder / one), f"{remote}/{one}"
            op = "put-file" if upload else "get-file"
        else:
            here, there = str(folder), remote
            op = "put-tree" if upload else "get-tree"
        return [tool, op, here, there] if upload else [tool, op, there, here]


def transfers(args: argparse.Namespace, session: Session, work: Path, what: Transfer) -> list[Case]:
    """Upload and download cases of one scenario, run over the rounds and checked after each."""
    places: dict[tuple[str, str], tuple[str, Path]] = {}
    counter = itertools.count(1)

    def case(client: str, upload: bool) -> Case:
        scenario = f"{what.label} {'upload' if upload else 'download'}"

        def run() -> Run:
            tag = f"{what.name}-{CLIENTS.index(client)}-{next(counter)}"
            prefix, local = places[(scenario, client)] = f"runs/{tag}", work / "downloads" / tag
            local.mkdir(parents=True)
            cmd = what.commands(client, upload, prefix, local)
            if client == "rclone copy":
                return rclone_client(session, cmd, what.nbytes)()
            return python_client(session, cmd, what.nbytes)()

        return Case(scenario, client, what.nbytes, run)

    cases = [case(client, upload) for upload in (True, False) for client in CLIENTS]

    def after(done: Case) -> None:
        prefix, local = places.pop((done.scenario, done.client))
        found = tree(local)
        shutil.rmtree(local)
        if done.scenario.endswith("upload"):
            found = {key: session.digest(f"{prefix}/{key}") for key in session.names(prefix)}
            session.delete(prefix)
        if found != what.expected:
            raise RuntimeError(
                f"{done.client} left {len(found)} files in the {done.scenario}, "
                f"not the {len(what.expected)} expected ones"
            )

    run_rounds(cases, args.rounds, after)
    return cases


# -- the client side (one process per measured operation) -------------------------------------


def client_main(argv: list[str]) -> int:
    """``client TOOL OP SOURCE TARGET --settings FILE``: one timed operation, one JSON line."""
    parser = argparse.ArgumentParser(prog="edito_transfer.py client")
    parser.add_argument("tool", choices=("edito", "s3fs"))
    parser.add_argument("op", choices=("put-tree", "get-tree", "put-file", "get-file"))
    parser.add_argument("source")
    parser.add_argument("target")
    parser.add_argument("--settings", required=True, help="private JSON file: URLs and keys")
    args = parser.parse_args(argv)
    settings = json.loads(Path(args.settings).read_text(encoding="ascii"))
    fs = client_filesystem(args.tool, settings)
    fs.connect()  # log in (edito://), get STS keys and set the S3 client up before the clock
    ops: dict[str, Callable[[], Any]] = {
        "put-tree": lambda: fs.put(args.source + "/", args.target + "/", recursive=True),
        "get-tree": lambda: fs.get(args.source + "/", args.target + "/", recursive=True),
        "put-file": lambda: fs.put_file(args.source, args.target),
        "get-file": lambda: fs.get_file(args.source, args.target),
    }
    start = time.perf_counter()
    ops[args.op]()
    print(json.dumps({"seconds": time.perf_counter() - start}))
    return 0


def client_filesystem(tool: str, settings: dict[str, str]) -> Any:
    """edito:// logged in as demo, or s3fs with its defaults and the STS keys."""
    if tool == "edito":
        from remotefs.edito.filesystem import EditoFileSystem

        return EditoFileSystem(
            token_url=settings["token_url"],
            endpoint_url=settings["s3_url"],
            username=USER,
            password=PASSWORD,
            skip_instance_cache=True,
        )
    from s3fs import S3FileSystem

    from remotefs.edito.filesystem import MINIO_CONFIG

    return S3FileSystem(
        key=settings["key"],
        secret=settings["secret"],
        token=settings["token"],
        endpoint_url=settings["s3_url"],
        client_kwargs={"region_name": REGION},
        config_kwargs=json.loads(json.dumps(MINIO_CONFIG)),  # a deep copy
        skip_instance_cache=True,
    )


# -- report -------------------------------------------------------------------------------------


def by_key(cases: list[Case]) -> dict[tuple[str, str], Case]:
    """Cases by (scenario, client)."""
    return {(c.scenario, c.client): c for c in cases}


def targets(cases: list[Case], args: argparse.Namespace) -> list[Target]:
    """The issue's targets, checked against this run."""
    case = by_key(cases)
    scenarios = list(dict.fromkeys(c.scenario for c in cases))
    found: list[Target] = []
    for scenario in scenarios:
        ours, peer = case[(scenario, "edito://")], case[(scenario, "rclone copy")]
        ratio = ours.seconds / peer.seconds
        limit = SMALL_RATIO if scenario.startswith(f"{args.files} x") else 1.0
        goal = f"within {limit}x of rclone's time" if limit != 1.0 else "as fast as rclone"
        found.append(Target(
            f"{scenario}: {goal}",
            f"{ours.seconds:.2f} vs {peer.seconds:.2f} s = {ratio:.2f}x", ratio <= limit,
        ))  # fmt: skip
    for scenario in scenarios[2:]:
        ours = case[(scenario, "edito://")]
        found.append(Target(
            f"{scenario}: edito:// peak RSS < {RSS_LIMIT_MIB} MiB",
            f"{ours.rss_mib:.1f} MiB", ours.rss_mib < RSS_LIMIT_MIB,
        ))  # fmt: skip
    return found


def machine_info() -> dict[str, str]:
    """What the figures were measured on, and with which versions."""
    return machine(
        ("s3fs", "aiobotocore", "botocore", "fsspec", "aiohttp", "moto"),
        {"rclone": first_line([RCLONE, "version"]) or "not found"},
        tempfile.gettempdir(),
    )


HEADER = [
    "transfer", "client", "op s", "op s min-max", "process s", "MB/s", "vs rclone",
    "peak RSS MiB", "client CPU s", "emulator CPU s",
]  # fmt: skip


def table_rows(cases: list[Case]) -> list[list[str]]:
    """One row of figures per case."""
    case = by_key(cases)
    return [
        [
            c.scenario,
            c.client,
            f"{c.seconds:.3f}",
            c.spread,
            f"{c.median('wall'):.3f}",
            f"{c.mb_s:.0f}",
            f"{c.seconds / case[(c.scenario, 'rclone copy')].seconds:.2f}x",
            f"{c.rss_mib:.1f}",
            f"{c.median('cpu'):.2f}",
            f"{c.median('server_cpu'):.2f}",
        ]
        for c in cases
    ]


def markdown(
    cases: list[Case], found: list[Target], args: argparse.Namespace, when: str, background: str
) -> str:
    """The EDITO section of docs/performance.md for this run (markers included)."""
    figures = markdown_table(HEADER, table_rows(cases))
    checks = markdown_checks(found)
    box = bullets({**machine_info(), "background": background})
    command = f"python benchmarks/edito_transfer.py {' '.join(args.argv)}".rstrip()
    return f"""{BEGIN}
## edito:// transfers

Generated by `benchmarks/edito_transfer.py` on {when} from one run ({args.rounds} round(s)
per figure); do not edit the figures by hand, run the script again.

### Machine and versions

{box}

### Method

- Server: one `remotefs-emulator edito --port 0 --user demo:demo` for the whole run (Keycloak,
  STS and the S3 front in one process, moto's S3 server in a child process), bucket
  `oidc-demo`, on 127.0.0.1. Every request crosses the front, which checks its SigV4
  signature and relays it to moto, for all clients alike. The sources to download are put in
  place with boto3 before the rounds; the local files are in the page cache, and `os.sync()`
  runs before every measurement.
- Clients, each in its own process: **edito://** is `EditoFileSystem(token_url=...,
  endpoint_url=..., username=..., password=...)`; **s3fs defaults** is `s3fs.S3FileSystem`
  with the same STS keys and the same MinIO client settings (path-style addressing, checksums
  only when required) and nothing else changed, i.e. edito:// without its transfer overrides;
  **rclone copy** is Debian's rclone with its defaults and an S3 remote (`provider = Minio`,
  region `{REGION}`, the same STS keys) given by `RCLONE_CONFIG_EDITO_*` variables, run with
  `AWS_CA_BUNDLE` unset and `RCLONE_S3_NO_HEAD=true` (moto).
- What edito:// does differently (`remotefs/edito/transfer.py`): a download is one GET
  streamed into a temporary name, renamed after a size check (s3fs: above 50 MiB, ranged
  GETs of 50 MiB held in memory); an upload is streamed from the file, as a multipart
  upload of 16 MiB parts above 32 MiB, each part read while it is sent, 10 at a time (s3fs:
  above 100 MiB, parts of 50 MiB read into memory, 10 at a time); `put`/`get` move 8 files
  at a time (s3fs: an eighth of the open-file limit).
- Many files: `fs.put(DIR + "/", "oidc-demo/PREFIX/", recursive=True)` and
  `fs.get("oidc-demo/src/small/", DIR + "/", recursive=True)` vs `rclone copy DIR
  edito:oidc-demo/PREFIX` and `rclone copy edito:oidc-demo/src/small DIR`. One file:
  `fs.put_file` / `fs.get_file` vs `rclone copy FILE edito:oidc-demo/PREFIX` and `rclone copy
  edito:oidc-demo/src/large/large.bin DIR`. Every run writes to a fresh prefix or directory;
  after it the objects or files are checked (names, SHA-256 of every one) and removed.
- Each round runs all cases of a scenario, in reverse order every other round. **op s** is the
  median over the rounds: the Python clients time the operation themselves after imports,
  login and S3 client set-up (`fs.connect()`); rclone cannot be timed inside, so its op s is
  its whole process, start-up included. **op s min-max** is the spread over the rounds,
  **process s** the median time of the whole process. **MB/s** is the size over op s (1 MB =
  10^6 bytes); **vs rclone** is op s over rclone's. **peak RSS** is the highest maximum
  resident set size of the client process over the rounds, imports included ({RSS_TOOL}).
  **client CPU s** is the client's user + system time, **emulator CPU s** that of the emulator
  and moto during the run (medians). The machine has {len(os.sched_getaffinity(0))} cores
  for client, front and moto together.

### Figures

{figures}

### Targets

| target | this run | |
| --- | --- | --- |
{checks}

### How to reproduce

`{command}` (needs the project installed with the `edito` and emulator extras, and `rclone`;
about 3x the large file plus the small files in temporary disk, removed at the end).
{END}
"""


# -- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line; ``--quick`` changes the defaults of sizes and rounds."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add_size_arguments(parser, DEFAULTS)
    return parse_run_arguments(parser, argv, QUICK, DEFAULTS)


def main(argv: list[str] | None = None) -> int:
    """Run both scenarios, print the figures and write the report."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["client"]:
        return client_main(argv[1:])
    args = parse_args(argv)
    if not Path(RCLONE).exists():
        raise SystemExit(f"rclone not found ({RCLONE}); on Debian: apt-get install rclone")
    when = utc_now()
    start, busy, own = time.monotonic(), busy_seconds(), own_seconds()
    with tempfile.TemporaryDirectory(prefix="edito-transfer-") as folder:
        work = Path(folder)
        with emulator(work / "emulator.log") as emu:
            session = Session(emu, work)
            print(f"{args.files} files of {args.file_kib} KiB in {work}")
            cases = small_files(args, session, work)
            print(f"one file of {size_label(args.size_mib)}")
            cases += large_file(args, session, work)
    elapsed = time.monotonic() - start
    others = max(busy_seconds() - busy - (own_seconds() - own), 0.0)
    background = (
        f"{others:.1f} CPU s used by other processes and kernel threads during the "
        f"{elapsed:.0f} s run ({others / elapsed:.0%} of one core)"
    )
    found = targets(cases, args)
    print()
    print_table(HEADER, table_rows(cases), found)
    print(f"\nbackground: {background}")
    if args.out is not None:
        write_section(args.out, SECTION, markdown(cases, found, args, when, background))
        print(f"\nwrote the EDITO section of {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
