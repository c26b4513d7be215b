"""EDITO's process API: OGC API - Processes paths, Onyxia's execute body, Keycloak bearer.

Policy, following the reference (process-API section) and the seed notebook:

* Routes below ``/processes`` (so the API base is ``<server>/processes``): ``GET /processes``
  (public, ``limit`` and 1-based ``page``), ``GET /processes/{id}``, ``POST
  /processes/{id}/execution`` (201 with the OGC ``statusInfo``, ``jobID`` in it, no
  ``Location``), ``GET /jobs`` (``limit``, ``page``, ``processID``, ``status``), ``GET
  /jobs/{id}``, ``GET /jobs/{id}/results``, ``DELETE /jobs/{id}`` (dismiss).
* Every route but the process list needs ``Authorization: Bearer`` with a live access token of
  the realm that is not meant for MinIO (an ``onyxia`` token); else 401. A user sees only
  their own jobs; others' are 404 like unknown ones.
* The body must be ``{"processInputs": {"inputs": ..., "s3": ..., ...}, "metadata": {...}}``;
  missing or malformed inputs are refused with 400 (a Helm values check would refuse them).
* A job runs as an asyncio task: ``accepted``, then after one step ``running`` with
  ``progress``, then ``successful`` (results) or ``failed`` (the process's message). Steps last
  :attr:`ProcessApi.step_seconds`. Dismissing cancels the task; the job stays ``dismissed``.
* Errors are OGC exception documents (``type``, ``title``, ``status``, ``detail``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from remotefs.testing.edito.catalog import CATALOG, Context, ProcessFailure, ProcessSpec
from remotefs.testing.edito.keycloak import MINIO_CLIENT, Keycloak, TokenError

if TYPE_CHECKING:
    from aiohttp.typedefs import Middleware

__all__ = ["ProcessApi"]

PREFIX = "/processes"
EXCEPTIONS = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/"
RESULTS_REL = "http://www.opengis.net/def/rel/ogc/1.0/results"
TERMINAL = frozenset({"successful", "failed", "dismissed"})


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _problem(status: int, title: str, detail: str, kind: str | None = None) -> web.Response:
    """An OGC exception document."""
    body: dict[str, Any] = {"type": EXCEPTIONS + kind if kind else "about:blank", "title": title}
    body.update(status=status, detail=detail)
    headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'} if status == 401 else None
    return web.json_response(body, status=status, headers=headers)


@dataclass
class EmulatedJob:
    """One job: who asked for what (``body`` as received), and where it is in its life."""

    id: str
    process: ProcessSpec
    owner: str
    inputs: dict[str, Any]
    s3: dict[str, Any] | None
    body: dict[str, Any] = field(default_factory=dict, repr=False)
    created: str = field(default_factory=_now)
    status: str = "accepted"
    message: str = "Job accepted, waiting for a pod"
    progress: int = 0
    started: str | None = None
    finished: str | None = None
    updated: str = field(default_factory=_now)
    results: dict[str, Any] | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def update(self, status: str, message: str, progress: int | None = None) -> None:
        """Move the job on."""
        self.status, self.message, self.updated = status, message, _now()
        if progress is not None:
            self.progress = progress
        if status == "running" and self.started is None:
            self.started = self.updated
        if status in TERMINAL:
            self.finished = self.updated

    def status_info(self, base: str) -> dict[str, Any]:
        """The OGC ``statusInfo`` document."""
        info: dict[str, Any] = {
            "jobID": self.id,
            "processID": self.process.id,
            "type": "process",
            "status": self.status,
            "message": self.message,
            "progress": self.progress,
            "created": self.created,
            "updated": self.updated,
        }
        for name in ("started", "finished"):
            if getattr(self, name):
                info[name] = getattr(self, name)
        links = [{"href": f"{base}/jobs/{self.id}", "rel": "self", "type": "application/json"}]
        if self.status == "successful":
            links.append(
                {
                    "href": f"{base}/jobs/{self.id}/results",
                    "rel": RESULTS_REL,
                    "type": "application/json",
                }
            )
        info["links"] = links
        return info


class ProcessApi:
    """The process catalog, the jobs, and the HTTP routes of the emulated process API."""

    def __init__(self, keycloak: Keycloak, step_seconds: float = 0.5) -> None:
        self.keycloak = keycloak
        self.step_seconds = step_seconds
        self.catalog = {spec.id: spec for spec in CATALOG}
        self.jobs: dict[str, EmulatedJob] = {}

    def make_app(self, record: Middleware) -> web.Application:
        """The aiohttp application (``record`` logs each request)."""
        app = web.Application(middlewares=[record])
        app.add_routes(
            [
                web.get(f"{PREFIX}/processes", self.list_processes),
                web.get(f"{PREFIX}/processes/{{pid}}", self.describe),
                web.post(f"{PREFIX}/processes/{{pid}}/execution", self.execute),
                web.get(f"{PREFIX}/jobs", self.list_jobs),
                web.get(f"{PREFIX}/jobs/{{jid}}", self.status),
                web.get(f"{PREFIX}/jobs/{{jid}}/results", self.results),
                web.delete(f"{PREFIX}/jobs/{{jid}}", self.dismiss),
            ]
        )
        app.on_cleanup.append(self._cancel_all)
        return app

    async def _cancel_all(self, app: web.Application) -> None:
        tasks = [job.task for job in self.jobs.values() if job.task and not job.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- helpers ---------------------------------------------------------------------------------

    @staticmethod
    def _base(request: web.Request) -> str:
        return f"{request.scheme}://{request.host}{PREFIX}"

    def _user(self, request: web.Request) -> str | web.Response:
        """The user behind the bearer token, or the 401 to answer."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _problem(401, "Unauthorized", "a bearer token is required")
        try:
            claims = self.keycloak.verify_access_token(token.strip())
        except TokenError as exc:
            return _problem(401, "Unauthorized", str(exc))
        if claims.get("azp") == MINIO_CLIENT:
            return _problem(401, "Unauthorized", "this token is meant for MinIO, not this API")
        return str(claims.get("preferred_username"))

    def _job(self, request: web.Request) -> EmulatedJob | web.Response:
        """The caller's job named in the path, or the 401 or 404 to answer."""
        user = self._user(request)
        if isinstance(user, web.Response):
            return user
        job = self.jobs.get(request.match_info["jid"])
        if job is None or job.owner != user:
            detail = f"no job {request.match_info['jid']}"
            return _problem(404, "Not Found", detail, "no-such-job")
        return job

    def _process(self, request: web.Request) -> tuple[str, ProcessSpec] | web.Response:
        """The caller and the process named in the path, or the 401 or 404 to answer."""
        user = self._user(request)
        if isinstance(user, web.Response):
            return user
        spec = self.catalog.get(request.match_info["pid"])
        if spec is None:
            detail = f"no process {request.match_info['pid']}"
            return _problem(404, "Not Found", detail, "no-such-process")
        return user, spec

    @staticmethod
    def _page(request: web.Request, key: str, items: list[Any], default: int) -> web.Response:
        """``{key: [...]}`` with the page of `items` the query asks for, or the 400 to answer."""
        try:
            limit = int(request.query.get("limit", default))
            page = int(request.query.get("page", 1))
        except ValueError:
            return _problem(400, "Bad Request", "limit and page must be integers")
        if limit < 1 or page < 1:
            return _problem(400, "Bad Request", "limit and page start at 1")
        return web.json_response({key: items[(page - 1) * limit : page * limit]})

    # -- routes ----------------------------------------------------------------------------------

    async def list_processes(self, request: web.Request) -> web.Response:
        """GET /processes: the catalog (no login needed)."""
        base = self._base(request)
        return self._page(
            request, "processes", [s.summary(base) for s in self.catalog.values()], 100
        )

    async def describe(self, request: web.Request) -> web.Response:
        """GET /processes/{id}."""
        found = self._process(request)
        if isinstance(found, web.Response):
            return found
        _, spec = found
        return web.json_response(spec.describe(self._base(request)))

    async def execute(self, request: web.Request) -> web.Response:
        """POST /processes/{id}/execution: 201 and a job that runs in the background."""
        found = self._process(request)
        if isinstance(found, web.Response):
            return found
        user, spec = found
        try:
            body = await request.json()
        except ValueError:
            return _problem(400, "Bad Request", "the body is not JSON")
        values = body.get("processInputs") if isinstance(body, Mapping) else None
        if not isinstance(values, Mapping):
            return _problem(400, "Bad Request", "processInputs (an object) is required")
        inputs = values.get("inputs", {})
        s3 = values.get("s3")
        if not isinstance(inputs, Mapping) or (s3 is not None and not isinstance(s3, Mapping)):
            return _problem(400, "Bad Request", "processInputs.inputs and .s3 must be objects")
        problem = spec.check(inputs)
        if problem:
            return _problem(400, "Bad Request", problem, "invalid-parameter-value")
        job = EmulatedJob(
            str(uuid.uuid4()), spec, user, dict(inputs), dict(s3) if s3 else None, dict(body)
        )
        self.jobs[job.id] = job
        job.task = asyncio.get_running_loop().create_task(self._run(job))
        return web.json_response(job.status_info(self._base(request)), status=201)

    async def list_jobs(self, request: web.Request) -> web.Response:
        """GET /jobs: the caller's jobs, newest first."""
        user = self._user(request)
        if isinstance(user, web.Response):
            return user
        wanted = {s for value in request.query.getall("status", []) for s in value.split(",") if s}
        process_id = request.query.get("processID")
        base = self._base(request)
        found = [
            job.status_info(base)
            for job in sorted(self.jobs.values(), key=lambda j: j.created, reverse=True)
            if job.owner == user
            and (not wanted or job.status in wanted)
            and (not process_id or job.process.id == process_id)
        ]
        return self._page(request, "jobs", found, 200)

    async def status(self, request: web.Request) -> web.Response:
        """GET /jobs/{id}: the statusInfo."""
        job = self._job(request)
        if isinstance(job, web.Response):
            return job
        return web.json_response(job.status_info(self._base(request)))

    async def results(self, request: web.Request) -> web.Response:
        """GET /jobs/{id}/results: the outputs once successful."""
        job = self._job(request)
        if isinstance(job, web.Response):
            return job
        if job.status == "successful":
            return web.json_response(job.results or {})
        if job.status == "failed":
            return _problem(400, "Bad Request", job.message)
        if job.status == "dismissed":
            return _problem(404, "Not Found", f"job {job.id} was dismissed", "no-such-job")
        return _problem(404, "Not Found", f"job {job.id} is {job.status}", "result-not-ready")

    async def dismiss(self, request: web.Request) -> web.Response:
        """DELETE /jobs/{id}: cancel the job; it stays listed as dismissed."""
        job = self._job(request)
        if isinstance(job, web.Response):
            return job
        if job.task is not None and not job.task.done():
            job.task.cancel()
        job.update("dismissed", "Job dismissed")
        return web.json_response(job.status_info(self._base(request)))

    # -- running ---------------------------------------------------------------------------------

    async def _run(self, job: EmulatedJob) -> None:
        """The job's life: a pod starts, the process runs step by step, the job ends."""

        async def advance(progress: int, message: str) -> None:
            await asyncio.sleep(self.step_seconds)
            job.update("running", message, progress)

        try:
            await asyncio.sleep(self.step_seconds)
            job.update("running", "Job running", 0)
            context = Context(job.id, job.owner, job.inputs, job.s3, advance)
            results = await job.process.run(context)
            await asyncio.sleep(self.step_seconds)
            job.results = results
            job.update("successful", "Job finished", 100)
        except ProcessFailure as exc:
            job.update("failed", str(exc))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            job.update("failed", f"the process crashed: {type(exc).__name__}: {exc}")
