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
import platform
import resource
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from _report import markers, write_section

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = Path(__file__).resolve().with_name("_agave_clients.py")
SECTION = "agave-benchmark"
BEGIN, END = markers(SECTION)
CURL = shutil.which("curl") or "/usr/bin/curl"
USER, PASSWORD = "demo", "demo"
HOME = "cic.storage/demo"
MB = 1e6
MIB = 1 << 20
QUICK = {"size_mib": 64, "files": 50, "rounds": 1}
DEFAULTS = {"size_mib": 1024, "files": 500, "rounds": 3}
RSS_LIMIT_MIB = 64


@dataclass
class Run:
    """One measured process."""

    seconds: float  # the operation, as the client timed it (start-up and imports excluded)
    wall: float  # the whole process, start-up included
    rss_mib: float
    requests: dict[str, int]
    background: float = 0.0  # CPU seconds used meanwhile by anything but this benchmark


@dataclass
class Case:
    """One client doing one operation, measured over several rounds."""

    key: str
    scenario: str
    client: str
    sink: str
    nbytes: int
    run: Callable[[], Run] = field(repr=False)
    runs: list[Run] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        """Median operation time."""
        return statistics.median(r.seconds for r in self.runs)

    @property
    def spread(self) -> str:
        """Fastest and slowest operation time over the rounds."""
        times = [r.seconds for r in self.runs]
        return f"{min(times):.3f}-{max(times):.3f}"

    @property
    def wall(self) -> float:
        """Median process time."""
        return statistics.median(r.wall for r in self.runs)

    @property
    def rss_mib(self) -> float:
        """Highest peak RSS over the rounds."""
        return max(r.rss_mib for r in self.runs)

    @property
    def background(self) -> float:
        """Most CPU seconds other jobs used during one of the rounds."""
        return max(r.background for r in self.runs)

    @property
    def mb_s(self) -> float:
        """Throughput of the median operation time, in MB/s (1 MB = 10^6 bytes)."""
        return self.nbytes / self.seconds / MB

    @property
    def requests(self) -> str:
        """Requests sent in the last round, by kind."""
        counts = self.runs[-1].requests
        return ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "?"


@dataclass(frozen=True)
class Target:
    """One goal of the issue and how this run did."""

    goal: str
    measured: str
    met: bool


# -- processes ----------------------------------------------------------------------------------


# A child's ru_maxrss starts at its parent's RSS (Linux keeps the high-water mark across exec), so
# a small process must start the client: GNU time, else this wrapper (its ~8 MiB become a floor).
WRAPPER = """import os, sys
pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def gnu_time() -> str | None:
    """``/usr/bin/time`` when it is GNU time (it understands ``-f %M -o FILE``)."""
    path = shutil.which("time") or "/usr/bin/time"
    try:
        done = subprocess.run([path, "-f", "%M", "-o", os.devnull, "true"], capture_output=True)
    except OSError:
        return None
    return path if done.returncode == 0 else None


TIME = gnu_time()


def measure(cmd: list[str], timeout: float) -> tuple[str, float, float]:
    """Run ``cmd``; return its stdout, wall seconds and peak RSS in MiB."""
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile("r") as rss,
    ):
        if TIME is not None:
            wrapped = [TIME, "-f", "%M", "-o", rss.name, *cmd]
        else:
            wrapped = [sys.executable, "-I", "-S", "-c", WRAPPER, rss.name, *cmd]
        start = time.perf_counter()
        proc = subprocess.Popen(wrapped, stdout=out, stderr=err, start_new_session=True)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            tail = err.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"{' '.join(cmd[:3])} exited {proc.returncode}: {tail}")
        unit = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
        return out.read().decode(), wall, int(rss.read().split()[-1]) * unit / MIB


def busy_seconds() -> float:
    """CPU seconds the whole machine has been busy since boot (0 without /proc/stat)."""
    stat = Path("/proc/stat")
    if not stat.exists():
        return 0.0
    user, nice, system, _, _, irq, softirq = map(int, stat.read_text().split()[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def own_seconds(server: int) -> float:
    """CPU seconds of this process, its finished children (clients) and the emulator ``server``."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    stat = Path(f"/proc/{server}/stat")
    fields = stat.read_text().rsplit(")", 1)[1].split() if stat.exists() else ["0"] * 13
    emulator = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime + emulator


