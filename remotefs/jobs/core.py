"""The Job API: one way to launch, follow and collect remote processes, whatever the service.

A :class:`Backend` speaks to one service and maps its words to :class:`JobStatus` (keeping the
original word); everything else here is the same for every service: inputs checked against
the declared schema, inputs staged with fsspec, a local record per job, waiting with backoff,
and outputs pulled through fsspec. This module names no service; its vocabulary is in
:mod:`remotefs.jobs.model`.
"""

from __future__ import annotations

import io
import posixpath
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from remotefs.jobs.errors import JobError, JobFailedError
from remotefs.jobs.model import (
    JobState,
    JobStatus,
    Output,
    ProcessInfo,
    Submission,
    now_iso,
)
from remotefs.jobs.records import JobRecord, JobRecords
from remotefs.jobs.schema import check_inputs
from remotefs.jobs.transfer import CopiedFile, download_outputs, stage_inputs
from remotefs.jobs.waiting import PollPolicy, ProgressOption, poll_until_done, progress_callback

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem


class Backend(ABC):
    """One job service. Subclasses implement the service calls; submission logic lives here."""

    service: ClassVar[str]
    url_schemes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, poll: PollPolicy = PollPolicy(), records: JobRecords | None = None):
        self.poll = poll
        self.records = records if records is not None else JobRecords()

    # -- the service -----------------------------------------------------------------------------

    @abstractmethod
    def processes(self, *, limit: int | None = None) -> list[ProcessInfo]:
        """The processes offered (every page, or the first ``limit``)."""

    @abstractmethod
    def describe(self, process_id: str) -> ProcessInfo:
        """One process, with its input schema where the service declares one."""

    @abstractmethod
    def execute(self, process_id: str, inputs: Mapping[str, Any], **options: Any) -> Submission:
        """Ask the service to run a process (no checks, no staging, no record)."""

    @abstractmethod
    def status(self, job_id: str) -> JobState:
        """The job's current state."""

    @abstractmethod
    def dismiss(self, job_id: str) -> JobState:
        """Cancel the job (or remove a finished one)."""

    @abstractmethod
    def results(self, job_id: str, process_id: str | None = None) -> dict[str, Any]:
        """The job's results as output id -> inline value or ``{"href": ...}``."""

    @abstractmethod
    def list_jobs(self, *, limit: int | None = None, **filters: Any) -> list[JobState]:
        """States of the user's jobs, with the service's own filters."""

    @abstractmethod
    def urls(self) -> dict[str, str]:
        """Where the service is (constructor keywords), for the job record."""

    def logs(self, job_id: str, offset: int = 0) -> tuple[str, int]:
        """Log text from ``offset`` on and the offset to ask from next time."""
        raise io.UnsupportedOperation(f"the {self.service} service offers no job logs")

    def filesystem(self, url: str) -> tuple[AbstractFileSystem, str]:
        """The filesystem and path for a URL (service URLs get the service's credentials)."""
        from fsspec.core import url_to_fs

        fs, path = url_to_fs(url)
        return fs, path

    def outputs(self, results: Mapping[str, Any]) -> list[Output]:
        """Results as files: references by their URL's name, raw bytes as ``<id>``, other
        inline values as ``<id>.json``."""
        found: list[Output] = []
        used: set[str] = set()
        for key, value in results.items():
            items = value if isinstance(value, list) else [value]
            refs = [self._reference(item) for item in items]
            if not all(refs):
                if isinstance(value, bytes):
                    found.append(Output(key, value=value))
                else:
                    found.append(Output(f"{key}.json", value=value, media_type="application/json"))
                continue
            for url, media_type in (ref for ref in refs if ref):
                name = key if url.endswith("/") else posixpath.basename(urlsplit(url).path)
                if not name or name in used:
                    name = f"{key}-{name}" if name else key
                used.add(name)
                found.append(Output(name, url=url, media_type=media_type))
        return found

    def _reference(self, item: Any) -> tuple[str, str | None] | None:
        """(URL, media type) when a result item points at a file."""
        if isinstance(item, Mapping) and isinstance(item.get("href"), str):
            kind = item.get("type")
            return item["href"], kind if isinstance(kind, str) else None
        if isinstance(item, str) and urlsplit(item).scheme in self.url_schemes:
            return item, None
        return None

    @classmethod
    def from_record(cls, record: JobRecord, **credentials: Any) -> Backend:
        """A backend for a recorded job: its URLs plus the caller's credentials."""
        options: dict[str, Any] = {**record.urls, **credentials}
        return cls(**options)

    def close(self) -> None:
        """Release connections (the backend stays usable)."""
        return None

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what every service shares ---------------------------------------------------------------

    def submit(
        self,
        process_id: str,
        inputs: Mapping[str, Any] | None = None,
        *,
        stage: Mapping[str, str] | None = None,
        validate: bool = True,
        record: bool = True,
        **options: Any,
    ) -> Job:
        """Check the inputs, stage files (``{source: target URL}``), run, and record the job."""
        given = dict(inputs or {})
        if validate:
            process = self.describe(process_id)
            if process.schema is not None:
                check_inputs(process_id, process.schema, given)
        staged = stage_inputs(stage, self.filesystem) if stage else []
        submission = self.execute(process_id, given, **options)
        job = Job(
            self,
            submission.job_id,
            process_id=process_id,
            state=submission.state,
            results=submission.results,
            submitted=now_iso(),
        )
        job.staged = staged
        if record:
            job.save()
        return job

    def job(self, job_id: str) -> Job:
        """An existing job by id (its state is fetched, so an unknown id fails here)."""
        recorded = self.records.find(job_id, self.service)
        state = self.status(job_id)
        if recorded is not None:
            job = Job.from_record(self, recorded)
            job._observe(state)
            return job
        return Job(self, job_id, process_id=state.process_id, state=state)

    def jobs(self, *, limit: int | None = None, **filters: Any) -> list[Job]:
        """The user's jobs as the service lists them (``filters`` are the service's)."""
        return [
            Job(self, state.job_id, process_id=state.process_id, state=state)
            for state in self.list_jobs(limit=limit, **filters)
        ]


