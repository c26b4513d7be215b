"""The Agave v2 Files protocol over aiohttp: listings, media, history, actions.

This module knows Agave's quirks and nothing of fsspec: the self entry and the offset rule of
listings, the gateway's 401 ``fault`` that means an expired token (while a 401 inside the Agave
envelope means no permission), uploads that are only *queued* and complete later (watched
through the file's history), and 416 on a range that runs past the end of a file.
"""

from __future__ import annotations

import asyncio
import inspect
import io
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import quote

from remotefs.agave.entries import Entry
from remotefs.agave.paths import AgavePath
from remotefs.errors import (
    RemoteError,
    RemoteFileExistsError,
    RemoteIsADirectoryError,
    RemoteNotADirectoryError,
    RemotePermissionError,
    RemoteTimeoutError,
    TransferError,
)
from remotefs.http import (
    RETRY_STATUSES,
    LazySession,
    RetryPolicy,
    Timeouts,
    error_for_status,
    fetch,
    request,
    service_message,
)

if TYPE_CHECKING:
    import aiohttp

    from remotefs.http import BearerAuth

UploadBody = io.RawIOBase | io.BufferedIOBase  # a binary stream that can ``readinto``
CHUNK = 1 << 20
BULK_MIN = 8 << 20  # files this large are downloaded and uploaded through remotefs.bulk
DEFAULT_PAGE_SIZE = 1000
# At most two children ('.' and '..' from the storage adapter) are skipped while using a
# slot each, so a page that is short by more than this proves the listing is complete.
SKIPPED_SLOTS = 2


def is_token_error(status: int, body: bytes) -> bool:
    """True when a 401 comes from the API gateway (bad or expired token), not the service."""
    if status != 401:
        return False
    if b"ams:fault" in body:
        return True
    try:
        data = json.loads(body)
    except ValueError:
        return True
    if isinstance(data, dict) and data.get("status") == "error" and "fault" not in data:
        return False
    return True


def agave_error(status: int, body: bytes, path: str | None) -> RemoteError:
    """Map an Agave reply to an OSError, reading the service's message where codes are shared."""
    message = service_message(body)
    lower = message.lower()
    if status == 400 and "already exists" in lower:
        return RemoteFileExistsError(message, status=status, path=path)
    if status == 400 and "not a directory" in lower:
        return RemoteNotADirectoryError(message, status=status, path=path)
    if status == 501 and "directory" in lower:
        return RemoteIsADirectoryError(message, status=status, path=path)
    if status == 401:
        return RemotePermissionError(message or "permission denied", status=status, path=path)
    return error_for_status(status, body, path)


