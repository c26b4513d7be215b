"""Benchmark agave:// transfers against the Agave emulator on loopback, side by side with curl.

Scenario 1, one large file (default 1 GiB): download to /dev/null and to a file, and upload;
remotefs vs curl on the same URLs. Scenario 2, many small files (default 500 x 64 KiB) behind
``--latency-ms``: remotefs ``get`` vs a sequential ``requests`` loop (the seed's way) vs
``curl --parallel``. Each scenario has its own ``remotefs-emulator agave`` process; each client
runs in its own process, started by GNU time (``%M``) to get its own peak RSS.
The figures of the run are printed and written to ``--out`` (default ``docs/performance.md``).

    python benchmarks/agave_transfer.py            # full run, writes docs/performance.md
    python benchmarks/agave_transfer.py --quick    # smoke run, prints only
"""

from __future__ import annotations

import argparse
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
    wait_idle,
    warm_free_memory,
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

CLIENTS = Path(__file__).resolve().with_name("_agave_clients.py")
SECTION = "agave-benchmark"
BEGIN, END = markers(SECTION)
CURL = shutil.which("curl") or "/usr/bin/curl"
USER, PASSWORD = "demo", "demo"
HOME = "cic.storage/demo"
QUICK = {"size_mib": 64, "files": 50, "rounds": 1}
DEFAULTS = {"size_mib": 1024, "files": 500, "rounds": 7}
RSS_LIMIT_MIB = 64


@dataclass
class Run(BaseRun):
    """One measured process; ``seconds`` is the operation, as the client timed it."""

    requests: dict[str, int]
    background: float = 0.0  # CPU seconds used meanwhile by anything but this benchmark


@dataclass
class Case(Rounds[Run]):
    """One client doing one operation, measured over several rounds."""

    key: str
    scenario: str
    client: str
    sink: str
    nbytes: int
    run: Callable[[], Run] = field(repr=False)
    runs: list[Run] = field(default_factory=list)

    @property
    def wall(self) -> float:
        """Median process time."""
        return self.median("wall")

    @property
    def background(self) -> float:
        """Most CPU seconds other jobs used during one of the rounds."""
        return max(r.background for r in self.runs)

    @property
    def requests(self) -> str:
        """Requests sent in the last round, by kind."""
        counts = self.runs[-1].requests
        return ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "?"


# -- processes ----------------------------------------------------------------------------------


def deadline(nbytes: int) -> float:
    """Seconds a client may take before it is killed (as if it moved only 20 MB/s)."""
    return 60 + nbytes / 20e6


@contextmanager
def emulator(data: Path, latency_ms: int, log: Path) -> Iterator[tuple[str, int]]:
    """Run the Agave emulator on ``data`` (demo's files in data/root/home/demo); yield URL, pid."""
    cmd = [
        "agave", "--port", "0", "--data", str(data), "--user", f"{USER}:{PASSWORD}",
        "--staging-delay", "0", "--latency-ms", str(latency_ms),
    ]  # fmt: skip
    with run_emulator(cmd, log, start_timeout=30, stop_timeout=10) as (info, pid):
        yield info["url"], pid


class Credentials:
    """A token for demo, in a private token file (Python clients) and a curl config."""

    def __init__(self, url: str, folder: Path) -> None:
        from remotefs.agave import AgaveAccount

        account = AgaveAccount(url)
        client = account.create_client(USER, PASSWORD, "agave-transfer-benchmark")
        token = account.get_token(client["consumerKey"], client["consumerSecret"], USER, PASSWORD)
        self.token_file = folder / "token"
        self.curl_config = folder / "auth.curlrc"
        write_private(self.token_file, token.access_token)
        write_private(self.curl_config, f'header = "Authorization: Bearer {token.access_token}"\n')


# -- clients ------------------------------------------------------------------------------------


