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
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

from remotefs.http import USER_AGENT, Timeouts

log = logging.getLogger("remotefs.http")

BUFFER_SIZE = 64 << 10  # larger writes are slower into the page cache and no faster to read
REPLY_LIMIT = 1 << 20  # an upload's reply is a short JSON document
WORKERS = 8  # transfers at once through the lane; more wait for a slot
SLOT_POLL = 0.05  # seconds between looks at the abort flag while waiting for a slot
_SLOTS = threading.BoundedSemaphore(WORKERS)

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
            raise ValueError("bulk transfers need an http(s) URL with a host")
        self.method = method
        self._parts = parts
        self._headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **headers}
        self._timeouts = timeouts
        self._verify = verify
        self._buffer = bytearray(buffer_size)
        self._aborted = threading.Event()
        self._conn: http.client.HTTPConnection | None = None

    def __repr__(self) -> str:
        port = f":{self._parts.port}" if self._parts.port else ""
        where = f"{self._parts.scheme}://{self._parts.hostname}{port}{self._parts.path}"
        return f"{type(self).__name__}({self.method} {where})"

    @property
    def aborted(self) -> bool:
        """True once :meth:`abort` was called."""
        return self._aborted.is_set()

    def abort(self) -> None:
        """Stop soon: after the current chunk, or at once if it waits on the socket."""
        self._aborted.set()
        conn = self._conn
        sock = conn.sock if conn is not None else None
        if sock is not None:
            try:
                # The plain socket's shutdown: SSLSocket.shutdown drops its TLS state first,
                # and a send racing with it in the worker would go out unencrypted.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass

    def _open(self) -> http.client.HTTPConnection | None:
        """A connected connection with the read timeout set; None if that failed or the
        exchange was aborted meanwhile."""
        if self._aborted.is_set():
            return None
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

        A stream that ends early or holds more than its share (a file that changed), a
        failing stream and a network failure are reported as ``broken``: the caller's regular
        path then reads the stream again, and reports what it finds.
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
                if sent != length:
                    return BulkReply(0, None, max(sent, 0), broken=True)
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
        leave. Returns the count sent: short when a stream ran dry, -1 when one held more."""
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
            if part.readinto(view[:1]):  # more than announced: not the body we measured
                return -1
        return sent


def _work(job: BulkExchange, run: Callable[[], T], report: Callable[..., object]) -> None:
    """The worker thread: wait for a slot (or the abort), run, hand the outcome to ``report``."""
    while not (slot := _SLOTS.acquire(timeout=SLOT_POLL)) and not job.aborted:
        pass
    try:
        outcome = run()
    except BaseException as exc:  # handed to the awaiting task, which raises it
        report(None, exc)
    else:
        report(outcome, None)
    finally:
        if slot:
            _SLOTS.release()


async def _in_worker(job: BulkExchange, run: Callable[[], T]) -> T:
    """``run()`` in a daemon thread (a transfer never holds up the interpreter's exit).

    Cancelling the caller aborts ``job``, then waits for the thread, through further
    cancellations too, so whatever it reads or writes may be closed once this returns.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def settle(outcome: Any, error: BaseException | None) -> None:
        if done.done():
            return
        if error is None:
            done.set_result(outcome)
        else:
            done.set_exception(error)

    def report(outcome: Any, error: BaseException | None) -> None:
        try:
            loop.call_soon_threadsafe(settle, outcome, error)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass

    log.debug("%s %r in a worker thread", job.method, job)
    threading.Thread(
        target=_work, args=(job, run, report), name="remotefs-bulk", daemon=True
    ).start()
    try:
        return await asyncio.shield(done)
    except asyncio.CancelledError:
        job.abort()
        while not done.done():
            try:
                await asyncio.shield(done)
            except asyncio.CancelledError:
                continue
            except Exception:  # the caller is cancelled: its error is the cancellation
                break
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
