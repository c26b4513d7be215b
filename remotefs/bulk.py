"""Bulk downloads: one plain GET whose body a worker thread copies through one reused buffer.

Why: reading a large body through aiohttp allocates a fresh ``bytes`` object for every socket
read (and copies it again in the parser); glibc hands that memory back and forth to the
kernel, and the page faults cost more than the copy itself. A blocking ``readinto`` loop on
one 64 KiB buffer allocates nothing per chunk, so a large download into a local file runs at
the speed of ``curl`` or better with flat memory.

Policy: this is a fast lane, not a second HTTP client. It sends one request, follows no
redirect and retries nothing. It reports the status, and copies the body only for a
``200 OK``; a transport failure ends the copy early, and the caller finishes whatever is
missing through :mod:`remotefs.http`, which owns retries, token refresh and error mapping.
"""

from __future__ import annotations

import asyncio
import http.client
import socket
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from remotefs.http import USER_AGENT, Timeouts

BUFFER_SIZE = 64 << 10  # larger writes are slower into the page cache and no faster to read

Writer = Callable[[memoryview], object]


@dataclass(frozen=True)
class BulkReply:
    """What one bulk GET did: the status, the announced body length, the bytes written."""

    status: int
    length: int | None
    copied: int
    broken: bool = False  # the connection failed or closed before the body was complete


class BulkGet:
    """One blocking GET of ``url`` whose ``200`` body goes to ``write``; :meth:`abort` stops
    it from another thread."""

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str],
        *,
        timeouts: Timeouts = Timeouts(),
        verify: bool = True,
        buffer_size: int = BUFFER_SIZE,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"bulk downloads need an http(s) URL, not {url!r}")
        self._parts = parts
        self._headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **headers}
        self._timeouts = timeouts
        self._verify = verify
        self._buffer_size = buffer_size
        self._aborted = threading.Event()
        self._conn: http.client.HTTPConnection | None = None

    def __repr__(self) -> str:
        return f"BulkGet({self._parts.scheme}://{self._parts.netloc}{self._parts.path})"

    def abort(self) -> None:
        """Stop the copy soon: after the current chunk, or at once if it waits on the socket."""
        self._aborted.set()
        conn = self._conn
        sock = conn.sock if conn is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def run(self, write: Writer) -> BulkReply:
        """Send the request; copy a ``200`` body into ``write`` chunk by chunk.

        Errors raised by ``write`` (a full disk) propagate; network failures do not, they
        end the copy and are reported as ``broken``.
        """
        conn = self._connection()
        self._conn = conn
        target = self._parts.path or "/"
        if self._parts.query:
            target += f"?{self._parts.query}"
        try:
            try:
                conn.connect()
                if conn.sock is not None:
                    conn.sock.settimeout(self._timeouts.read)
                if self._aborted.is_set():
                    return BulkReply(0, None, 0, broken=True)
                conn.request("GET", target, headers=self._headers)
                resp = conn.getresponse()
            except (OSError, http.client.HTTPException):
                return BulkReply(0, None, 0, broken=True)
            if resp.status != 200:
                return BulkReply(resp.status, resp.length, 0)
            return self._copy(resp, write)
        finally:
            self._conn = None
            conn.close()

    def _connection(self) -> http.client.HTTPConnection:
        """A connection (not yet open) with the connect timeout and TLS verification as asked."""
        host, port = self._parts.hostname or "", self._parts.port
        conn: http.client.HTTPConnection
        if self._parts.scheme == "https":
            context = ssl.create_default_context()
            if not self._verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            conn = http.client.HTTPSConnection(
                host, port, timeout=self._timeouts.connect, context=context
            )
        else:
            conn = http.client.HTTPConnection(host, port, timeout=self._timeouts.connect)
        return conn

    def _copy(self, resp: http.client.HTTPResponse, write: Writer) -> BulkReply:
        length = resp.length  # http.client counts it down as the body is read
        buffer = bytearray(self._buffer_size)
        view = memoryview(buffer)
        copied = 0
        while not self._aborted.is_set():
            try:
                count = resp.readinto(buffer)
            except (OSError, http.client.HTTPException):
                return BulkReply(200, length, copied, broken=True)
            if not count:
                break
            write(view[:count])
            copied += count
        complete = length is None or copied == length
        return BulkReply(200, length, copied, broken=not complete)


async def bulk_get(
    url: str,
    headers: Mapping[str, str],
    write: Writer,
    *,
    timeouts: Timeouts = Timeouts(),
    verify: bool = True,
) -> BulkReply:
    """Run a :class:`BulkGet` in a worker thread. ``write`` is called in that thread.

    Cancelling the awaiting task aborts the copy and waits for the thread to let go of
    ``write``, so the caller may close its file as soon as this returns or raises.
    """
    job = BulkGet(url, headers, timeouts=timeouts, verify=verify)
    done = asyncio.get_running_loop().run_in_executor(None, job.run, write)
    try:
        return await asyncio.shield(done)
    except asyncio.CancelledError:
        job.abort()
        await asyncio.wait([done])
        raise
