"""The Job API's vocabulary: statuses, observed states, processes, outputs, submissions.

Plain frozen dataclasses, shared by the core, the backends and the command line; each backend
fills them from its service's documents and keeps the original words and documents beside.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class JobStatus(str, enum.Enum):
    """Where a job is in its life; backends map their service's words to these."""

    ACCEPTED = "accepted"
    RUNNING = "running"
    SUCCESSFUL = "successful"
    FAILED = "failed"
    DISMISSED = "dismissed"
    UNKNOWN = "unknown"

    @classmethod
    def parse(cls, value: str) -> JobStatus:
        """The status named ``value``, or UNKNOWN."""
        try:
            return cls(value)
        except ValueError:
            return cls.UNKNOWN

    @property
    def terminal(self) -> bool:
        """True once the job will not change any more."""
        return self in (JobStatus.SUCCESSFUL, JobStatus.FAILED, JobStatus.DISMISSED)


@dataclass(frozen=True)
class JobState:
    """One observation of a job: status, the service's own word, message and progress."""

    job_id: str
    status: JobStatus
    word: str = ""
    message: str | None = None
    progress: float | None = None
    process_id: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class ProcessInfo:
    """A process a service offers; ``schema`` is the JSON Schema of its inputs, if declared."""

    id: str
    title: str | None = None
    description: str | None = None
    version: str | None = None
    inputs: Mapping[str, Any] = field(default_factory=dict, repr=False)
    outputs: Mapping[str, Any] = field(default_factory=dict, repr=False)
    schema: Mapping[str, Any] | None = field(default=None, repr=False)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Output:
    """One output of a job: its file name under a download, and its URL or inline value."""

    name: str
    url: str | None = None
    value: Any = field(default=None, repr=False)
    media_type: str | None = None


@dataclass(frozen=True)
class Submission:
    """What a service answered to an execution request."""

    job_id: str
    state: JobState | None = None
    results: Mapping[str, Any] | None = None


def now_iso() -> str:
    """The current UTC time, RFC 3339."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
