"""The exceptions of the Job API: a job that failed or ran too long, bad inputs, unsafe outputs.

They extend :mod:`remotefs.errors` so callers catch them as ``OSError``/``TimeoutError`` and the
command line maps them to its exit codes. The job id travels in ``path``, so they still pickle.
"""

from __future__ import annotations

from collections.abc import Mapping

from remotefs.errors import RemoteError, RemotePermissionError, RemoteTimeoutError


class JobError(RemoteError):
    """A job cannot do what was asked (not finished yet, no such output, ...)."""

    @property
    def job_id(self) -> str | None:
        """The id of the job concerned."""
        return self.path


class JobFailedError(JobError):
    """The service reports the job as failed; the message is the service's own."""


class JobTimeoutError(RemoteTimeoutError):
    """The job did not finish within the time given to :meth:`~remotefs.jobs.Job.wait`."""


class UnsafeOutputError(JobError, RemotePermissionError):
    """A result names a file outside the destination (``..``, an absolute path): refused."""


class InputError(ValueError):
    """Inputs do not match the process's declared schema; ``problems`` maps field to message."""

    def __init__(self, process_id: str, problems: Mapping[str, str]) -> None:
        self.process_id = process_id
        self.problems = dict(problems)
        listed = "; ".join(f"{field}: {message}" for field, message in self.problems.items())
        super().__init__(f"invalid inputs for process {process_id!r}: {listed}")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.process_id, self.problems))
