"""The Agave v2 emulator: one tenant with users, OAuth clients, profiles, one storage system.

``AgaveEmulator(...).make_app()`` is an aiohttp application whose routes hang off the base
URL (``/clients/v2``, ``/token``, ``/profiles/v2``, ``/systems/v2``, ``/files/v2``). Middlewares,
outermost first: request log (``emu.requests``), fault injection, error envelopes, gateway
token check.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from aiohttp import web

from remotefs.testing.agave.auth import CALLER, Auth
from remotefs.testing.agave.envelope import base_url, envelope_errors, page, success
from remotefs.testing.agave.files import FileReads
from remotefs.testing.agave.store import AgaveError, Store, iso_time, new_uuid
from remotefs.testing.agave.writes import FileWrites
from remotefs.testing.faults import FaultInjector

__all__ = ["AgaveEmulator"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class AgaveEmulator:
    """State and configuration of one emulated Agave tenant; build servers with :meth:`make_app`."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        users: dict[str, str] | None = None,
        token_lifetime: float = 14400,
        staging_delay: float = 0.0,
        latency_ms: int = 0,
        fail_rate: float = 0.0,
        seed: int | None = None,
        system_id: str = "cic.storage",
        page_size: int = 100,
    ) -> None:
        self.users = dict(users) if users is not None else {"demo": "demo"}
        for name in self.users:
            if not name or any(c in name for c in "/:\x00") or name in (".", ".."):
                raise ValueError(f"invalid user name {name!r}")
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="agave-emulator-")
            data_dir = self._tmp.name
        self.data_dir = Path(data_dir)
        self.system_id = system_id
        self.page_size = page_size
        self.store = Store(self.data_dir, self.users)
        self.root: Path = self.store.root
        self.auth = Auth(self.users, token_lifetime)
        self.reads = FileReads(self.store, system_id, page_size, self.users)
        self.writes = FileWrites(self.store, system_id, staging_delay)
        self.fault_injector = FaultInjector(fail_rate=fail_rate, latency_ms=latency_ms, seed=seed)
        self.requests: list[tuple[str, str]] = []
        self._created = time.time()
        self._system_uuid = new_uuid("006")

    def expire_tokens(self) -> None:
        """Expire every access token issued so far; their next use gets the gateway 401."""
        self.auth.expire_tokens()

    def fail_staging(self, predicate: Callable[[str], bool] | None) -> None:
        """Uploads whose absolute path matches `predicate` end STAGING_FAILED (None: none do)."""
        self.writes.fail_predicate = predicate

    def close(self) -> None:
        """Remove the data directory if the emulator created it."""
        if self._tmp is not None:
            self._tmp.cleanup()

    def make_app(self) -> web.Application:
        """A fresh aiohttp application over this emulator's state."""
        app = web.Application(
            middlewares=[
                self._log_request,
                self.fault_injector.middleware,
                envelope_errors,
                self.auth.gateway,
            ]
        )
        app.add_routes(self.auth.routes())
        app.add_routes(
            [
                web.get("/profiles/v2/{username}", self.profile),
                web.get("/systems/v2", self.list_systems),
                web.get("/systems/v2/", self.list_systems),
                web.get("/systems/v2/{system}", self.get_system),
            ]
        )
        tail = "{path:(/.*)?}"
        for system in ("/system/{system}", ""):
            media = f"/files/v2/media{system}{tail}"
            app.add_routes(
                [
                    web.get(f"/files/v2/listings{system}{tail}", self.reads.listing),
                    web.get(f"/files/v2/history{system}{tail}", self.reads.history),
                    web.get(f"/files/v2/pems{system}{tail}", self.reads.permissions),
                    web.get(media, self.reads.download),
                    web.post(media, self.writes.upload),
                    web.put(media, self.writes.action),
                    web.delete(media, self.reads.delete),
                ]
            )
        app.on_cleanup.append(self._cleanup)
        return app

    async def _cleanup(self, app: web.Application) -> None:
        """Drop uploads that never reached their staging step."""
        self.writes.cancel_staging()

    @web.middleware
    async def _log_request(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Remember (method, path?query) of every request, for assertions in tests."""
        self.requests.append((request.method, request.path_qs))
        return await handler(request)

    # -- profiles --------------------------------------------------------------------------------

    async def profile(self, request: web.Request) -> web.Response:
        """GET /profiles/v2/me or /profiles/v2/{username}, in the seed's snake_case shape."""
        name = request.match_info["username"]
        user = CALLER.get() if name == "me" else name
        if user not in self.users:
            raise AgaveError(404, f"No user found with username {name}")
        created = datetime.fromtimestamp(self._created, timezone.utc).strftime("%Y%m%d%H%M%SZ")
        result = {
            "create_time": created,
            "email": f"{user}@example.org",
            "first_name": user,
            "full_name": user,
            "last_name": "",
            "mobile_phone": "",
            "phone": "",
            "status": "",
            "username": user,
        }
        return success(request, result, "User details retrieved successfully.")

    # -- systems ---------------------------------------------------------------------------------

    def _system_summary(self, request: web.Request) -> dict[str, Any]:
        """The storage system as listed."""
        return {
            "id": self.system_id,
            "name": f"{self.system_id} (emulated storage)",
            "type": "STORAGE",
            "description": "Local storage of the remotefs Agave emulator",
            "status": "UP",
            "public": False,
            "default": True,
            "_links": {"self": {"href": f"{base_url(request)}/systems/v2/{self.system_id}"}},
        }

    async def list_systems(self, request: web.Request) -> web.Response:
        """GET /systems/v2/ with the ``type``, ``default`` and ``public`` filters."""
        query = request.query
        wanted = (
            query.get("type", "STORAGE").upper() == "STORAGE"
            and query.get("default", "true").lower() == "true"
            and query.get("public", "false").lower() == "false"
        )
        found = [self._system_summary(request)] if wanted else []
        return success(request, page(request, found, self.page_size))

    async def get_system(self, request: web.Request) -> web.Response:
        """GET /systems/v2/{id}: the full description, storage block included."""
        system = request.match_info["system"]
        if system != self.system_id:
            raise AgaveError(404, f"No system found for user with id {system}")
        base = base_url(request)
        result = self._system_summary(request)
        result.update(
            uuid=self._system_uuid,
            owner="admin",
            site="localhost",
            revision=1,
            available=True,
            globalDefault=False,
            lastModified=iso_time(self._created),
            storage={
                "protocol": "LOCAL",
                "host": "localhost",
                "port": 0,
                "rootDir": "/",
                "homeDir": self.store.home_dir,
                "mirror": False,
                "zone": None,
                "resource": None,
                "auth": {"type": "LOCAL"},
            },
        )
        result["_links"].update(
            roles={"href": f"{base}/systems/v2/{self.system_id}/roles"},
            credentials={"href": f"{base}/systems/v2/{self.system_id}/credentials"},
            owner={"href": f"{base}/profiles/v2/admin"},
        )
        return success(request, result)
