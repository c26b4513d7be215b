"""OGC API - Processes (1.0, tolerating the 2.0 draft and pygeoapi's deviations) as a backend.

What it reads from a server, following the reference's client rules:

* job ids under ``jobID``, ``jobId`` or ``id``, else from the ``Location`` header (pygeoapi's
  asynchronous answer has a ``null`` body);
* status words of 1.0 (``successful``), 2.0 (``succeeded``) and openEO, mapped to
  :class:`~remotefs.jobs.core.JobStatus`; unknown words stay non-terminal;
* results as a results map, a ``{"outputs": [...]}`` document, or the raw content of a process
  with one output; a 404 for the results of a finished job means "no results document";
* paging by ``next`` links, or by a page number for services that give no links.

Executions ask ``Prefer: respond-async`` unless told otherwise; a synchronous 200 answer
carries the results, which the job keeps. Subclasses change the execute body.
"""

from __future__ import annotations

import mimetypes
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, urlsplit

from remotefs.http import BearerAuth, RetryPolicy, Timeouts, error_for_status
from remotefs.jobs.core import Backend
from remotefs.jobs.errors import JobError, JobFailedError
from remotefs.jobs.model import JobState, JobStatus, ProcessInfo, Submission
from remotefs.jobs.records import JobRecords
from remotefs.jobs.schema import declared_inputs_schema, ogc_inputs_schema
from remotefs.jobs.transport import JsonApi, Reply
from remotefs.jobs.waiting import PollPolicy

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

WORDS = {
    "accepted": JobStatus.ACCEPTED,
    "created": JobStatus.ACCEPTED,
    "queued": JobStatus.ACCEPTED,
    "running": JobStatus.RUNNING,
    "successful": JobStatus.SUCCESSFUL,
    "succeeded": JobStatus.SUCCESSFUL,
    "finished": JobStatus.SUCCESSFUL,
    "failed": JobStatus.FAILED,
    "error": JobStatus.FAILED,
    "dismissed": JobStatus.DISMISSED,
    "canceled": JobStatus.DISMISSED,
}
JOB_ID_KEYS = ("jobID", "jobId", "id")
PROCESS_ID_KEYS = ("processID", "processId")
EXECUTE_OPTIONS = frozenset({"outputs", "response", "subscriber"})


def _ok_or(*statuses: int) -> Callable[[int], bool]:
    return lambda status: 200 <= status < 300 or status in statuses


