"""Bulk transfers: one plain request whose large body a worker thread moves through one buffer.

Why: moving a large body through aiohttp allocates a fresh ``bytes`` object for every socket
read or file read (and copies it again on the way); glibc hands that memory back and forth to
the kernel, and the page faults cost more than the copy itself. A blocking loop of
``readinto`` on one 64 KiB buffer allocates nothing per chunk, so a large download into a local
file, or an upload from one, runs at the speed of ``curl`` with flat memory.

Policy: this is a fast lane, not a second HTTP client. It sends one request, follows no
redirect and retries nothing; network failures are reported, not raised. The caller does
whatever the lane left undone through :mod:`remotefs.http`, which owns retries, token refresh
and error mapping.
"""

from __future__ import annotations

import asyncio
import http.client
import logging
import socket
import ssl
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar
from urllib.parse import urlsplit

from remotefs.http import USER_AGENT, Timeouts

log = logging.getLogger("remotefs.http")

BUFFER_SIZE = 64 << 10  # larger writes are slower into the page cache and no faster to read
REPLY_LIMIT = 1 << 20  # an upload's reply is a short JSON document

Writer = Callable[[memoryview], object]
T = TypeVar("T")


class ReadsInto(Protocol):
    """A stream an upload body is read from (a file opened ``rb``, ``io.BytesIO``)."""

    def readinto(self, buffer: memoryview, /) -> int | None:
        """Fill ``buffer`` from the stream; the byte count, 0 at its end."""


BodyPart = bytes | ReadsInto  # an upload body: byte strings, and streams read to their end


@dataclass(frozen=True)
class BulkReply:
    """What one bulk request did: the status (0: no answer), the announced body length, the
    body bytes moved, and the reply body of an upload."""

    status: int
    length: int | None
    moved: int
    broken: bool = False  # the connection failed or closed before the body was complete
    body: bytes = b""


class BulkExchange:
    """One blocking HTTP exchange with ``url``; :meth:`abort` stops it from another thread."""

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str],
        *,
        method: str = "GET",
        timeouts: Timeouts = Timeouts(),
        verify: bool = True,
        buffer_size: int = BUFFER_SIZE,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"bulk transfers need an http(s) URL, not {url!r}")
        self.method = method
        self._parts = parts
        self._headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **headers}
        self._timeouts = timeouts
        self._verify = verify
        self._buffer = bytearray(buffer_size)
        self._aborted = threading.Event()
        self._conn: http.client.HTTPConnection | None = None

    def __repr__(self) -> str:
        where = f"{self._parts.scheme}://{self._parts.netloc}{self._parts.path}"
        return f"{type(self).__name__}({self.method} {where})"

    def abort(self) -> None:
        """Stop soon: after the current chunk, or at once if it waits on the socket."""
        self._aborted.set()
        conn = self._conn
        sock = conn.sock if conn is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _open(self) -> http.client.HTTPConnection | None:
        """A connected connection with the read timeout set, or None if that failed."""
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
        self._conn = conn
        try:
            conn.connect()
        except OSError:
            return None
        if conn.sock is not None:
            conn.sock.settimeout(self._timeouts.read)
        return None if self._aborted.is_set() else conn

    def _target(self) -> str:
        target = self._parts.path or "/"
        return f"{target}?{self._parts.query}" if self._parts.query else target

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


class BulkGet(BulkExchange):
    """A GET whose ``200`` body goes to a writer."""

    def run(self, write: Writer) -> BulkReply:
        """Send the request; copy a ``200`` body into ``write`` chunk by chunk.

        Errors raised by ``write`` (a full disk) propagate; network failures end the copy
        and are reported as ``broken``.
        """
        try:
            conn = self._open()
            if conn is None:
                return BulkReply(0, None, 0, broken=True)
            try:
                conn.request("GET", self._target(), headers=self._headers)
                resp = conn.getresponse()
            except (OSError, http.client.HTTPException):
                return BulkReply(0, None, 0, broken=True)
            if resp.status != 200:
                return BulkReply(resp.status, resp.length, 0)
            return self._copy(resp, write)
        finally:
            self._close()

    def _copy(self, resp: http.client.HTTPResponse, write: Writer) -> BulkReply:
        length = resp.length  # http.client counts it down as the body is read
        view = memoryview(self._buffer)
        copied = 0
        while not self._aborted.is_set():
            try:
                count = resp.readinto(self._buffer)
            except (OSError, http.client.HTTPException):
                return BulkReply(200, length, copied, broken=True)
            if not count:
                break
            write(view[:count])
            copied += count
        complete = length is None or copied == length
        return BulkReply(200, length, copied, broken=not complete)