class AgaveClient:
    """An authenticated Agave v2 Files client; one aiohttp session, made on first use."""

    def __init__(
        self,
        base_url: str,
        auth: BearerAuth,
        *,
        retry: RetryPolicy = RetryPolicy(),
        timeouts: Timeouts = Timeouts(),
        verify: bool = True,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.retry = retry
        self.timeouts = timeouts
        self.verify = verify
        self.page_size = page_size
        self.sessions = LazySession(timeouts, verify, read_bufsize=CHUNK)

    def __repr__(self) -> str:
        return f"AgaveClient({self.base_url!r})"

    async def session(self) -> aiohttp.ClientSession:
        """The shared session (created inside the running event loop)."""
        return await self.sessions.get()

    def url(self, endpoint: str, path: AgavePath) -> str:
        """``{base}/files/v2/{endpoint}/system/SYSTEM/path``."""
        return f"{self.base_url}/files/v2/{endpoint}/system/{path.url_path()}"

    async def _policy(self, path: AgavePath) -> dict[str, Any]:
        """The session and keywords every Agave request shares."""
        return {
            "session": await self.session(),
            "auth": self.auth,
            "retry": self.retry,
            "path": path.fs_path(),
            "on_error": agave_error,
        }

    @asynccontextmanager
    async def _call(
        self, method: str, url: str, path: AgavePath, *, idempotent: bool, **kwargs: Any
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        policy = await self._policy(path)
        resp = await request(method=method, url=url, idempotent=idempotent, **policy, **kwargs)
        try:
            yield resp
        finally:
            resp.release()

    async def _result(
        self, method: str, url: str, path: AgavePath, *, idempotent: bool, **kwargs: Any
    ) -> tuple[int, Any]:
        policy = await self._policy(path)
        status, body = await fetch(
            method=method, url=url, idempotent=idempotent, **policy, **kwargs
        )
        return status, _envelope_result(status, body)

    # -- listings -------------------------------------------------------------------------

    async def listing_page(self, path: AgavePath, limit: int, offset: int) -> list[Entry]:
        """One raw page of ``files/v2/listings`` (self entry first when offset is 0)."""
        params = {"limit": str(limit), "offset": str(offset)}
        url = self.url("listings", path)
        _, result = await self._result("GET", url, path, idempotent=True, params=params)
        return list(result or [])

    async def stat(self, path: AgavePath) -> Entry:
        """The entry describing ``path`` itself (a directory's ``"."`` entry, or the file)."""
        page = await self.listing_page(path, 1, 0)
        if not page:
            raise RemoteError("Agave returned an empty listing", path=path.fs_path())
        return page[0]

    async def list_dir(
        self, path: AgavePath, max_pages: int | None = None
    ) -> tuple[Entry, list[Entry], bool]:
        """``path``'s own entry, its children, and whether that is all of them.

        Reads pages until the listing is complete, or ``max_pages`` pages.
        """
        limit = self.page_size
        page = await self.listing_page(path, limit, 0)
        if not page:
            raise RemoteError("Agave returned an empty listing", path=path.fs_path())
        me, children = page[0], list(page[1:])
        if me.get("type") != "dir":
            return me, [], True
        got, offset, expected, pages = len(children), limit, limit - 1, 1
        while got + SKIPPED_SLOTS >= expected:
            if max_pages is not None and pages >= max_pages:
                return me, children, False
            page = [e for e in await self.listing_page(path, limit, offset) if e.get("name") != "."]
            if not page:
                break
            children.extend(page)
            got, offset, expected, pages = len(page), offset + limit, limit, pages + 1
        return me, children, True

    # -- media ----------------------------------------------------------------------------

    async def head(self, path: AgavePath) -> dict[str, str]:
        """The headers of a download, without its body."""
        url = self.url("media", path)
        async with self._call("HEAD", url, path, idempotent=True) as resp:
            return dict(resp.headers)

    async def download(
        self,
        path: AgavePath,
        sink: Callable[[bytes], Awaitable[object] | object],
        start: int = 0,
        end: int | None = None,
    ) -> int:
        """Stream bytes ``[start, end)`` (to EOF when end is None) into ``sink``; return the count.

        A body cut off mid-way is resumed with a Range from the last byte received, so a
        broken connection costs a retry, not the transfer. The count is checked against the
        size the server announced.
        """
        import aiohttp

        pos, total, failures = start, end, 0
        url = self.url("media", path)
        while total is None or pos < total:
            headers = {}
            if pos > 0 or end is not None:
                last = "" if total is None else str(total - 1)
                headers["Range"] = f"bytes={pos}-{last}"
            try:
                async with self._call("GET", url, path, idempotent=True, headers=headers) as resp:
                    total = _expected_end(resp, pos, total, bool(headers), path)
                    async for chunk in resp.content.iter_chunked(CHUNK):
                        if pos + len(chunk) > total:
                            chunk = chunk[: total - pos]
                        pending = sink(chunk)
                        if inspect.isawaitable(pending):
                            await pending
                        pos += len(chunk)
                        if pos >= total:
                            break
            except (
                aiohttp.ClientPayloadError,
                aiohttp.ClientConnectionError,
                asyncio.TimeoutError,
            ):
                failures += 1
                if failures >= self.retry.attempts:
                    raise TransferError(
                        f"download broke off at byte {pos} and could not be resumed",
                        path=path.fs_path(),
                        retriable=True,
                    ) from None
                await asyncio.sleep(self.retry.delay(failures))
                continue
            if pos < total:
                failures += 1
                if failures >= self.retry.attempts:
                    raise TransferError(
                        f"download ended at byte {pos}, expected {total}", path=path.fs_path()
                    )
        return pos - start

    async def download_to(
        self, path: AgavePath, out: BinaryIO, size: int, progress: Callable[[int], object]
    ) -> int:
        """Write the whole file (``size`` bytes expected) into ``out``; return the byte count.

        A large file goes through the bulk lane (:mod:`remotefs.bulk`) first; whatever that
        leaves undone (an error status, a broken connection) :meth:`download` fetches from
        the first missing byte, with its retries, token refresh and error messages.
        """
        from remotefs.bulk import bulk_get

        def write(chunk: bytes | memoryview) -> None:
            out.write(chunk)
            progress(len(chunk))

        copied = 0
        if size >= BULK_MIN:
            headers = {"Authorization": await self.auth.header()}
            url = self.url("media", path)
            reply = await bulk_get(url, headers, write, timeouts=self.timeouts, verify=self.verify)
            if reply.status == 200 and not reply.broken:
                return reply.moved
            copied = reply.moved
        return copied + await self.download(path, write, start=copied)

    async def read(self, path: AgavePath, start: int = 0, end: int | None = None) -> bytes:
        """Bytes ``[start, end)`` of a file, in memory."""
        parts: list[bytes] = []
        await self.download(path, parts.append, start, end)
        return b"".join(parts)

    async def upload(
        self, parent: AgavePath, name: str, open_body: Callable[[], UploadBody], size: int = 0
    ) -> Entry:
        """Multipart upload of ``name`` (``size`` bytes) into the directory ``parent``; returns
        the queued file.

        The body streams from ``open_body()`` (called again for each attempt). A large body
        goes through the bulk lane (:mod:`remotefs.bulk`) first; if that breaks, meets a
        redirect, a transient error or an expired token (renewed first), the regular path
        sends it again with its retries. Re-sending an upload is safe: it replaces the file
        at a fixed path.
        """
        import aiohttp

        if size >= BULK_MIN:
            queued = await self._bulk_upload(parent, name, open_body, size)
            if queued is not None:
                return queued

        def form() -> aiohttp.FormData:
            data = aiohttp.FormData()
            data.add_field("fileName", name)
            data.add_field(
                "fileToUpload",
                open_body(),
                filename=name,
                content_type="application/octet-stream",
            )
            return data

        url = self.url("media", parent)
        _, result = await self._result("POST", url, parent.child(name), idempotent=True, data=form)
        return result or {}

    async def _bulk_upload(
        self, parent: AgavePath, name: str, open_body: Callable[[], UploadBody], size: int
    ) -> Entry | None:
        """The upload through the bulk lane; None when the regular path should try again."""
        from remotefs.bulk import bulk_upload

        boundary = uuid.uuid4().hex
        head, tail = _multipart_frame(boundary, name)
        headers = {
            "Authorization": await self.auth.header(),
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        }
        url, length = self.url("media", parent), len(head) + size + len(tail)
        with open_body() as body:
            reply = await bulk_upload(
                "POST", url, headers, [head, body, tail], length,
                timeouts=self.timeouts, verify=self.verify,
            )  # fmt: skip
        target = parent.child(name).fs_path()
        if reply.status == 401 and not reply.broken:
            # Renew now, so the regular path sends the body once more, not twice.
            if not await self.auth.refresh_after(headers["Authorization"], 401, reply.body):
                raise agave_error(401, reply.body, target)
            return None
        if reply.broken or reply.status in RETRY_STATUSES or 300 <= reply.status < 400:
            return None
        if not 200 <= reply.status < 300:
            raise agave_error(reply.status, reply.body, target)
        return _envelope_result(reply.status, reply.body) or {}

    async def wait_staged(
        self, path: AgavePath, size: int, *, timeout: float, poll: float = 0.05
    ) -> Entry:
        """Wait until the upload of ``path`` is staged and has ``size`` bytes; return its entry.

        The latest ``STAGING_QUEUED`` event in the file's history marks our upload; whatever
        follows it says how staging went. ``*FAILED`` raises, a timeout raises.
        """
        deadline = time.monotonic() + timeout
        delay = poll
        while True:
            state = _staging_state(await self.history(path))
            if state == "failed":
                raise TransferError(
                    "the service failed to stage the upload (STAGING_FAILED)", path=path.fs_path()
                )
            if state == "done":
                entry = await self.stat(path)
                if int(entry.get("length", -1)) == size:
                    return entry
                if time.monotonic() > deadline:
                    raise TransferError(
                        f"uploaded {size} bytes but the service holds {entry.get('length')}",
                        path=path.fs_path(),
                    )
            if time.monotonic() > deadline:
                raise RemoteTimeoutError(
                    f"upload still not staged after {timeout:g}s", path=path.fs_path()
                )
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 2.0)

    async def history(self, path: AgavePath) -> list[Entry]:
        """Every history event of ``path``, oldest first; empty while it is not indexed yet."""
        events: list[Entry] = []
        url = self.url("history", path)
        offset, limit = 0, 500
        while True:
            params = {"limit": str(limit), "offset": str(offset)}
            try:
                _, page = await self._result("GET", url, path, idempotent=True, params=params)
            except FileNotFoundError:
                return events
            events.extend(page or [])
            if not page or len(page) < limit:
                return events
            offset += limit

    # -- actions --------------------------------------------------------------------------

    async def action(self, path: AgavePath, action: str, target: str) -> tuple[int, Entry]:
        """PUT a file action (mkdir, rename, copy, move) on ``path``; return status and result.

        mkdir and copy can be repeated safely, so only they are retried.
        """
        body = {"action": action, "path": target}
        url = self.url("media", path)
        status, result = await self._result(
            "PUT", url, path, idempotent=action in ("mkdir", "copy"), data=lambda: body
        )
        return status, result or {}

    async def delete(self, path: AgavePath) -> None:
        """Delete a file or a whole directory tree."""
        await self._result("DELETE", self.url("media", path), path, idempotent=True)


def _envelope_result(status: int, body: bytes) -> Any:
    """The ``result`` of an Agave JSON envelope (the whole document if it has none)."""
    if not body:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        raise RemoteError("Agave answered something that is not JSON", status=status) from None
    if isinstance(data, dict) and "result" in data:
        return data["result"]
    return data


def _multipart_frame(boundary: str, name: str) -> tuple[bytes, bytes]:
    """What goes before and after the file's bytes in an upload form: the ``fileName`` field
    (the name Agave keeps) and the ``fileToUpload`` part's headers; then the closing line."""
    shown = quote(name, safe=" !#$&'()*+,-.:;<=>?@[]^_`{|}~")  # no quote or backslash
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="fileName"\r\n'
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{name}\r\n"
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="fileToUpload"; filename="{shown}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    )
    return head.encode("utf-8"), f"\r\n--{boundary}--\r\n".encode("ascii")


def _expected_end(
    resp: aiohttp.ClientResponse, pos: int, total: int | None, ranged: bool, path: AgavePath
) -> int:
    """Where the body of ``resp`` ends, after checking the server honoured our Range."""
    length = resp.content_length
    if ranged and resp.status != 206:
        raise RemoteError(
            "the server ignored a Range request; cannot read part of the file",
            status=resp.status,
            path=path.fs_path(),
        )
    if length is None:
        if total is None:
            raise RemoteError("the server sent no Content-Length", path=path.fs_path())
        return total
    end = pos + length
    return end if total is None else min(end, total)


def _staging_state(events: list[Entry]) -> str:
    """``pending``, ``done`` or ``failed`` for the latest upload recorded in ``events``."""
    queued = [i for i, e in enumerate(events) if e.get("status") == "STAGING_QUEUED"]
    if not queued:
        return "pending"
    after = [str(e.get("status", "")) for e in events[queued[-1] + 1 :]]
    if not after:
        return "pending"
    if "COMPLETE" in after[-1]:
        return "done"
    if "FAILED" in after[-1]:
        return "failed"
    return "pending"
