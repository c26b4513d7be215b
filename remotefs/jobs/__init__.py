"""Jobs on remote process services: submit with staged inputs, wait, and pull the outputs.

One :class:`Job` API over every service; a :class:`Backend` per service maps its words
(:class:`OgcBackend` for OGC API - Processes servers, :class:`EditoBackend` for EDITO's
process API). Submitted jobs are recorded locally, so :func:`load` finds one again by id,
from any process, given credentials.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from remotefs.jobs.core import Backend, Job
from remotefs.jobs.errors import (
    InputError,
    JobError,
    JobFailedError,
    JobTimeoutError,
    UnsafeOutputError,
)
from remotefs.jobs.model import JobState, JobStatus, Output, ProcessInfo, Submission
from remotefs.jobs.records import JobRecord, JobRecords
from remotefs.jobs.transfer import CopiedFile
from remotefs.jobs.waiting import PollPolicy, TerminalProgress

if TYPE_CHECKING:
    from remotefs.jobs.edito import EditoBackend
    from remotefs.jobs.ogc import OgcBackend

__all__ = [
    "BACKENDS",
    "Backend",
    "CopiedFile",
    "EditoBackend",
    "InputError",
    "Job",
    "JobError",
    "JobFailedError",
    "JobRecord",
    "JobRecords",
    "JobState",
    "JobStatus",
    "JobTimeoutError",
    "OgcBackend",
    "Output",
    "PollPolicy",
    "ProcessInfo",
    "Submission",
    "TerminalProgress",
    "UnsafeOutputError",
    "backend_class",
    "load",
]

BACKENDS = {
    "ogc": "remotefs.jobs.ogc:OgcBackend",
    "edito": "remotefs.jobs.edito:EditoBackend",
}


def backend_class(service: str) -> type[Backend]:
    """The backend class of a service kind (a key of :data:`BACKENDS`)."""
    try:
        module, _, name = BACKENDS[service].partition(":")
    except KeyError:
        raise ValueError(f"unknown job service {service!r}; known: {sorted(BACKENDS)}") from None
    cls: type[Backend] = getattr(importlib.import_module(module), name)
    return cls


def load(
    job_id: str,
    *,
    service: str | None = None,
    records: JobRecords | None = None,
    **credentials: Any,
) -> Job:
    """A recorded job, re-attached through a backend made from its record and ``credentials``."""
    store = records if records is not None else JobRecords()
    record = store.load(job_id, service)
    backend = backend_class(record.service).from_record(record, records=store, **credentials)
    return Job.from_record(backend, record)


def __getattr__(name: str) -> Any:
    if name in ("OgcBackend", "EditoBackend"):
        return backend_class("ogc" if name == "OgcBackend" else "edito")
    raise AttributeError(name)
