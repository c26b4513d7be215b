"""The Agave response envelope and the query parameters every resource honours.

``{"status", "message", "version", "result"}`` around every service answer; ``naked=true`` sends
the bare result (a DELETE then answers 204), ``pretty=true`` indents, ``filter=a,b`` projects
result objects, ``limit``/``offset`` page collections. Errors always use the envelope, with
``"result": null`` as the seed's (pre-2.2) server version does.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from aiohttp import web

from remotefs.testing.agave.store import AgaveError

__all__ = [
    "VERSION",
    "base_url",
    "envelope_errors",
    "error",
    "json_response",
    "page",
    "page_params",
    "read_fields",
    "success",
]

VERSION = "2.0.0-SNAPSHOT-rc3fad"

T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def base_url(request: web.Request) -> str:
    """Scheme and host the request came in on; every ``_links`` href starts with it."""
    return f"{request.scheme}://{request.host}"


def _flag(request: web.Request, name: str) -> bool:
    """A boolean query parameter."""
    return request.query.get(name, "").strip().lower() == "true"


def json_response(request: web.Request, data: Any, status: int = 200) -> web.Response:
    """JSON body, indented when ``pretty=true``."""
    text = json.dumps(data, indent=2 if _flag(request, "pretty") else None)
    return web.Response(status=status, text=text, content_type="application/json")


def _project(request: web.Request, result: Any) -> Any:
    """Apply ``filter=field1,field2`` to a result object or to each object of a list."""
    fields = [f.strip() for f in request.query.get("filter", "").split(",") if f.strip()]
    if not fields or "*" in fields:
        return result

    def keep(item: Any) -> Any:
        return {k: v for k, v in item.items() if k in fields} if isinstance(item, dict) else item

    return [keep(item) for item in result] if isinstance(result, list) else keep(result)


def success(
    request: web.Request, result: Any, message: str | None = None, status: int = 200
) -> web.Response:
    """A success envelope (or the bare result with ``naked=true``)."""
    result = _project(request, result)
    if _flag(request, "naked"):
        if request.method == "DELETE":
            return web.Response(status=204)
        return json_response(request, result, status)
    body = {"status": "success", "message": message, "version": VERSION, "result": result}
    return json_response(request, body, status)


def error(request: web.Request, status: int, message: str) -> web.Response:
    """An error envelope."""
    body = {"status": "error", "message": message, "version": VERSION, "result": None}
    return json_response(request, body, status)


def page_params(request: web.Request, default_limit: int) -> tuple[int, int]:
    """``(limit, offset)`` from the query; missing or invalid values fall back to the defaults."""

    def number(name: str, default: int, minimum: int) -> int:
        try:
            value = int(request.query.get(name, ""))
        except ValueError:
            return default
        return value if value >= minimum else default

    return number("limit", default_limit, 1), number("offset", 0, 0)


def page(request: web.Request, items: Sequence[T], default_limit: int) -> list[T]:
    """Plain ``limit``/``offset`` paging of a collection."""
    limit, offset = page_params(request, default_limit)
    return list(items[offset : offset + limit])


@web.middleware
async def envelope_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn AgaveError, routing errors and storage (OS) errors into error envelopes."""
    try:
        return await handler(request)
    except AgaveError as exc:
        response = error(request, exc.status, exc.message)
        response.headers.update(exc.headers)
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error(request, exc.status, f"{exc.reason}: {request.method} {request.path}")
    except OSError as exc:
        return error(request, 500, f"Storage system error: {exc.strerror or exc}")


async def read_fields(request: web.Request) -> dict[str, str]:
    """Text fields of a JSON, form-urlencoded or multipart request body."""
    if request.content_type == "application/json":
        try:
            data = await request.json()
        except ValueError as exc:
            raise AgaveError(400, f"Invalid JSON body: {exc}") from exc
        if not isinstance(data, dict):
            raise AgaveError(400, "The request body must be a JSON object")
        return {
            str(k): v if isinstance(v, str) else json.dumps(v)
            for k, v in data.items()
            if v is not None
        }
    form = await request.post()
    return {k: v for k, v in form.items() if isinstance(v, str)}