def python_client(
    mode: str, url: str, creds: Credentials, remote: str, local: str, nbytes: int, *extra: str
) -> Callable[[], Run]:
    """A run of ``_agave_clients.py MODE`` that checks the byte count it reports."""
    cmd = [sys.executable, str(CLIENTS), mode, url, str(creds.token_file)]
    cmd += ["--remote", remote, "--local", local, *extra]

    def run() -> Run:
        out, wall, rss, _ = measure(cmd, deadline(nbytes))
        result = json.loads(out.strip().splitlines()[-1])
        if result["bytes"] != nbytes:
            raise RuntimeError(f"{mode} moved {result['bytes']} bytes, expected {nbytes}")
        return Run(result["seconds"], wall, rss, result["requests"])

    return run


def curl_client(
    options: list[str], creds: Credentials, nbytes: int, kind: str
) -> Callable[[], Run]:
    """A run of one curl transfer, timed by curl itself (``%{time_total}``)."""
    cmd = [CURL, "-sS", "--fail", "-K", str(creds.curl_config), *options]
    cmd += ["-w", "%{time_total} %{size_download} %{size_upload}"]

    def run() -> Run:
        out, wall, rss, _ = measure(cmd, deadline(nbytes))
        seconds, down, up = out.split()
        moved = int(up) if kind.startswith("POST") else int(down)
        if moved < nbytes:
            raise RuntimeError(f"curl moved {moved} bytes, expected {nbytes}")
        return Run(float(seconds), wall, rss, {kind: 1})

    return run


def curl_parallel(
    url: str, creds: Credentials, names: list[str], target: Path, nbytes: int, work: Path
) -> Callable[[], Run]:
    """A run of ``curl --parallel --parallel-max 50`` over a ``-K`` list of url/output pairs."""
    config = work / "many.curlrc"
    lines = [
        f'url = "{url}/files/v2/media/system/{HOME}/many/{n}"\noutput = "{target / n}"'
        for n in names
    ]
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cmd = [CURL, "-sS", "--fail", "--parallel", "--parallel-max", "50", "--create-dirs"]
    cmd += ["-K", str(creds.curl_config), "-K", str(config), "-w", "%{http_code}\n"]

    def run() -> Run:
        out, wall, rss, _ = measure(cmd, deadline(nbytes))
        ok = out.split().count("200")
        if ok != len(names):
            raise RuntimeError(f"curl --parallel got {ok} answers 200 of {len(names)}")
        return Run(wall, wall, rss, {"GET media": ok})

    return run


# -- scenarios ----------------------------------------------------------------------------------


def tree_size(folder: Path) -> tuple[int, int]:
    """Number of files below ``folder`` and their total size."""
    sizes = [p.stat().st_size for p in folder.rglob("*") if p.is_file()]
    return len(sizes), sum(sizes)


def run_rounds(
    cases: list[Case], args: argparse.Namespace, after: Callable[[Case], None], server: int
) -> None:
    """Run every case once per round, alternating the order; ``after`` cleans up each run."""
    rounds = args.rounds
    warm = args.warm_mib if args.warm_mib is not None else 3 * max(c.nbytes for c in cases) // MIB

    def used() -> float:
        """CPU seconds of this process, its finished children (clients) and the emulator."""
        return own_seconds() + process_cpu(server)

    for number, case in alternating(cases, rounds):
        print(f"  round {number + 1}/{rounds}: {case.scenario}, {case.client} -> {case.sink}")
        os.sync()  # start each run without the previous one's dirty pages being written back
        wait_idle()  # and, on a shared machine, once other jobs leave the CPUs alone
        warm_free_memory(warm)  # and on page frames the hypervisor backs (see its docstring)
        busy, own = busy_seconds(), used()
        run = case.run()
        run.background = max(busy_seconds() - busy - (used() - own), 0.0)
        case.runs.append(run)
        after(case)


def wait_placed(path: Path, size: int, staging: Path, timeout: float) -> None:
    """Wait until an upload is in place with ``size`` bytes and nothing is left in staging."""
    limit = time.monotonic() + timeout
    while not (path.exists() and path.stat().st_size == size and not any(staging.iterdir())):
        if time.monotonic() > limit:
            raise RuntimeError(f"upload of {path.name} was not staged in {timeout:.0f}s")
        time.sleep(0.05)