def wait_idle(limit: float = 60.0, window: float = 0.5, share: float = 0.15) -> None:
    """Wait (at most ``limit`` seconds) until the machine is busy less than ``share`` of a core."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        before = busy_seconds()
        time.sleep(window)
        if busy_seconds() - before < share * window:
            return


def deadline(nbytes: int) -> float:
    """Seconds a client may take before it is killed (as if it moved only 20 MB/s)."""
    return 60 + nbytes / 20e6


def emulator_command() -> list[str]:
    """The ``remotefs-emulator`` of this interpreter's environment."""
    script = Path(sys.executable).with_name("remotefs-emulator")
    return [
        str(script) if script.exists() else shutil.which("remotefs-emulator") or "remotefs-emulator"
    ]


@contextmanager
def emulator(data: Path, latency_ms: int, log: Path) -> Iterator[tuple[str, int]]:
    """Run the Agave emulator on ``data`` (demo's files in data/root/home/demo); yield URL, pid."""
    cmd = emulator_command() + [
        "agave", "--port", "0", "--data", str(data), "--user", f"{USER}:{PASSWORD}",
        "--staging-delay", "0", "--latency-ms", str(latency_ms),
    ]  # fmt: skip
    with open(log, "wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        line = proc.stdout.readline() if ready else b""
        if not line:
            raise RuntimeError(f"the emulator did not start; see {log.read_text()[-2000:]}")
        yield json.loads(line)["url"], proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to a file only the owner can read."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(text)


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
        out, wall, rss = measure(cmd, deadline(nbytes))
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
        out, wall, rss = measure(cmd, deadline(nbytes))
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
        out, wall, rss = measure(cmd, deadline(nbytes))
        ok = out.split().count("200")
        if ok != len(names):
            raise RuntimeError(f"curl --parallel got {ok} answers 200 of {len(names)}")
        return Run(wall, wall, rss, {"GET media": ok})

    return run


# -- scenarios ----------------------------------------------------------------------------------


def write_data(path: Path, size: int) -> None:
    """A file of ``size`` incompressible bytes (one random MiB, repeated)."""
    block = os.urandom(min(size, MIB))
    with open(path, "wb") as out:
        for offset in range(0, size, len(block)):
            out.write(block[: size - offset])


def tree_size(folder: Path) -> tuple[int, int]:
    """Number of files below ``folder`` and their total size."""
    sizes = [p.stat().st_size for p in folder.rglob("*") if p.is_file()]
    return len(sizes), sum(sizes)


def run_rounds(cases: list[Case], rounds: int, after: Callable[[Case], None], server: int) -> None:
    """Run every case once per round, alternating the order; ``after`` cleans up each run."""
    for number in range(rounds):
        for case in cases if number % 2 == 0 else cases[::-1]:
            print(f"  round {number + 1}/{rounds}: {case.scenario}, {case.client} -> {case.sink}")
            os.sync()  # start each run without the previous one's dirty pages being written back
            wait_idle()  # and, on a shared machine, once other jobs leave the CPUs alone
            busy, own = busy_seconds(), own_seconds(server)
            run = case.run()
            run.background = max(busy_seconds() - busy - (own_seconds(server) - own), 0.0)
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

        run_rounds(cases, args.rounds, after, server)
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

        run_rounds(cases, args.rounds, after, server)
    return cases


# -- report -------------------------------------------------------------------------------------


def size_label(mib: int) -> str:
    """``1 GiB`` or ``64 MiB``."""
    return f"{mib // 1024} GiB" if mib % 1024 == 0 else f"{mib} MiB"


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


def first_line(cmd: list[str]) -> str:
    """First line of a command's output; empty when it cannot run."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except OSError:
        return ""
    return done.stdout.split("\n")[0].strip()


def revision() -> str:
    """The git commit of the library measured, marked when the work tree has changes."""
    git = ["git", "-C", str(ROOT)]
    commit = first_line([*git, "rev-parse", "--short", "HEAD"]) or "unknown"
    dirty = first_line([*git, "status", "--porcelain", "--", "remotefs"])
    return f"git {commit}" + (" with uncommitted changes in remotefs/" if dirty else "")


def cpu_model() -> str:
    """The processor's model name."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.processor() or "unknown"


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


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    return {
        "CPU": f"nproc {len(os.sched_getaffinity(0))}, {cpu_model()}",
        "OS": platform.platform(),
        "Python": platform.python_version(),
        **{name: metadata.version(name) for name in ("aiohttp", "fsspec", "requests")},
        "curl": " ".join(first_line([CURL, "--version"]).split()[:2]) or "not found",
        "remotefs": revision(),
        "temporary files": filesystem_of(Path(tempfile.gettempdir()).resolve()),
    }


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


def print_table(cases: list[Case], found: list[Target]) -> None:
    """The figures and targets, as plain text."""
    rows = [HEADER, *table_rows(cases)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    print()
    for t in found:
        print(f"{'met    ' if t.met else 'MISSED '} {t.goal}: {t.measured}")


def markdown(cases: list[Case], found: list[Target], args: argparse.Namespace, when: str) -> str:
    """docs/performance.md for this run."""
    rows = [HEADER, ["---"] * len(HEADER), *table_rows(cases)]
    figures = "\n".join("| " + " | ".join(r) + " |" for r in rows)
    checks = "\n".join(
        f"| {t.goal} | {t.measured} | {'met' if t.met else '**not met**'} |" for t in found
    )
    box = "\n".join(f"- {k}: {v}" for k, v in machine().items())
    rss_tool = "GNU time `%M`" if TIME else "`wait4` in a Python wrapper: at least its ~8 MiB"
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
  each measurement then waits (up to 60 s) for the CPUs to be idle. **others' CPU s** is the
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
  client process over the rounds, imports included ({rss_tool}).
- Download to /dev/null: remotefs streams with `fs.client.download(path, sink)` into a sink
  that drops the chunks, curl writes to `-o /dev/null`. To a file: `fs.get_file` (one listing
  request for the size, then the download to a temporary name, size check, rename) vs
  `curl -o FILE`. curl reads its `Authorization` header from a `-K` config file.
- Upload: `fs.put_file` returns once the service has staged the file and its size matches
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


def positive(text: str) -> int:
    """An integer above zero."""
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not above zero")
    return value


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line; ``--quick`` changes the defaults of sizes and rounds."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=positive, help="size of the large file (default 1024)")
    parser.add_argument("--files", type=positive, help="number of small files (default 500)")
    parser.add_argument("--file-kib", type=positive, default=64, help="size of each small file")
    parser.add_argument("--latency-ms", type=int, default=20, help="emulator latency, many files")
    parser.add_argument("--rounds", type=positive, help="rounds per measurement (default 3)")
    parser.add_argument(
        "--out", type=Path, help="markdown report (default docs/performance.md; none with --quick)"
    )
    parser.add_argument("--quick", action="store_true", help="64 MiB, 50 files, 1 round")
    args = parser.parse_args(argv)
    for key, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.out is None and not args.quick:
        args.out = ROOT / "docs" / "performance.md"
    args.argv = argv
    return args


def main(argv: list[str] | None = None) -> int:
    """Run both scenarios, print the figures and write the report."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    with tempfile.TemporaryDirectory(prefix="agave-transfer-") as folder:
        work = Path(folder)
        print(f"large file ({size_label(args.size_mib)}) in {work}")
        cases = large_file(args, work / "1")
        print(f"{args.files} files of {args.file_kib} KiB")
        cases += many_files(args, work / "2")
    found = targets(cases, args)
    print()
    print_table(cases, found)
    if args.out is not None:
        write_section(args.out, SECTION, markdown(cases, found, args, when))
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