class Job:
    """A submitted job: follow it, wait for it, cancel it, read its logs, pull its outputs."""

    def __init__(
        self,
        backend: Backend,
        job_id: str,
        *,
        process_id: str | None = None,
        state: JobState | None = None,
        results: Mapping[str, Any] | None = None,
        submitted: str | None = None,
    ) -> None:
        self.backend = backend
        self.id = job_id
        self.process_id = process_id
        self.submitted = submitted
        self.staged: list[CopiedFile] = []
        self._state = state
        self._results = dict(results) if results is not None else None
        self._log_offset = 0
        self._recorded = False

    def __repr__(self) -> str:
        status = self._state.word or self._state.status.value if self._state else "?"
        return f"<Job {self.id} of {self.process_id or '?'} on {self.backend.service}: {status}>"

    @classmethod
    def from_record(cls, backend: Backend, record: JobRecord) -> Job:
        """Re-attach to a recorded job (its last known state, until refreshed)."""
        state = JobState(
            record.job_id,
            JobStatus.parse(record.status),
            record.word,
            record.message,
            process_id=record.process_id,
        )
        job = cls(
            backend,
            record.job_id,
            process_id=record.process_id,
            state=state,
            submitted=record.submitted,
        )
        job._recorded = True
        return job

    # -- state -----------------------------------------------------------------------------------

    @property
    def state(self) -> JobState | None:
        """The last state seen (None before the first :meth:`refresh`)."""
        return self._state

    @property
    def status(self) -> JobStatus:
        """The last status seen; refreshed by :meth:`refresh` and :meth:`wait`."""
        return self._state.status if self._state else self.refresh().status

    @property
    def progress(self) -> float | None:
        """The last progress (0-100) the service reported, if it reports any."""
        return self._state.progress if self._state else None

    def refresh(self) -> JobState:
        """Ask the service for the job's state now."""
        if self._state is not None and self._state.status.terminal and self._results is not None:
            return self._state
        state = self.backend.status(self.id)
        self._observe(state)
        return state

    def _observe(self, state: JobState) -> None:
        previous = self._state
        self._state = state
        if self.process_id is None:
            self.process_id = state.process_id
        if self._recorded and (previous is None or previous != state):
            self.save()

    def wait(
        self,
        *,
        timeout: float | None = None,
        cancel_on_timeout: bool = False,
        progress: ProgressOption = None,
        poll: PollPolicy | None = None,
        check: bool = True,
    ) -> JobState:
        """Poll until the job ends; the final state.

        ``progress``: a callable given each new state, True/False, or None to show a progress
        line when stderr is a terminal. ``timeout`` raises :class:`JobTimeoutError` (after
        cancelling the job with ``cancel_on_timeout``). A failed job raises
        :class:`JobFailedError` with the service's message unless ``check`` is false.
        """
        state = poll_until_done(
            self.refresh,
            job_id=self.id,
            timeout=timeout,
            policy=poll or self.backend.poll,
            on_change=progress_callback(progress),
            on_timeout=self.cancel if cancel_on_timeout else None,
        )
        if check and state.status is JobStatus.FAILED:
            raise JobFailedError(
                f"job {self.id} of {self.process_id or 'a process'} failed: "
                f"{state.message or state.word or 'no message from the service'}",
                path=self.id,
            )
        return state

    def cancel(self) -> JobState:
        """Cancel (dismiss) the job; the state the service answers with."""
        state = self.backend.dismiss(self.id)
        self._observe(state)
        return state

    def logs(self, *, from_start: bool = False) -> str:
        """Log text written since the last call (all of it with ``from_start``)."""
        text, offset = self.backend.logs(self.id, 0 if from_start else self._log_offset)
        self._log_offset = offset
        return text

    # -- outputs ---------------------------------------------------------------------------------

    def results(self) -> dict[str, Any]:
        """The job's results (fetched once the job has succeeded, then kept)."""
        if self._results is None:
            self._results = self.backend.results(self.id, self.process_id)
        return dict(self._results)

    def outputs(self) -> list[Output]:
        """The results as files to download."""
        return self.backend.outputs(self.results())

    def download(self, dest: str) -> list[CopiedFile]:
        """Pull every output into ``dest`` (a directory path or any fsspec URL)."""
        state = self._state
        if state is None or not state.status.terminal:
            state = self.refresh()
        if state.status is not JobStatus.SUCCESSFUL:
            detail = f": {state.message}" if state.message else ""
            raise JobError(
                f"job {self.id} is {state.word or state.status.value}; no outputs to download"
                f"{detail}",
                path=self.id,
            )
        return download_outputs(self.outputs(), dest, self.backend.filesystem, job_id=self.id)

    # -- record ----------------------------------------------------------------------------------

    def record(self) -> JobRecord:
        """What the local record of this job holds."""
        state = self._state
        return JobRecord(
            service=self.backend.service,
            job_id=self.id,
            process_id=self.process_id,
            urls=self.backend.urls(),
            submitted=self.submitted,
            status=state.status.value if state else JobStatus.UNKNOWN.value,
            word=state.word if state else "",
            message=state.message if state else None,
            updated=now_iso(),
        )

    def save(self) -> None:
        """Write (and from now on keep up to date) the local record of this job."""
        self.backend.records.save(self.record())
        self._recorded = True
