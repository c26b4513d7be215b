"""docs/performance.md is shared by every benchmark: each one owns a marked section of it.

Also what the benchmarks report alike: the machine, the figures and the targets met.
"""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def markers(name: str) -> tuple[str, str]:
    """The begin and end markers of the section ``name``."""
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def write_section(path: Path, name: str, section: str) -> None:
    """Put ``section`` (which starts and ends with its markers) in place of the old one.

    A file without the markers gets the section appended; nothing else in it changes.
    """
    begin, end = markers(name)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    start, stop = text.find(begin), text.find(end)
    if start >= 0 and stop > start:
        text = text[:start] + section.rstrip("\n") + text[stop + len(end) :]
    else:
        text += ("\n" if text and not text.endswith("\n") else "") + ("\n" if text else "")
        text += section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def utc_now() -> str:
    """The time of the run, as the sections show it."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


# -- the machine --------------------------------------------------------------------------------


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


def machine(packages: Sequence[str], tools: dict[str, str], temporary: str) -> dict[str, str]:
    """What the figures were measured on: CPU, OS, versions (``tools`` after the packages)."""
    return {
        "CPU": f"nproc {len(os.sched_getaffinity(0))}, {cpu_model()}",
        "OS": platform.platform(),
        "Python": platform.python_version(),
        **{name: metadata.version(name) for name in packages},
        **tools,
        "remotefs": revision(),
        "temporary files": temporary,
    }


def bullets(items: dict[str, str]) -> str:
    """A markdown list of ``- key: value`` lines."""
    return "\n".join(f"- {k}: {v}" for k, v in items.items())


# -- figures and targets ------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One goal of the issue and how this run did."""

    goal: str
    measured: str
    met: bool


def print_table(header: list[str], rows: list[list[str]], found: list[Target]) -> None:
    """The figures and targets, as plain text."""
    rows = [header, *rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    print()
    for t in found:
        print(f"{'met    ' if t.met else 'MISSED '} {t.goal}: {t.measured}")


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """The figures as a markdown table."""
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(r) + " |" for r in lines)


def markdown_checks(found: list[Target]) -> str:
    """The rows of the targets table (its header is the caller's)."""
    return "\n".join(
        f"| {t.goal} | {t.measured} | {'met' if t.met else '**not met**'} |" for t in found
    )


def size_label(mib: int) -> str:
    """``1 GiB`` or ``256 MiB``."""
    return f"{mib // 1024} GiB" if mib % 1024 == 0 else f"{mib} MiB"
