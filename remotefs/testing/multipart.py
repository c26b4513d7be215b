"""A streaming ``multipart/form-data`` reader (RFC 7578) for emulators that take large uploads.

Why not aiohttp's reader: it copies each chunk of a part two or three times (joining, then a
window of the previous and the current chunk), so the emulator, not the client under test,
bounded upload speed. This reader searches each received chunk once for the delimiter and
hands on views of it: the body is not copied at all on its way to ``write``.

Scope: part headers as clients send them (``Content-Disposition`` with ``name`` and
``filename``/``filename*``, ``Content-Type``); no nested multiparts, no transfer encodings.
"""

from __future__ import annotations

import email.message
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import StreamReader
from aiohttp.multipart import content_disposition_filename, parse_content_disposition

__all__ = ["FormPart", "MultipartError", "MultipartStream", "boundary_of"]

HEADER_LIMIT = 16 << 10


class MultipartError(ValueError):
    """The body is not well-formed multipart."""


@dataclass(frozen=True)
class FormPart:
    """The headers of one part: its form field name, its file name (None for a plain field)."""

    name: str | None
    filename: str | None
    headers: dict[str, str] = field(default_factory=dict)


def boundary_of(content_type: str) -> bytes:
    """The ``boundary`` parameter of a multipart ``Content-Type`` header."""
    message = email.message.Message()
    message["Content-Type"] = content_type
    boundary = message.get_param("boundary")
    if not isinstance(boundary, str) or not 0 < len(boundary) <= 70:
        raise MultipartError("multipart body without a valid boundary")
    return boundary.encode("latin-1")


class MultipartStream:
    """The parts of a multipart body, read from ``content`` as they arrive.

    Call :meth:`next_part` for each part's headers, then :meth:`read_into` or :meth:`read`
    for its body (an unread body is skipped by the next :meth:`next_part`).
    """

    def __init__(self, content: StreamReader, boundary: bytes) -> None:
        self._content = content
        self._delimiter = b"\r\n--" + boundary
        self._pending = b"\r\n"  # so the first delimiter line matches like the others
        self._in_body = False
        self._done = False

    async def next_part(self) -> FormPart | None:
        """The next part's headers, or None after the closing delimiter."""
        if self._in_body:
            await self.read_into(lambda view: None)
        if self._done:
            return None
        await self._skip_past_delimiter()
        while len(self._pending) < 2:
            self._pending += await self._receive()
        if self._pending.startswith(b"--"):  # the closing delimiter; the epilogue is ignored
            self._done = True
            return None
        if (await self._take_line()).strip(b" \t"):
            raise MultipartError("garbage after a multipart delimiter")
        headers: dict[str, str] = {}
        while line := await self._take_line():
            name, sep, value = line.decode("utf-8", "replace").partition(":")
            if not sep:
                raise MultipartError("malformed part header")
            headers[name.strip().lower()] = value.strip()
        disposition, params = parse_content_disposition(headers.get("content-disposition"))
        if disposition != "form-data":
            raise MultipartError("a form part needs Content-Disposition: form-data")
        filename = content_disposition_filename(params, "filename")
        self._in_body = True
        return FormPart(params.get("name"), filename, headers)

    async def read_into(self, write: Callable[[memoryview], object]) -> int:
        """Hand the current part's body to ``write`` piece by piece; return its length.

        Each received chunk is searched once and handed on as a view, not copied; only the
        few bytes that could start a delimiter wait for the next chunk.
        """
        if not self._in_body:
            return 0
        keep = len(self._delimiter) - 1
        data, total = self._pending, 0
        while True:
            end = data.find(self._delimiter)
            if end >= 0:
                total += _hand(write, data, end)
                self._pending, self._in_body = data[end:], False
                return total
            ready = max(0, len(data) - keep)
            total += _hand(write, data, ready)
            tail, chunk = data[ready:], await self._receive()
            if len(chunk) < keep:  # too short to rule out a delimiter: look again, together
                data = tail + chunk
                continue
            joint = tail + chunk[:keep]
            end = joint.find(self._delimiter)
            if end >= 0:  # the delimiter starts in the tail
                total += _hand(write, joint, end)
                self._pending, self._in_body = joint[end:] + chunk[keep:], False
                return total
            total += _hand(write, tail, len(tail))
            data = chunk

    async def read(self, limit: int) -> bytes:
        """The current part's body, of which at most ``limit`` bytes are kept."""
        kept = bytearray()

        def keep(view: memoryview) -> None:
            kept.extend(view[: max(0, limit - len(kept))])

        await self.read_into(keep)
        return bytes(kept)

    async def _skip_past_delimiter(self) -> None:
        """Drop everything up to and including the next delimiter (the preamble, at first)."""
        keep = len(self._delimiter) - 1
        while (end := self._pending.find(self._delimiter)) < 0:
            self._pending = self._pending[-keep:] + await self._receive()
        self._pending = self._pending[end + len(self._delimiter) :]

    async def _take_line(self) -> bytes:
        """The next line (without its CRLF), consumed."""
        while (end := self._pending.find(b"\r\n")) < 0:
            if len(self._pending) > HEADER_LIMIT:
                raise MultipartError("a multipart header line is too long")
            self._pending += await self._receive()
        line, self._pending = self._pending[:end], self._pending[end + 2 :]
        return line

    async def _receive(self) -> bytes:
        chunk = await self._content.readany()
        if not chunk:
            raise MultipartError("the multipart body ended early")
        return chunk


def _hand(write: Callable[[memoryview], object], data: bytes, count: int) -> int:
    """Pass ``data[:count]`` to ``write`` as a view (nothing when empty); return ``count``."""
    if count > 0:
        with memoryview(data) as view:
            write(view[:count])
    return count
