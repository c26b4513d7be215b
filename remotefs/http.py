"""One HTTP policy for every service: timeouts, retries with backoff, redirects, error mapping.

- Timeouts: every request has a connect and a read timeout (:class:`Timeouts`).
- Retries (:class:`RetryPolicy`): connection errors, 408, 429 and 5xx are retried with
  exponential backoff and full jitter, honouring ``Retry-After``, but only for requests the
  caller marks idempotent. Anything else fails at once.
- Authentication: a :class:`BearerAuth` supplies the header per attempt; after a 401 it may
  refresh once, and the request is retried with the *new* header, never the stale one.
- Redirects are followed by hand, and the ``Authorization`` header only to the same origin.
- Errors: a non-2xx reply becomes a :class:`remotefs.errors.RemoteError` subclass in
  :func:`error_for_status`, with the service's own message; secrets never enter it.

Async code uses :func:`request` (aiohttp); sync code (logins, account calls) :func:`sync_request`
(requests). Both share the same policy objects.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urljoin, urlsplit

from remotefs.errors import (
    RemoteConnectionError,
    RemoteError,
    RemoteFileExistsError,
    RemoteFileNotFoundError,
    RemotePermissionError,
    RemoteTimeoutError,
)

if TYPE_CHECKING:
    import aiohttp
    import requests

log = logging.getLogger("remotefs.http")

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
USER_AGENT = "remotefs"
MAX_REDIRECTS = 5


@dataclass(frozen=True)
class Timeouts:
    """Seconds to wait for a connection and between two reads of a reply."""

    connect: float = 15.0
    read: float = 120.0


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry a request that failed transiently."""

    attempts: int = 6
    backoff: float = 0.25
    max_backoff: float = 20.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to sleep before retry number ``attempt`` (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_backoff)
        ceiling = min(self.backoff * 2 ** (attempt - 1), self.max_backoff)
        return random.uniform(ceiling / 2, ceiling)


NO_RETRY = RetryPolicy(attempts=1)


class BearerAuth(Protocol):
    """What :func:`request` needs from an authentication strategy."""

    async def header(self) -> str:
        """The current ``Authorization`` value, refreshed first if it is about to expire."""

    async def refresh_after(self, stale: str, status: int, body: bytes) -> bool:
        """Called on a 401: refresh if the reply means a bad token; True if a retry may help."""


def redact(value: str) -> str:
    """Hide the secret part of an Authorization-like value for logs."""
    scheme, _, secret = value.partition(" ")
    return f"{scheme} ***" if secret else "***"


