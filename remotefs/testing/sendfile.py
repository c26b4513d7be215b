"""A file-slice response sent with sendfile(2), which fault injection can cut short.

aiohttp's ``FileResponse`` is not used for emulated downloads because it applies web-server
semantics no storage API has: it serves ``name.gz``/``name.br`` siblings when the client accepts
gzip, and answers conditional headers with 304/412. :class:`FileSlice` sends exactly the bytes
it was given, with the same zero-copy speed.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter

__all__ = ["FileSlice"]


class FileSlice(web.StreamResponse):
    """Bytes ``[offset, offset + count)`` of a file; ``cut_after`` drops the connection early."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        offset: int,
        count: int,
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(status=status, headers=headers)
        self.path = path
        self.offset = offset
        self.count = count
        self.content_length = count
        self.cut_after: int | None = None

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        """Send the headers, then the slice (or its first `cut_after` bytes and a closed socket)."""
        if self.prepared:
            return await super().prepare(request)
        send = self.count if self.cut_after is None else min(self.cut_after, self.count)
        with open(self.path, "rb") as fobj:
            writer = await super().prepare(request)
            transport = request.transport
            if request.method != "HEAD" and send > 0 and transport is not None:
                await asyncio.get_running_loop().sendfile(transport, fobj, self.offset, send)
        if self.cut_after is not None and transport is not None:
            transport.close()
        return writer
