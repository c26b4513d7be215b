"""Local job records: one small JSON file per submitted job, so another process can find it.

A record holds what is needed to reach the job again and nothing secret: the service kind, its
URLs, the process, the job id, when it was submitted and the last status seen. Files live in
``$REMOTEFS_DATA_DIR/jobs``, else ``$XDG_DATA_HOME/remotefs/jobs`` (``~/.local/share/...``),
named ``<service>-<job id>.json``, and are replaced atomically.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote


def data_dir() -> Path:
    """The user's remotefs data directory."""
    explicit = os.environ.get("REMOTEFS_DATA_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return Path(base) / "remotefs"


@dataclass
class JobRecord:
    """What is remembered about one job (no credentials)."""

    service: str
    job_id: str
    process_id: str | None = None
    urls: dict[str, str] = field(default_factory=dict)
    submitted: str | None = None
    status: str = "unknown"
    word: str = ""
    message: str | None = None
    updated: str | None = None

    def to_json(self) -> str:
        """The record as indented JSON."""
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> JobRecord:
        """Read a record, ignoring fields a newer remotefs may have added."""
        data: dict[str, Any] = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class JobRecords:
    """The directory of job records (``directory`` defaults to the user's data directory)."""

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self._directory = Path(directory) if directory is not None else None

    def __repr__(self) -> str:
        return f"JobRecords({str(self.directory)!r})"

    @property
    def directory(self) -> Path:
        """Where the records are (read from the environment each time when not given)."""
        return self._directory if self._directory is not None else data_dir() / "jobs"

    def path(self, service: str, job_id: str) -> Path:
        """The file of one job's record."""
        return self.directory / f"{service}-{quote(job_id, safe='')}.json"

    def save(self, record: JobRecord) -> Path:
        """Write a record atomically (temporary file, then rename)."""
        target = self.path(record.service, record.job_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".record-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(record.to_json())
            os.replace(tmp, target)
        except BaseException:
            os.unlink(tmp)
            raise
        return target

    def all(self) -> list[JobRecord]:
        """Every record, oldest submission first."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.glob("*.json"):
            try:
                found.append(JobRecord.from_json(path.read_text(encoding="utf-8")))
            except (OSError, ValueError, TypeError):
                continue
        return sorted(found, key=lambda r: (r.submitted or "", r.job_id))

    def find(self, job_id: str, service: str | None = None) -> JobRecord | None:
        """The record of a job, or None; :class:`LookupError` if several services have that id."""
        if service is not None:
            path = self.path(service, job_id)
            return JobRecord.from_json(path.read_text(encoding="utf-8")) if path.exists() else None
        matches = [r for r in self.all() if r.job_id == job_id]
        if len(matches) > 1:
            services = ", ".join(sorted(r.service for r in matches))
            raise LookupError(f"job {job_id!r} is recorded for several services ({services})")
        return matches[0] if matches else None

    def load(self, job_id: str, service: str | None = None) -> JobRecord:
        """The record of a job; :class:`FileNotFoundError` when there is none."""
        record = self.find(job_id, service)
        if record is None:
            raise FileNotFoundError(f"no local record of job {job_id!r} in {self.directory}")
        return record

    def remove(self, service: str, job_id: str) -> None:
        """Forget a job (no error when it was not recorded)."""
        self.path(service, job_id).unlink(missing_ok=True)
