"""Run an aiohttp application on a real socket: in a background thread or in the foreground.

Tests use :class:`ServerThread` (one event loop on a daemon thread, port 0, ``.url`` once bound);
the ``remotefs-emulator`` command uses :func:`serve_forever`, which prints one JSON line when
ready and serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import abc
import asyncio
import json
import signal
import socket
import ssl
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from aiohttp import web

__all__ = ["ServerThread", "Startable", "serve_forever"]

SHUTDOWN_TIMEOUT = 2.0

_S = TypeVar("_S", bound="Startable")


def _bind(host: str, port: int) -> socket.socket:
    """Listen on (host, port) with SO_REUSEADDR; port 0 picks a free port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family)


def _url(sock: socket.socket, scheme: str = "http") -> str:
    """The base URL of a bound socket."""
    host, port = sock.getsockname()[:2]
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def _runner(app: web.Application) -> web.AppRunner:
    """An app runner without access logs and with a short graceful shutdown."""
    return web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)


class Startable(abc.ABC):
    """A ``with`` block around :meth:`start` (which returns self) and :meth:`stop`."""

    @abc.abstractmethod
    def start(self: _S) -> _S:
        """Start, and return self."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop (idempotent)."""

    def __enter__(self: _S) -> _S:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ServerThread(Startable):
    """An aiohttp application served from its own event loop on a daemon thread; over TLS
    when given an ``ssl_context``."""

    def __init__(
        self,
        app: web.Application,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> ServerThread:
        """Bind the socket, start serving, and return self once requests are accepted."""
        if self._thread is not None:
            raise RuntimeError("server already started")
        sock = _bind(self.host, self.port)
        loop = asyncio.new_event_loop()
        runner = _runner(self.app)
        try:
            loop.run_until_complete(runner.setup())
            site = web.SockSite(runner, sock, ssl_context=self.ssl_context)
            loop.run_until_complete(site.start())
        except BaseException:
            sock.close()
            loop.close()
            raise
        self.port = sock.getsockname()[1]
        self.url = _url(sock, "https" if self.ssl_context else "http")
        self._loop, self._runner = loop, runner
        self._thread = threading.Thread(target=loop.run_forever, name="ServerThread", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Shut the application down, stop the loop and join the thread."""
        loop, runner, thread = self._loop, self._runner, self._thread
        if loop is None or runner is None or thread is None:
            return
        self._loop = self._runner = self._thread = None
        asyncio.run_coroutine_threadsafe(_shutdown(runner), loop).result(SHUTDOWN_TIMEOUT + 10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


async def _shutdown(runner: web.AppRunner) -> None:
    """Clean the application up, then end the connection tasks still parked on the loop."""
    await runner.cleanup()
    leftovers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in leftovers:
        task.cancel()
    await asyncio.gather(*leftovers, return_exceptions=True)


def _url_only(url: str) -> dict[str, Any]:
    """Default ready line: just the base URL."""
    return {"url": url}


def serve_forever(
    app: web.Application,
    host: str = "127.0.0.1",
    port: int = 0,
    ready: Callable[[str], dict[str, Any]] = _url_only,
) -> None:
    """Serve `app` until SIGINT/SIGTERM; once bound, print ``json.dumps(ready(url))`` on stdout."""
    asyncio.run(_serve(app, host, port, ready))


async def _serve(
    app: web.Application, host: str, port: int, ready: Callable[[str], dict[str, Any]]
) -> None:
    """Coroutine behind :func:`serve_forever`."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = _runner(app)
    await runner.setup()
    try:
        sock = _bind(host, port)
        await web.SockSite(runner, sock).start()
        print(json.dumps(ready(_url(sock))), flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()