def large_file(args: argparse.Namespace, work: Path) -> list[Case]:
    """Download (to /dev/null, to a file) and upload of one large file: remotefs vs curl."""
    data = work / "large"
    home = data / "root" / "home" / USER
    home.mkdir(parents=True)
    size = args.size_mib * MIB
    source, placed, local = home / "large.bin", home / "upload.bin", work / "download.bin"
    write_data(source, size)
    label = size_label(args.size_mib)
    with emulator(data, 0, work / "emulator-large.log") as (url, server):
        creds = Credentials(url, work)
        media = f"{url}/files/v2/media/system/{HOME}"

        def py(mode: str, remote: str, target: str) -> Callable[[], Run]:
            return python_client(mode, url, creds, remote, target, size)

        cases = [
            Case("null-remotefs", f"{label} download", "remotefs", "/dev/null", size,
                 py("remotefs-stream", f"{HOME}/large.bin", os.devnull)),
            Case("null-curl", f"{label} download", "curl", "/dev/null", size,
                 curl_client(["-o", os.devnull, f"{media}/large.bin"], creds, size, "GET media")),
            Case("file-remotefs", f"{label} download", "remotefs", "file", size,
                 py("remotefs-get-file", f"{HOME}/large.bin", str(local))),
            Case("file-curl", f"{label} download", "curl", "file", size,
                 curl_client(["-o", str(local), f"{media}/large.bin"], creds, size, "GET media")),
            Case("upload-remotefs", f"{label} upload", "remotefs", "staged", size,
                 py("remotefs-put-file", f"{HOME}/upload.bin", str(source))),
            Case("upload-curl", f"{label} upload", "curl", "queued", size,
                 curl_client(["-o", os.devnull, "-F", f"fileToUpload=@{source}",
                              "-F", "fileName=upload.bin", media], creds, size, "POST media")),
        ]  # fmt: skip

        def after(case: Case) -> None:
            if case.sink == "file":
                local.unlink()
            if case.key.startswith("upload"):
                wait_placed(placed, size, data / ".staging", deadline(size))
                placed.unlink()

        run_rounds(cases, args, after, server)
    return cases