class BulkUpload(BulkExchange):
    """A request whose body is ``length`` bytes made of byte strings and streams."""

    def run(self, parts: Sequence[BodyPart], length: int) -> BulkReply:
        """Send the body (streams are read with ``readinto``); return the status and reply.

        A stream that ends early or a network failure is reported as ``broken``; errors
        raised by a stream (an unreadable file) propagate.
        """
        try:
            conn = self._open()
            if conn is None:
                return BulkReply(0, None, 0, broken=True)
            try:
                conn.putrequest(self.method, self._target(), skip_accept_encoding=True)
                for name, value in {**self._headers, "Content-Length": str(length)}.items():
                    conn.putheader(name, value)
                conn.endheaders()
                sent = self._send(conn, parts, length)
                if sent < length:
                    return BulkReply(0, None, sent, broken=True)
                resp = conn.getresponse()
                return BulkReply(resp.status, resp.length, sent, body=resp.read(REPLY_LIMIT))
            except (OSError, http.client.HTTPException):
                return BulkReply(0, None, 0, broken=True)
        finally:
            self._close()

    def _send(
        self, conn: http.client.HTTPConnection, parts: Sequence[BodyPart], length: int
    ) -> int:
        """Send ``parts`` in ``length`` bytes: each stream gives what the byte strings after it
        leave. Returns the count sent (short when a stream ran dry)."""
        sock = conn.sock
        assert sock is not None
        view = memoryview(self._buffer)
        sent = 0
        for index, part in enumerate(parts):
            if isinstance(part, bytes):
                sock.sendall(part)
                sent += len(part)
                continue
            after = sum(len(p) for p in parts[index + 1 :] if isinstance(p, bytes))
            end = length - after
            while sent < end and not self._aborted.is_set():
                count = part.readinto(view[: min(len(view), end - sent)])
                if not count:
                    return sent
                sock.sendall(view[:count])
                sent += count
        return sent


async def _in_worker(job: BulkExchange, run: Callable[[], T]) -> T:
    """``run()`` in a worker thread; cancelling the caller aborts ``job`` and waits for the
    thread, so whatever it was reading or writing may be closed as soon as this returns."""
    log.debug("%s %r in a worker thread", job.method, job)
    done = asyncio.get_running_loop().run_in_executor(None, run)
    try:
        return await asyncio.shield(done)
    except asyncio.CancelledError:
        job.abort()
        await asyncio.wait([done])
        raise


async def bulk_get(
    url: str,
    headers: Mapping[str, str],
    write: Writer,
    *,
    timeouts: Timeouts = Timeouts(),
    verify: bool = True,
) -> BulkReply:
    """A :class:`BulkGet` in a worker thread; ``write`` is called in that thread."""
    job = BulkGet(url, headers, timeouts=timeouts, verify=verify)
    return await _in_worker(job, lambda: job.run(write))


async def bulk_upload(
    method: str,
    url: str,
    headers: Mapping[str, str],
    parts: Sequence[BodyPart],
    length: int,
    *,
    timeouts: Timeouts = Timeouts(),
    verify: bool = True,
) -> BulkReply:
    """A :class:`BulkUpload` in a worker thread; its streams are read in that thread."""
    job = BulkUpload(url, headers, method=method, timeouts=timeouts, verify=verify)
    return await _in_worker(job, lambda: job.run(parts, length))
