"""Service-agnostic fault injection for emulators: added latency, 503s and bodies cut mid-stream.

Policy: every request first waits ``latency_ms``. Then, with probability ``fail_rate``, it fails
the way real front ends fail:

* a ``503 Service Unavailable`` answered *without* calling the handler, so nothing happened; or
* for GET only, and only when the response has a body of at least two bytes: the headers announce
  the full ``Content-Length``, about half of the body is written, and the connection is closed
  (the client sees a truncated payload). Writes are never cut, so a cut never hides a done write.

When the cut was drawn but the response turns out not to be cuttable, the client gets the 503
instead (the GET handler has run then; GETs only read), so the failure rate stays ``fail_rate``.
Draws come from one ``random.Random`` seeded with ``seed``; ``exempt(request)`` lets chosen
requests pass untouched.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import hdrs, web
from aiohttp.abc import AbstractStreamWriter

from remotefs.testing.sendfile import FileSlice

if TYPE_CHECKING:
    from aiohttp.typedefs import Middleware

__all__ = ["FaultInjector"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FaultInjector:
    """Adds latency and random failures to an aiohttp application through :attr:`middleware`.

    ``injected`` counts the failures injected so far; ``fail_rate`` and ``latency_ms`` may be
    changed while the server runs.
    """

    def __init__(
        self,
        fail_rate: float = 0.0,
        latency_ms: int = 0,
        seed: int | None = None,
        exempt: Callable[[web.Request], bool] | None = None,
    ) -> None:
        self.fail_rate = fail_rate
        self.latency_ms = latency_ms
        self.exempt = exempt
        self.injected = 0
        self._rng = random.Random(seed)

    @property
    def middleware(self) -> Middleware:
        """The aiohttp middleware applying this injector's policy."""

        @web.middleware
        async def inject_faults(request: web.Request, handler: Handler) -> web.StreamResponse:
            if self.exempt is not None and self.exempt(request):
                return await handler(request)
            if self.latency_ms > 0:
                await asyncio.sleep(self.latency_ms / 1000)
            if self._rng.random() >= self.fail_rate:
                return await handler(request)
            self.injected += 1
            if request.method == hdrs.METH_GET and self._rng.random() < 0.5:
                cut = _cut_short(await handler(request))
                if cut is not None:
                    return cut
            return web.Response(status=503, text="Service Unavailable")

        return inject_faults


def _cut_short(response: web.StreamResponse) -> web.StreamResponse | None:
    """`response` rigged to stop after half its body, or None when it has no body to cut."""
    if isinstance(response, FileSlice):
        if response.count < 2:
            return None
        response.cut_after = response.count // 2
        return response
    if isinstance(response, web.Response) and isinstance(response.body, bytes):
        if len(response.body) < 2:
            return None
        return _TruncatedBody(response, response.body)
    return None


class _TruncatedBody(web.StreamResponse):
    """Replays a buffered response's status and headers but only half its body, then hangs up."""

    def __init__(self, original: web.Response, body: bytes) -> None:
        dropped = ("content-length", "transfer-encoding")
        headers = {k: v for k, v in original.headers.items() if k.lower() not in dropped}
        super().__init__(status=original.status, reason=original.reason, headers=headers)
        self._cut_body = body
        self.content_length = len(body)

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        """Send headers and the first half of the body, then close the connection."""
        if self.prepared:
            return await super().prepare(request)
        writer = await super().prepare(request)
        await self.write(self._cut_body[: len(self._cut_body) // 2])
        if writer is not None:
            await writer.drain()
        if request.transport is not None:
            request.transport.close()
        return writer