def many_files(args: argparse.Namespace, work: Path) -> list[Case]:
    """Many small files behind latency: remotefs get vs a sequential loop vs curl --parallel."""
    data = work / "many-data"
    folder = data / "root" / "home" / USER / "many"
    folder.mkdir(parents=True)
    names = [f"f{i:05d}.bin" for i in range(args.files)]
    for name in names:
        (folder / name).write_bytes(os.urandom(args.file_kib * 1024))
    (work / "names.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    nbytes = args.files * args.file_kib * 1024
    target = work / "many-out"
    label = f"{args.files} x {args.file_kib} KiB, {args.latency_ms} ms latency"
    with emulator(data, args.latency_ms, work / "emulator-many.log") as (url, server):
        creds = Credentials(url, work)
        remote, local = f"{HOME}/many", str(target)
        cases = [
            Case("many-remotefs", label, "remotefs get", "files", nbytes,
                 python_client("remotefs-get-tree", url, creds, remote, local, nbytes)),
            Case("many-loop", label, "sequential requests loop", "files", nbytes,
                 python_client("requests-loop", url, creds, remote, local, nbytes,
                               "--names", str(work / "names.txt"))),
            Case("many-curl", label, "curl --parallel-max 50", "files", nbytes,
                 curl_parallel(url, creds, names, target, nbytes, work)),
        ]  # fmt: skip

        def after(case: Case) -> None:
            found = tree_size(target)
            shutil.rmtree(target)
            if found != (args.files, nbytes):
                raise RuntimeError(f"{case.client} left {found[0]} files, {found[1]} bytes")

        run_rounds(cases, args, after, server)
    return cases


# -- report -------------------------------------------------------------------------------------


def targets(cases: list[Case], args: argparse.Namespace) -> list[Target]:
    """The issue's targets, checked against this run."""
    case = {c.key: c for c in cases}
    found: list[Target] = []
    for key, what in (
        ("null", "download to /dev/null"),
        ("file", "download to a file"),
        ("upload", "upload"),
    ):
        ours, curl = case[f"{key}-remotefs"], case[f"{key}-curl"]
        ratio = ours.mb_s / curl.mb_s
        found.append(Target(
            f"{what}: >= 90% of curl's throughput",
            f"{ours.mb_s:.0f} vs {curl.mb_s:.0f} MB/s = {ratio:.0%}", ratio >= 0.9,
        ))  # fmt: skip
    for keys, what in ((("null", "file"), "download"), (("upload",), "upload")):
        peak = max(case[f"{key}-remotefs"].rss_mib for key in keys)
        found.append(Target(
            f"{size_label(args.size_mib)} {what}: remotefs peak RSS < {RSS_LIMIT_MIB} MiB",
            f"{peak:.1f} MiB", peak < RSS_LIMIT_MIB,
        ))  # fmt: skip
    ours, loop, curl = case["many-remotefs"], case["many-loop"], case["many-curl"]
    found.append(Target(
        f"{args.files} files: <= 1.5x the time of curl --parallel",
        f"{ours.seconds:.2f} vs {curl.seconds:.2f} s = {ours.seconds / curl.seconds:.2f}x",
        ours.seconds <= 1.5 * curl.seconds,
    ))  # fmt: skip
    found.append(Target(
        f"{args.files} files: >= 12x faster than the sequential loop",
        f"{loop.seconds:.2f} vs {ours.seconds:.2f} s = {loop.seconds / ours.seconds:.1f}x",
        loop.seconds >= 12 * ours.seconds,
    ))  # fmt: skip
    return found


def filesystem_of(path: Path) -> str:
    """Type of the file system holding ``path`` (from /proc/mounts)."""
    mounts = Path("/proc/mounts")
    best, kind = "", "unknown"
    for line in mounts.read_text().splitlines() if mounts.exists() else []:
        _, point, fstype = line.split()[:3]
        inside = str(path) == point or str(path).startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fstype
    return f"{path} on {kind}"


def machine_info() -> dict[str, str]:
    """What the figures were measured on."""
    return machine(
        ("aiohttp", "fsspec", "requests"),
        {"curl": " ".join(first_line([CURL, "--version"]).split()[:2]) or "not found"},
        filesystem_of(Path(tempfile.gettempdir()).resolve()),
    )


def table_rows(cases: list[Case]) -> list[list[str]]:
    """One row of figures per case."""
    return [
        [
            c.scenario,
            c.client,
            c.sink,
            f"{c.seconds:.3f}",
            c.spread,
            f"{c.wall:.3f}",
            f"{c.mb_s:.0f}",
            f"{c.rss_mib:.1f}",
            f"{c.background:.1f}",
            c.requests,
        ]
        for c in cases
    ]


HEADER = [
    "scenario", "client", "sink", "op s", "op s min-max", "process s", "MB/s", "peak RSS MiB",
    "others' CPU s", "requests",
]  # fmt: skip


def markdown(cases: list[Case], found: list[Target], args: argparse.Namespace, when: str) -> str:
    """docs/performance.md for this run."""
    figures = markdown_table(HEADER, table_rows(cases))
    checks = markdown_checks(found)
    box = bullets(machine_info())
    command = f"python benchmarks/agave_transfer.py {' '.join(args.argv)}".rstrip()
    return f"""{BEGIN}
## agave:// transfers

Generated by `benchmarks/agave_transfer.py` on {when} from one run ({args.rounds} round(s)
per figure); do not edit the figures by hand, run the script again.

### Machine

{box}

### Method

- Server: `remotefs-emulator agave` (aiohttp, downloads with sendfile) on 127.0.0.1, one
  process per scenario, `--staging-delay 0`. Its data, the downloads and the uploads live in
  the temporary directory named above; the files to read are in the page cache, and
  `os.sync()` runs before every measurement so none pays for an earlier one's writeback;
  each measurement then waits (up to 60 s) for the CPUs to be idle, and right before it the
  harness touches and frees memory (3x the scenario's bytes, `--warm-mib`): on this VM, page
  frames freed for a while are handed back to the hypervisor, and first touching them again
  added up to 1.5 s, at random, to either client's 1 GiB write. **others' CPU s** is the
  most CPU time that anything else (other jobs on a shared machine, kernel threads) used
  during one round of that figure: well above 0, the figure was measured on a busy machine.
- Every client runs in its own process; each round runs all cases of a scenario, in reverse
  order every other round. **op s** is the median over the rounds of the operation alone:
  remotefs and the `requests` loop time it themselves, with their HTTP library already
  imported (remotefs otherwise imports aiohttp on its first request, about 0.1 s, which only
  **process s** shows); a single curl transfer reports its `time_total`; for `curl --parallel`
  it is the process time. **op s min-max** shows the spread over the rounds. **process s** is
  the median time of the whole process, start-up and imports included. **MB/s** is the size
  over op s, 1 MB = 10^6 bytes. **peak RSS** is the highest maximum resident set size of the
  client process over the rounds, imports included ({RSS_TOOL}).
- Download to /dev/null: remotefs streams with `fs.client.download(path, sink)` into a sink
  that drops the chunks, curl writes to `-o /dev/null`. To a file: `fs.get_file` (one listing
  request for the size, then the download to a temporary name, size check, rename; from 8 MiB
  one GET read by a worker thread into one 64 KiB buffer, `remotefs.bulk`) vs
  `curl -o FILE`. curl reads its `Authorization` header from a `-K` config file.
- Upload: `fs.put_file` (from 8 MiB a worker thread sends the multipart body from one buffer)
  returns once the service has staged the file and its size matches
  (it polls the file's history and listing); curl sends the same multipart POST
  (`fileToUpload`, `fileName`) and returns on the 202 reply, before staging.
- Many files: remotefs `fs.get("{HOME}/many/", DIR + "/", recursive=True)` with a fresh
  filesystem (it lists the folder itself); the sequential loop is one `requests.get` per file
  (new connection each time, `iter_content(1024)` writes), the seed's way; curl gets the
  url/output pairs in a `-K` config with `--parallel --parallel-max 50`. The loop and curl are
  given the file names, remotefs finds them by listing. Requests are counted by the clients.

### Figures

{figures}

### Targets

| target | this run | |
| --- | --- | --- |
{checks}

### How to reproduce

`{command}` (needs the project installed, `remotefs-emulator` and curl; up to 4x the
large file in temporary disk, removed at the end).
{END}
"""


# -- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line; ``--quick`` changes the defaults of sizes and rounds."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_size_arguments(parser, DEFAULTS)
    parser.add_argument("--latency-ms", type=int, default=20, help="emulator latency, many files")
    parser.add_argument(
        "--warm-mib", type=int,
        help="memory touched and freed before each run (default 3x the scenario's bytes; 0: none)",
    )  # fmt: skip
    return parse_run_arguments(parser, argv, QUICK, DEFAULTS)


def main(argv: list[str] | None = None) -> int:
    """Run both scenarios, print the figures and write the report."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    when = utc_now()
    with tempfile.TemporaryDirectory(prefix="agave-transfer-") as folder:
        work = Path(folder)
        print(f"large file ({size_label(args.size_mib)}) in {work}")
        cases = large_file(args, work / "1")
        print(f"{args.files} files of {args.file_kib} KiB")
        cases += many_files(args, work / "2")
    found = targets(cases, args)
    print()
    print_table(HEADER, table_rows(cases), found)
    if args.out is not None:
        write_section(args.out, SECTION, markdown(cases, found, args, when))
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
