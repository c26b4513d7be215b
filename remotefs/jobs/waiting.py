"""Waiting for a job: polling with growing pauses, a hard deadline, and a progress display.

Policy: the first poll is immediate; pauses start at ``initial`` seconds and grow by ``factor``
up to ``maximum`` (1 s to 30 s by default), never past the deadline. A few transient failures
in a row (connection errors, timeouts, retriable HTTP statuses, after remotefs.http's own
retries) are tolerated; one more raises. Tests shrink the pauses with their own policy.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from remotefs.errors import RemoteError
from remotefs.jobs.errors import JobTimeoutError

if TYPE_CHECKING:
    from remotefs.jobs.model import JobState

Progress = Callable[["JobState"], None]
ProgressOption = Progress | bool | None


@dataclass(frozen=True)
class PollPolicy:
    """How often to ask for a job's status, and how many transient failures to tolerate."""

    initial: float = 1.0
    factor: float = 1.5
    maximum: float = 30.0
    transient_errors: int = 5

    def pauses(self) -> Callable[[], float]:
        """A function returning the next pause each time it is called."""
        pause = self.initial

        def next_pause() -> float:
            nonlocal pause
            current, pause = pause, min(pause * self.factor, self.maximum)
            return current

        return next_pause


class TerminalProgress:
    """Shows a job's state on one terminal line, rewritten in place; a newline at the end."""

    def __init__(self, stream: IO[str] | None = None, width: int = 24) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.width = width

    def __call__(self, state: JobState) -> None:
        bar = ""
        if state.progress is not None:
            done = round(self.width * min(max(state.progress, 0.0), 100.0) / 100)
            bar = f" [{'#' * done}{'.' * (self.width - done)}] {state.progress:3.0f}%"
        message = f" {state.message}" if state.message else ""
        line = f"{state.job_id}: {state.word or state.status.value}{bar}{message}"
        end = "\n" if state.status.terminal else ""
        self.stream.write(f"\r\x1b[K{line[:200]}{end}")
        self.stream.flush()


def progress_callback(option: ProgressOption) -> Progress | None:
    """The display to use: a callable as given, True/False, or None for "on a terminal only"."""
    if callable(option):
        return option
    if option is None:
        isatty = getattr(sys.stderr, "isatty", None)
        option = bool(isatty and isatty())
    return TerminalProgress() if option else None


def transient(exc: BaseException) -> bool:
    """Whether a failed status request is worth asking again."""
    if isinstance(exc, RemoteError):
        return exc.retriable
    return isinstance(exc, (ConnectionError, TimeoutError))


def poll_until_done(
    refresh: Callable[[], JobState],
    *,
    job_id: str,
    timeout: float | None,
    policy: PollPolicy,
    on_change: Progress | None,
    on_timeout: Callable[[], object] | None = None,
) -> JobState:
    """Call ``refresh`` until the state is terminal; :class:`JobTimeoutError` after ``timeout``."""
    deadline = None if timeout is None else time.monotonic() + timeout
    next_pause = policy.pauses()
    failures = 0
    shown: tuple[object, ...] | None = None
    while True:
        try:
            state = refresh()
            failures = 0
        except Exception as exc:
            if not transient(exc) or failures >= policy.transient_errors:
                raise
            failures += 1
        else:
            key = (state.status, state.word, state.progress, state.message)
            if on_change is not None and key != shown:
                on_change(state)
            shown = key
            if state.status.terminal:
                return state
        pause = next_pause()
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                extra = ""
                if on_timeout is not None:
                    try:
                        on_timeout()
                        extra = "; it was cancelled"
                    except Exception as exc:
                        extra = f"; cancelling it failed: {exc}"
                raise JobTimeoutError(
                    f"the job did not finish within {timeout:g} s{extra}", path=job_id
                )
            pause = min(pause, left)
        time.sleep(pause)