def _text(value: Any) -> str | None:
    """A title or description that may be a plain string or a language map."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        for text in value.values():
            if isinstance(text, str):
                return text
    return None


class OgcBackend(Backend):
    """A server of OGC API - Processes at ``url`` (the root holding ``/processes``, ``/jobs``)."""

    service: ClassVar[str] = "ogc"
    public_listing: ClassVar[bool] = False
    page_parameter: ClassVar[str | None] = None

    def __init__(
        self,
        url: str,
        *,
        auth: BearerAuth | None = None,
        prefer_async: bool = True,
        protocol_options: Mapping[str, Mapping[str, Any]] | None = None,
        page_size: int = 100,
        retry: RetryPolicy = RetryPolicy(),
        timeouts: Timeouts = Timeouts(),
        verify: bool = True,
        poll: PollPolicy = PollPolicy(),
        records: JobRecords | None = None,
    ) -> None:
        super().__init__(poll=poll, records=records)
        self.api = JsonApi(url, auth=auth, retry=retry, timeouts=timeouts, verify=verify)
        self.prefer_async = prefer_async
        self.protocol_options = {k: dict(v) for k, v in (protocol_options or {}).items()}
        self.page_size = page_size
        self._described: dict[str, ProcessInfo] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.api.base_url!r})"

    def urls(self) -> dict[str, str]:
        """The server root."""
        return {"url": self.api.base_url}

    def close(self) -> None:
        """Close the HTTP session."""
        self.api.close()

    def filesystem(self, url: str) -> tuple[AbstractFileSystem, str]:
        """A URL's filesystem, made with the ``protocol_options`` of its protocol."""
        from fsspec.core import url_to_fs

        protocol = urlsplit(url).scheme or "file"
        fs, path = url_to_fs(url, **self.protocol_options.get(protocol, {}))
        return fs, path

    # -- processes -------------------------------------------------------------------------------

    def processes(self, *, limit: int | None = None) -> list[ProcessInfo]:
        """Every process the server lists (following its pages)."""
        found = self._pages("processes", "processes", limit, {}, not self.public_listing)
        return [self._process(item) for item in found]

    def describe(self, process_id: str) -> ProcessInfo:
        """The process description, with one JSON Schema made of its input descriptions."""
        reply = self.api.call("GET", f"processes/{quote(process_id, safe='')}", idempotent=True)
        data = reply.data if isinstance(reply.data, Mapping) else {}
        info = self._process(data, process_id)
        self._described[process_id] = info
        return info

    def _process(self, data: Mapping[str, Any], process_id: str | None = None) -> ProcessInfo:
        inputs = data.get("inputs")
        schema: dict[str, Any] | None = None
        if isinstance(inputs, Mapping):
            schema = ogc_inputs_schema(inputs)
        elif isinstance(inputs, list):
            schema = declared_inputs_schema(i for i in inputs if isinstance(i, Mapping))
            inputs = {i.get("name"): i for i in inputs if isinstance(i, Mapping)}
        outputs = data.get("outputs")
        return ProcessInfo(
            id=str(data.get("id") or process_id or ""),
            title=_text(data.get("title")),
            description=_text(data.get("description")),
            version=str(data["version"]) if data.get("version") is not None else None,
            inputs=dict(inputs) if isinstance(inputs, Mapping) else {},
            outputs=dict(outputs) if isinstance(outputs, Mapping) else {},
            schema=schema,
            raw=dict(data),
        )

    # -- execution -------------------------------------------------------------------------------

    def execution_body(
        self, process_id: str, inputs: Mapping[str, Any], options: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The standard body: ``{"inputs": ...}`` plus ``outputs``/``response``/``subscriber``."""
        unknown = set(options) - EXECUTE_OPTIONS
        if unknown:
            raise TypeError(f"unknown execution options for {self.service}: {sorted(unknown)}")
        return {"inputs": dict(inputs), **options}

    def execute(self, process_id: str, inputs: Mapping[str, Any], **options: Any) -> Submission:
        """POST the execution; a 201 gives a job to follow, a 200 the results themselves."""
        prefer_async = options.pop("prefer_async", self.prefer_async)
        body = self.execution_body(process_id, inputs, options)
        headers = {"Prefer": "respond-async"} if prefer_async else {}
        reply = self.api.call(
            "POST",
            f"processes/{quote(process_id, safe='')}/execution",
            idempotent=False,
            json_body=body,
            headers=headers,
        )
        data = reply.data
        location = self._job_id(None, reply.headers.get("Location"))
        named = self._job_id(data, None) if isinstance(data, Mapping) else None
        status_info = isinstance(data, Mapping) and "status" in data and named
        if reply.status == 201 or status_info:
            job_id = named or location
            if not job_id:
                raise JobError(f"{reply.url} accepted the job but named no job id")
            if status_info:
                return Submission(job_id, self._state(data, job_id, process_id))
            return Submission(
                job_id, JobState(job_id, JobStatus.ACCEPTED, "", None, None, process_id)
            )
        job_id = location or f"sync-{uuid.uuid4()}"
        state = JobState(
            job_id, JobStatus.SUCCESSFUL, "", "finished synchronously", 100, process_id
        )
        return Submission(job_id, state, self._results(reply, process_id))

    @staticmethod
    def _job_id(data: Any, location: str | None) -> str | None:
        if isinstance(data, Mapping):
            for key in JOB_ID_KEYS:
                if data.get(key):
                    return str(data[key])
        if location:
            path = urlsplit(location).path.rstrip("/")
            head, _, tail = path.rpartition("/")
            if tail and head.endswith("/jobs"):
                return tail
        return None

    def _state(self, data: Any, job_id: str, process_id: str | None = None) -> JobState:
        if not isinstance(data, Mapping):
            return JobState(job_id, JobStatus.UNKNOWN, "", process_id=process_id)
        word = str(data.get("status") or "")
        progress = data.get("progress")
        message = data.get("message")
        found_process = next((data[k] for k in PROCESS_ID_KEYS if data.get(k)), process_id)
        return JobState(
            job_id=self._job_id(data, None) or job_id,
            status=WORDS.get(word.lower(), JobStatus.UNKNOWN),
            word=word,
            message=str(message) if message else None,
            progress=float(progress) if isinstance(progress, (int, float)) else None,
            process_id=str(found_process) if found_process else None,
            raw=dict(data),
        )

    # -- jobs ------------------------------------------------------------------------------------

    def status(self, job_id: str) -> JobState:
        """``GET /jobs/{id}``."""
        reply = self.api.call("GET", f"jobs/{quote(job_id, safe='')}", idempotent=True)
        return self._state(reply.data, job_id)

    def dismiss(self, job_id: str) -> JobState:
        """``DELETE /jobs/{id}``: the dismissed state (the server may forget the job after)."""
        reply = self.api.call("DELETE", f"jobs/{quote(job_id, safe='')}", idempotent=True)
        state = self._state(reply.data, job_id)
        if state.status is JobStatus.UNKNOWN:
            state = JobState(job_id, JobStatus.DISMISSED, state.word, state.message)
        return state

    def results(self, job_id: str, process_id: str | None = None) -> dict[str, Any]:
        """``GET /jobs/{id}/results``; a failed job raises its message, an unfinished one too."""
        reply = self.api.call(
            "GET",
            f"jobs/{quote(job_id, safe='')}/results",
            idempotent=True,
            ok=_ok_or(400, 404, 410),
        )
        if 200 <= reply.status < 300:
            return self._results(reply, process_id)
        state = self.status(job_id)
        if state.status is JobStatus.FAILED:
            raise JobFailedError(f"job {job_id} failed: {state.message or state.word}", path=job_id)
        if not state.status.terminal:
            raise JobError(
                f"job {job_id} is {state.word or 'not finished'}: no results yet", path=job_id
            )
        if reply.status == 404 and state.status is JobStatus.SUCCESSFUL:
            return {}
        raise error_for_status(reply.status, reply.body, reply.url)

    def _results(self, reply: Reply, process_id: str | None) -> dict[str, Any]:
        """Results as an output map, whatever form the server chose."""
        data = reply.data
        declared = self._declared_outputs(process_id)
        single = declared[0] if len(declared) == 1 else None
        if data is None and reply.body:
            suffix = mimetypes.guess_extension(reply.content_type) or ""
            return {f"{single or 'result'}{suffix}": reply.body}
        if isinstance(data, Mapping) and isinstance(data.get("outputs"), list):
            found: dict[str, Any] = {}
            for entry in data["outputs"]:
                if isinstance(entry, Mapping) and entry.get("id"):
                    rest = {k: v for k, v in entry.items() if k != "id"}
                    found[str(entry["id"])] = rest["value"] if set(rest) == {"value"} else rest
            return found
        if isinstance(data, Mapping):
            return {single: dict(data)} if single and single not in data else dict(data)
        return {single or "result": data} if data is not None else {}

    def _declared_outputs(self, process_id: str | None) -> list[str]:
        if not process_id:
            return []
        info = self._described.get(process_id)
        if info is None:
            try:
                info = self.describe(process_id)
            except OSError:
                return []
        return list(info.outputs)

    def list_jobs(self, *, limit: int | None = None, **filters: Any) -> list[JobState]:
        """``GET /jobs`` with ``process_id``, ``status`` (list) or any of the server's filters."""
        params: dict[str, Any] = {}
        process_id = filters.pop("process_id", None)
        if process_id:
            params["processID"] = process_id
        status = filters.pop("status", None)
        if status:
            words = [status] if isinstance(status, str) else list(status)
            params["status"] = ",".join(str(getattr(w, "value", w)) for w in words)
        params.update({k: v for k, v in filters.items() if v is not None})
        found = self._pages("jobs", "jobs", limit, params, True)
        return [self._state(item, self._job_id(item, None) or "") for item in found]

    def _pages(
        self,
        path: str,
        key: str,
        limit: int | None,
        params: dict[str, Any],
        authenticated: bool,
    ) -> list[Mapping[str, Any]]:
        """Items of a listing, page after page, until ``limit`` or the end."""
        size = min(limit, self.page_size) if limit else self.page_size
        query: dict[str, Any] | None = {**params, "limit": size}
        if self.page_parameter and query is not None:
            query[self.page_parameter] = 1
        target, page = path, 1
        items: list[Mapping[str, Any]] = []
        seen: set[str] = set()
        while True:
            reply = self.api.call(
                "GET", target, idempotent=True, params=query, authenticated=authenticated
            )
            data = reply.data
            batch = data.get(key) if isinstance(data, Mapping) else data
            batch = [b for b in batch if isinstance(b, Mapping)] if isinstance(batch, list) else []
            fresh = [b for b in batch if _identity(b) not in seen]
            seen.update(_identity(b) for b in fresh)
            items.extend(fresh)
            if not fresh or (limit and len(items) >= limit):
                break
            following = _next_link(data)
            if following:
                target, query = following, None
            elif self.page_parameter and query is not None and len(batch) >= size:
                page += 1
                query[self.page_parameter] = page
            else:
                break
        return items[:limit] if limit else items


def _identity(item: Mapping[str, Any]) -> str:
    for key in (*JOB_ID_KEYS, "processID"):
        if item.get(key):
            return str(item[key])
    return repr(sorted(item.items(), key=lambda kv: str(kv[0])))


def _next_link(data: Any) -> str | None:
    links = data.get("links") if isinstance(data, Mapping) else None
    for link in links if isinstance(links, list) else []:
        if isinstance(link, Mapping) and link.get("rel") == "next" and link.get("href"):
            return str(link["href"])
    return None
