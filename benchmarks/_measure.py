"""What the transfer benchmarks do alike: run clients in their own processes and time them."""

from __future__ import annotations

import argparse
import json
import os
import resource
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from _report import ROOT

MB = 1e6
MIB = 1 << 20
PAGE = 4096


@dataclass
class Run:
    """One measured process."""

    seconds: float  # the operation, as the benchmark defines it
    wall: float  # the whole process, start-up included
    rss_mib: float


R = TypeVar("R", bound=Run)
T = TypeVar("T")


class Rounds(Generic[R]):
    """Figures over the rounds of one case (mixed into each benchmark's ``Case`` dataclass)."""

    nbytes: int
    runs: list[R]

    def median(self, name: str) -> float:
        """Median of one figure over the rounds."""
        return float(statistics.median(getattr(r, name) for r in self.runs))

    @property
    def seconds(self) -> float:
        """Median operation time."""
        return self.median("seconds")

    @property
    def spread(self) -> str:
        """Fastest and slowest operation time over the rounds."""
        times = [r.seconds for r in self.runs]
        return f"{min(times):.3f}-{max(times):.3f}"

    @property
    def rss_mib(self) -> float:
        """Highest peak RSS over the rounds."""
        return max(r.rss_mib for r in self.runs)

    @property
    def mb_s(self) -> float:
        """Throughput of the median operation time, in MB/s (1 MB = 10^6 bytes)."""
        return self.nbytes / self.seconds / MB


def alternating(cases: Sequence[T], rounds: int) -> Iterator[tuple[int, T]]:
    """(round number, case) for every case in every round, in reverse order every other round."""
    for number in range(rounds):
        for case in cases if number % 2 == 0 else cases[::-1]:
            yield number, case


# -- processes ----------------------------------------------------------------------------------


