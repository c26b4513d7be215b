"""JSON calls to a job service from synchronous code, through the one HTTP policy.

Requests go through :func:`remotefs.http.request` (timeouts, retries of idempotent calls,
bearer refresh after a 401 and one retry with the new token, error mapping), run on fsspec's
I/O event loop so blocking callers and fsspec filesystems share one loop. Bodies are read as
JSON whatever their declared type (some servers label JSON ``text/html``).
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from remotefs.http import LazySession, RetryPolicy, Timeouts, request

if TYPE_CHECKING:
    from remotefs.errors import RemoteError
    from remotefs.http import BearerAuth

JSON_HEADERS = {"Accept": "application/json"}


@dataclass(frozen=True)
class Reply:
    """A finished reply: status, headers, raw body, and the body as JSON when it is JSON."""

    status: int
    headers: Mapping[str, str] = field(repr=False)
    body: bytes = field(repr=False)
    url: str = ""

    @property
    def data(self) -> Any:
        """The body decoded as JSON (None when empty or not JSON)."""
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def content_type(self) -> str:
        """The media type without parameters."""
        return self.headers.get("Content-Type", "").partition(";")[0].strip().lower()


class JsonApi:
    """A service root URL plus the policy to call it with; one aiohttp session, made lazily."""

    def __init__(
        self,
        base_url: str,
        *,
        auth: BearerAuth | None = None,
        retry: RetryPolicy = RetryPolicy(),
        timeouts: Timeouts = Timeouts(),
        verify: bool = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.retry = retry
        self.timeouts = timeouts
        self.verify = verify
        self._sessions = LazySession(timeouts, verify, connections=16)
        weakref.finalize(self, self._sessions.close)

    def __repr__(self) -> str:
        return f"JsonApi({self.base_url!r})"

    def url(self, path: str) -> str:
        """An absolute URL: ``path`` below the base, or ``path`` itself when absolute."""
        if "://" in path:
            return path
        return urljoin(self.base_url + "/", path.lstrip("/"))

    def call(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        authenticated: bool = True,
        ok: Callable[[int], bool] = lambda status: 200 <= status < 300,
        on_error: Callable[[int, bytes, str | None], RemoteError] | None = None,
    ) -> Reply:
        """Send one request and read the whole reply (blocking)."""
        from fsspec.asyn import get_loop, sync

        return sync(
            get_loop(),
            self._call,
            method,
            self.url(path),
            idempotent=idempotent,
            json_body=json_body,
            params=params,
            headers=headers,
            authenticated=authenticated,
            ok=ok,
            on_error=on_error,
        )

    async def _call(
        self,
        method: str,
        url: str,
        *,
        idempotent: bool,
        json_body: Any,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        authenticated: bool,
        ok: Callable[[int], bool],
        on_error: Callable[[int, bytes, str | None], RemoteError] | None,
    ) -> Reply:
        sent = {**JSON_HEADERS, **(headers or {})}
        data = None
        if json_body is not None:
            encoded = json.dumps(json_body).encode("utf-8")
            sent["Content-Type"] = "application/json"

            def data() -> bytes:
                return encoded

        extra: dict[str, Any] = {"on_error": on_error} if on_error is not None else {}
        resp = await request(
            await self._sessions.get(),
            method,
            url,
            idempotent=idempotent,
            auth=self.auth if authenticated else None,
            retry=self.retry,
            path=url,
            headers=sent,
            params=params,
            data=data,
            ok=ok,
            **extra,
        )
        try:
            body = await resp.read()
        finally:
            resp.release()
        return Reply(resp.status, dict(resp.headers), body, str(resp.url))

    def close(self) -> None:
        """Close the session (a later call opens a new one)."""
        self._sessions.close()
