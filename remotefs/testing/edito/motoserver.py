"""moto's S3 server in a child process that lives exactly as long as its parent wants it to.

moto keeps its state in module globals, so two emulators in one process would share buckets
and outlive each other's ``stop()``; a child process per emulator keeps them apart and keeps
moto's whole-body buffering out of the emulator's memory. The child prints one JSON line
(``{"port": N}``) once moto listens on loopback, and stops when its stdin closes: on
:meth:`MotoProcess.stop`, or when the parent dies for any reason. It ignores SIGINT, so a
Ctrl-C in a terminal reaches the parent only, which then stops it. The child serves moto's
WSGI application the way ``ThreadedMotoServer`` does, less the duplicate ``Server`` header.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

__all__ = ["MotoProcess", "serve"]


class MotoProcess:
    """A moto server in a child process, on a free loopback port."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.url = ""
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> MotoProcess:
        """Spawn the child and wait for its ready line."""
        code = f"import sys; from {__name__} import serve; serve(sys.argv[1])"
        command = [sys.executable, "-c", code, self.host]
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        try:
            port = int(json.loads(line)["port"])
        except (ValueError, KeyError, TypeError):
            self._proc = proc
            self.stop()
            raise RuntimeError(f"moto did not start (exit code {proc.returncode})") from None
        self._proc = proc
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        """Close the child's stdin and wait for it to exit (killed after a grace period)."""
        proc, self._proc = self._proc, None
        self.url = ""
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _one_server_header(app: WSGIApp) -> WSGIApp:
    """`app` without its own ``Server`` header: werkzeug sends one already, and strict HTTP
    parsers (aiohttp's in debug mode) refuse a response carrying two."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            kept = [(k, v) for k, v in headers if k.lower() != "server"]
            return start_response(status, kept, *exc_info)

        return app(environ, start)

    return wrapped


def serve(host: str) -> None:
    """Child side: run moto on `host` until stdin reaches end of file."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.getLogger("werkzeug").disabled = True
    app = _one_server_header(DomainDispatcherApplication(create_backend_app))
    server = make_server(host, 0, app, threaded=True, request_handler=MotoRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(json.dumps({"port": server.server_port}), flush=True)
    os.dup2(2, 1)  # anything printed later must not fill a pipe nobody reads
    sys.stdin.buffer.read()
    server.shutdown()