def service_message(body: bytes | str) -> str:
    """The human message in an error reply: JSON message fields, else a short text excerpt."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        for found in _messages(data):
            return found
    text = re.sub(r"<[^>]+>", " ", text)
    text = " ".join(text.split())
    return text[:300]


def _messages(data: Mapping[str, Any]) -> list[str]:
    found = []
    for key in ("message", "error_description", "description", "detail", "title", "error"):
        value = data.get(key)
        if isinstance(value, str) and value:
            found.append(value)
        elif isinstance(value, Mapping):
            found.extend(_messages(value))
    fault = data.get("fault")
    if isinstance(fault, Mapping):
        found.extend(_messages(fault))
    return found


def error_for_status(status: int, body: bytes | str, path: str | None = None) -> RemoteError:
    """Map a failed HTTP reply to the OSError subclass a Python caller expects."""
    message = service_message(body) or f"HTTP {status}"
    retriable = status in RETRY_STATUSES
    cls: type[RemoteError]
    if status == 404 or status == 410:
        cls = RemoteFileNotFoundError
    elif status in (401, 403):
        cls = RemotePermissionError
    elif status in (409, 412):
        cls = RemoteFileExistsError
    elif status in (408, 504):
        cls = RemoteTimeoutError
    else:
        cls = RemoteError
    return cls(message, status=status, path=path, retriable=retriable)


def retry_after_seconds(value: str | None) -> float | None:
    """Parse a ``Retry-After`` header given in seconds or as an HTTP date."""
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def same_origin(url_a: str, url_b: str) -> bool:
    """True when two URLs share scheme, host and port (where credentials may follow)."""
    a, b = urlsplit(url_a), urlsplit(url_b)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


BodyFactory = Callable[[], Any]


async def request(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    idempotent: bool,
    auth: BearerAuth | None = None,
    retry: RetryPolicy = RetryPolicy(),
    path: str | None = None,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
    data: BodyFactory | None = None,
    ok: Callable[[int], bool] = lambda status: 200 <= status < 300,
    on_error: Callable[[int, bytes, str | None], RemoteError] = error_for_status,
) -> aiohttp.ClientResponse:
    """Send a request with the shared policy; return the open, successful response.

    ``data`` is a factory so a body can be rebuilt for each attempt. The caller reads and
    releases the response (``async with await request(...) as resp``).
    """
    import aiohttp

    attempts = retry.attempts if idempotent else 1
    refreshed = False
    attempt = 0
    while True:
        attempt += 1
        sent_headers = {"User-Agent": USER_AGENT, **(headers or {})}
        auth_value = await auth.header() if auth is not None else None
        try:
            resp = await _send(session, method, url, sent_headers, auth_value, params, data)
        except (aiohttp.ClientConnectionError, asyncio.TimeoutError) as exc:
            if attempt >= attempts:
                raise _connection_error(exc, url, path) from exc
            wait = retry.delay(attempt)
            log.debug(
                "%s %s: %s; retry %d in %.2fs", method, url, type(exc).__name__, attempt, wait
            )
            await asyncio.sleep(wait)
            continue
        if ok(resp.status):
            return resp
        try:
            body = await resp.read()
        except (aiohttp.ClientError, asyncio.TimeoutError):
            body = b""
        finally:
            resp.release()
        if resp.status == 401 and auth is not None and auth_value and not refreshed:
            refreshed = True
            if await auth.refresh_after(auth_value, resp.status, body):
                attempt -= 1
                continue
        if resp.status in RETRY_STATUSES and attempt < attempts:
            wait = retry.delay(attempt, retry_after_seconds(resp.headers.get("Retry-After")))
            log.debug("%s %s: HTTP %d; retry %d in %.2fs", method, url, resp.status, attempt, wait)
            await asyncio.sleep(wait)
            continue
        raise on_error(resp.status, body, path)


async def fetch(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    idempotent: bool,
    retry: RetryPolicy = RetryPolicy(),
    path: str | None = None,
    **kwargs: Any,
) -> tuple[int, bytes]:
    """:func:`request` and read the whole body; a body cut off mid-way is fetched again
    when the request is idempotent. Returns the status and the body."""
    import aiohttp

    failures = 0
    while True:
        resp = await request(
            session, method, url, idempotent=idempotent, retry=retry, path=path, **kwargs
        )
        try:
            return resp.status, await resp.read()
        except (
            aiohttp.ClientPayloadError,
            aiohttp.ClientConnectionError,
            asyncio.TimeoutError,
        ) as exc:
            failures += 1
            if not idempotent or failures >= retry.attempts:
                raise _connection_error(exc, url, path) from exc
            log.debug("%s %s: body broke off (%s); fetching again", method, url, exc)
            await asyncio.sleep(retry.delay(failures))
        finally:
            resp.release()


async def _send(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    headers: dict[str, str],
    auth_value: str | None,
    params: Mapping[str, Any] | None,
    data: BodyFactory | None,
) -> aiohttp.ClientResponse:
    """One request, following redirects by hand so credentials stay on their origin."""
    origin = url
    for _ in range(MAX_REDIRECTS + 1):
        sent = dict(headers)
        if auth_value and same_origin(origin, url):
            sent["Authorization"] = auth_value
        log.debug("%s %s", method, url)
        resp = await session.request(
            method,
            url,
            headers=sent,
            params=params,
            data=data() if data is not None else None,
            allow_redirects=False,
        )
        location = resp.headers.get("Location")
        if resp.status not in (301, 302, 303, 307, 308) or not location:
            return resp
        resp.release()
        url = urljoin(str(resp.url), location)
        params = None
        if resp.status == 303:
            method, data = "GET", None
    raise RemoteError(f"too many redirects for {origin}", path=origin)


def _connection_error(exc: BaseException, url: str, path: str | None) -> RemoteError:
    host = urlsplit(url).netloc
    if isinstance(exc, asyncio.TimeoutError):
        return RemoteTimeoutError(f"no answer from {host} in time", path=path, retriable=True)
    detail = str(exc) or type(exc).__name__
    return RemoteConnectionError(
        f"connection to {host} failed: {detail}", path=path, retriable=True
    )


def sync_request(
    session: requests.Session,
    method: str,
    url: str,
    *,
    idempotent: bool,
    retry: RetryPolicy = RetryPolicy(),
    timeouts: Timeouts = Timeouts(),
    path: str | None = None,
    on_error: Callable[[int, bytes, str | None], RemoteError] = error_for_status,
    **kwargs: Any,
) -> requests.Response:
    """The blocking twin of :func:`request` for logins and account calls (no bearer refresh)."""
    import requests

    attempts = retry.attempts if idempotent else 1
    headers = {"User-Agent": USER_AGENT, **kwargs.pop("headers", {})}
    for attempt in range(1, attempts + 1):
        try:
            log.debug("%s %s", method, url)
            resp = session.request(
                method, url, headers=headers, timeout=(timeouts.connect, timeouts.read), **kwargs
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            if attempt >= attempts:
                timeout = isinstance(exc, requests.Timeout)
                cls = RemoteTimeoutError if timeout else RemoteConnectionError
                host = urlsplit(url).netloc
                raise cls(f"connection to {host} failed", path=path, retriable=True) from None
            time.sleep(retry.delay(attempt))
            continue
        if resp.ok:
            return resp
        if resp.status_code in RETRY_STATUSES and attempt < attempts:
            time.sleep(retry.delay(attempt, retry_after_seconds(resp.headers.get("Retry-After"))))
            continue
        raise on_error(resp.status_code, resp.content, path)
    raise AssertionError("unreachable")


def new_session(
    timeouts: Timeouts, verify: bool, *, connections: int = 64, read_bufsize: int = 2**16
) -> aiohttp.ClientSession:
    """An aiohttp session with our timeouts (no total limit: large transfers take long), TLS
    verification as asked, and at most ``connections`` connections. Call it inside the loop
    that will use it."""
    import aiohttp

    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections, ssl=verify),
        timeout=aiohttp.ClientTimeout(
            total=None, sock_connect=timeouts.connect, sock_read=timeouts.read
        ),
        read_bufsize=read_bufsize,
    )


class LazySession:
    """One aiohttp session per client: made on first use inside the running loop, and closed
    on that same loop, or its connections dropped when that loop is gone or is the caller's."""

    def __init__(
        self, timeouts: Timeouts, verify: bool, *, connections: int = 64, read_bufsize: int = 2**16
    ) -> None:
        self._make = lambda: new_session(
            timeouts, verify, connections=connections, read_bufsize=read_bufsize
        )
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def get(self) -> aiohttp.ClientSession:
        """The session, made now if there is none (or it was closed)."""
        if self._session is None or self._session.closed:
            self._session = self._make()
            self._loop = asyncio.get_running_loop()
        return self._session

    def close(self) -> None:
        """Close the session from any thread (a later :meth:`get` makes a new one)."""
        session, loop = self._session, self._loop
        self._session = self._loop = None
        if session is None or session.closed:
            return
        if loop is not None and loop.is_running() and not loop.is_closed():
            from fsspec.asyn import sync

            try:
                sync(loop, session.close, timeout=2)
                return
            except Exception:
                log.debug("could not close the session on its loop; dropping its connections")
        if session.connector is not None:
            session.connector._close()