# A child's ru_maxrss starts at its parent's RSS (Linux keeps the high-water mark across exec), so
# a small process must start the client: GNU time, else this wrapper (its ~8 MiB become a floor).
WRAPPER = """import os, sys
pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(f"{usage.ru_maxrss} {usage.ru_utime} {usage.ru_stime}")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def gnu_time() -> str | None:
    """``/usr/bin/time`` when it is GNU time (it understands ``-f FORMAT -o FILE``)."""
    path = shutil.which("time") or "/usr/bin/time"
    try:
        done = subprocess.run([path, "-f", "%M", "-o", os.devnull, "true"], capture_output=True)
    except OSError:
        return None
    return path if done.returncode == 0 else None


TIME = gnu_time()
RSS_TOOL = "GNU time `%M`" if TIME else "`wait4` in a Python wrapper: at least its ~8 MiB"


def measure(
    cmd: list[str], timeout: float, env: dict[str, str] | None = None, shown: int = 3
) -> tuple[str, float, float, float]:
    """Run ``cmd``; return its stdout, wall seconds, peak RSS in MiB and CPU seconds.

    A failure names the command by its first ``shown`` words.
    """
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile("r") as usage,
    ):
        if TIME is not None:
            wrapped = [TIME, "-f", "%M %U %S", "-o", usage.name, *cmd]
        else:
            wrapped = [sys.executable, "-I", "-S", "-c", WRAPPER, usage.name, *cmd]
        start = time.perf_counter()
        proc = subprocess.Popen(wrapped, stdout=out, stderr=err, env=env, start_new_session=True)
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
            raise RuntimeError(f"{' '.join(cmd[:shown])} exited {proc.returncode}: {tail}")
        rss, user, system = usage.read().splitlines()[-1].split()
        unit = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
        return out.read().decode(), wall, int(rss) * unit / MIB, float(user) + float(system)


def process_cpu(pid: int) -> float:
    """CPU seconds a live process has used (0 without /proc)."""
    stat = Path(f"/proc/{pid}/stat")
    if not stat.exists():
        return 0.0
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def busy_seconds() -> float:
    """CPU seconds the whole machine has been busy since boot (0 without /proc/stat)."""
    stat = Path("/proc/stat")
    if not stat.exists():
        return 0.0
    user, nice, system, _, _, irq, softirq = map(int, stat.read_text().split()[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def own_seconds() -> float:
    """CPU seconds of this process and its finished children."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def wait_idle(limit: float = 60.0, window: float = 0.5, share: float = 0.15) -> None:
    """Wait (at most ``limit`` seconds) until the machine is busy less than ``share`` of a core."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        before = busy_seconds()
        time.sleep(window)
        if busy_seconds() - before < share * window:
            return


def available_mib() -> int:
    """MemAvailable in MiB (0 without /proc/meminfo)."""
    meminfo = Path("/proc/meminfo")
    if not meminfo.exists():
        return 0
    for line in meminfo.read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) // 1024
    return 0


def warm_free_memory(mib: int) -> None:
    """Touch ``mib`` MiB of memory and free it again, just before a measurement.

    On a VM whose balloon driver reports free pages to the hypervisor, the host drops those
    pages, and the guest's next first touch of each costs a fault in the hypervisor. A run
    writing 1 GiB into the page cache then takes up to 1.5 s more, at random, whichever the
    client. Freshly freed pages are reported only after about two seconds, so a run started
    right after this finds page frames the host still backs. Elsewhere it costs a moment.
    """
    size = min(mib, available_mib() // 2) * MIB
    if size <= 0:
        return
    block = bytearray(size)
    block[::PAGE] = b"\x01" * len(range(0, size, PAGE))
    del block


# -- the emulator -------------------------------------------------------------------------------


def console_script(name: str) -> str | None:
    """The console script ``name`` beside this Python, else on the PATH, else None."""
    script = Path(sys.executable).with_name(name)
    return str(script) if script.exists() else shutil.which(name)


@contextmanager
def emulator(
    args: list[str], log: Path, start_timeout: float, stop_timeout: float
) -> Iterator[tuple[dict[str, Any], int]]:
    """Run ``remotefs-emulator ARGS`` (stderr to ``log``); yield its JSON line and its pid."""
    cmd = [console_script("remotefs-emulator") or "remotefs-emulator", *args]
    with open(log, "wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], start_timeout)
        line = proc.stdout.readline() if ready else b""
        if not line:
            raise RuntimeError(f"the emulator did not start; see {log.read_text()[-2000:]}")
        yield json.loads(line), proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(stop_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


# -- files --------------------------------------------------------------------------------------


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to a file only the owner can read."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(text)


def write_data(path: Path, size: int) -> None:
    """A file of ``size`` incompressible bytes (one random MiB, repeated)."""
    block = os.urandom(min(size, MIB))
    with open(path, "wb") as out:
        for offset in range(0, size, len(block)):
            out.write(block[: size - offset])


# -- command line -------------------------------------------------------------------------------


def positive(text: str) -> int:
    """An integer above zero."""
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not above zero")
    return value


def add_size_arguments(parser: argparse.ArgumentParser, defaults: dict[str, int]) -> None:
    """``--size-mib``, ``--files`` and ``--file-kib``."""
    parser.add_argument(
        "--size-mib", type=positive,
        help=f"size of the large file (default {defaults['size_mib']})",
    )  # fmt: skip
    parser.add_argument(
        "--files", type=positive, help=f"number of small files (default {defaults['files']})"
    )
    parser.add_argument("--file-kib", type=positive, default=64, help="size of each small file")


def parse_run_arguments(
    parser: argparse.ArgumentParser,
    argv: list[str],
    quick: dict[str, int],
    defaults: dict[str, int],
) -> argparse.Namespace:
    """Add ``--rounds``, ``--out`` and ``--quick`` and parse; ``--quick`` changes the defaults."""
    parser.add_argument(
        "--rounds", type=positive, help=f"rounds per measurement (default {defaults['rounds']})"
    )
    parser.add_argument(
        "--out", type=Path, help="markdown report (default docs/performance.md; none with --quick)"
    )
    parser.add_argument(
        "--quick", action="store_true",
        help=f"{quick['size_mib']} MiB, {quick['files']} files, {quick['rounds']} round",
    )  # fmt: skip
    args = parser.parse_args(argv)
    for key, value in (quick if args.quick else defaults).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.out is None and not args.quick:
        args.out = ROOT / "docs" / "performance.md"
    args.argv = argv
    return args
