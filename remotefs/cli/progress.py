"""Progress of a transfer on a terminal: bytes, files, rate and time left on one line.

Policy: drawn on stderr only when stderr is a terminal (pipes and logs stay clean), redrawn
at most ten times a second, safe to update from many worker threads.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def format_size(size: float) -> str:
    """A byte count for people: ``12.3 MiB``."""
    unit = 0
    while abs(size) >= 1024 and unit < len(UNITS) - 1:
        size /= 1024
        unit += 1
    return f"{size:.0f} B" if unit == 0 else f"{size:.1f} {UNITS[unit]}"


def format_duration(seconds: float) -> str:
    """``1:02:03`` or ``2:03``."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """One status line; ``stream=None`` draws nothing."""

    def __init__(self, stream: TextIO | None, *, interval: float = 0.1) -> None:
        self.stream = stream
        self.interval = interval
        self.total_bytes = 0
        self.total_files = 0
        self.done_bytes = 0.0
        self.done_files = 0
        self.started = time.monotonic()
        self._drawn = 0.0
        self._width = 0
        self._lock = threading.Lock()

    @classmethod
    def on_terminal(cls, wanted: bool = True) -> Progress:
        """A progress line on stderr if ``wanted`` and stderr is a terminal."""
        stream = sys.stderr if wanted and sys.stderr.isatty() else None
        return cls(stream)

    def plan(self, files: int, size: int) -> None:
        """Add work to the totals."""
        with self._lock:
            self.total_files += files
            self.total_bytes += size
        self._draw()

    def advance(self, nbytes: float) -> None:
        """Count bytes moved (negative when a retry starts a file over)."""
        with self._lock:
            self.done_bytes += nbytes
        self._draw()

    def file_done(self) -> None:
        """Count one finished file."""
        with self._lock:
            self.done_files += 1
        self._draw(force=True)

    def finish(self, summary: str) -> None:
        """Replace the status line with a final summary."""
        if self.stream is None:
            return
        with self._lock:
            self._write(summary + "\n")

    def line(self) -> str:
        """The status line as it is now."""
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = self.done_bytes / elapsed
        left = self.total_bytes - self.done_bytes
        eta = format_duration(left / rate) if rate > 0 and left > 0 else "-"
        return (
            f"{format_size(self.done_bytes)} / {format_size(self.total_bytes)}  "
            f"{self.done_files}/{self.total_files} files  {format_size(rate)}/s  ETA {eta}"
        )

    def _draw(self, force: bool = False) -> None:
        if self.stream is None:
            return
        now = time.monotonic()
        with self._lock:
            if not force and now - self._drawn < self.interval:
                return
            self._drawn = now
            self._write(self.line())

    def _write(self, text: str) -> None:
        assert self.stream is not None
        body = text.rstrip("\n")
        pad = " " * max(self._width - len(body), 0)
        self.stream.write("\r" + body + pad + text[len(body) :])
        self.stream.flush()
        self._width = 0 if text.endswith("\n") else len(body)
