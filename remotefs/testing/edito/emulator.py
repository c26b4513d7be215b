"""The EDITO emulator: Keycloak, the MinIO-like S3 + STS front and the process API, moto behind.

``EditoEmulator(...).start()`` runs moto in a child process (see
:mod:`~remotefs.testing.edito.motoserver`), creates the bucket ``oidc-<user>`` of every user,
then serves the Keycloak realm, the S3 front and the process API
(:mod:`~remotefs.testing.edito.processes`) from :class:`~remotefs.testing.server.ServerThread`
threads on loopback, one port each. Everything stops with :meth:`EditoEmulator.stop` (or the
``with`` block).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from remotefs.testing.edito.front import (
    ADMIN_KEY,
    ADMIN_SECRET,
    REGION,
    Handler,
    S3Front,
    bucket_of,
)
from remotefs.testing.edito.keycloak import Keycloak
from remotefs.testing.edito.motoserver import MotoProcess
from remotefs.testing.edito.processes import PREFIX, ProcessApi
from remotefs.testing.edito.sts import CredentialStore, Sts, is_sts
from remotefs.testing.faults import FaultInjector
from remotefs.testing.server import ServerThread, Startable

if TYPE_CHECKING:
    from aiohttp.typedefs import Middleware

__all__ = ["EditoEmulator"]

USER_NAME = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,56}[a-z0-9])?$")


class EditoEmulator(Startable):
    """Users, tokens, credentials, jobs and the four servers of one emulated EDITO."""

    def __init__(
        self,
        users: dict[str, str] | None = None,
        token_lifetime: float = 300,
        refresh_lifetime: float = 1800,
        credential_min: float = 900,
        credential_max: float = 604800,
        fail_rate: float = 0.0,
        latency_ms: int = 0,
        seed: int | None = None,
        realm: str = "datalab",
        host: str = "127.0.0.1",
        port: int = 0,
        auth_port: int = 0,
        process_port: int = 0,
        job_step_seconds: float = 0.5,
    ) -> None:
        self.users = dict(users) if users is not None else {"demo": "demo"}
        for name in self.users:
            if not USER_NAME.match(name):
                raise ValueError(
                    f"invalid user name {name!r}: it must make a valid bucket name oidc-<user> "
                    "(lower-case letters, digits, dots and hyphens)"
                )
        self.host = host
        self.port = port
        self.auth_port = auth_port
        self.process_port = process_port
        self.requests: list[tuple[str, str, str]] = []
        self.keycloak = Keycloak(self.users, realm, token_lifetime, refresh_lifetime)
        self.credentials = CredentialStore()
        self.sts = Sts(self.keycloak, self.credentials, credential_min, credential_max)
        self.fault_injector = FaultInjector(
            fail_rate=fail_rate, latency_ms=latency_ms, seed=seed, exempt=is_sts
        )
        self.processes = ProcessApi(self.keycloak, job_step_seconds)
        self.moto = MotoProcess(host)
        self.s3_url = ""
        self.processes_url = ""
        self._auth_server: ServerThread | None = None
        self._front_server: ServerThread | None = None
        self._process_server: ServerThread | None = None

    # -- URLs ------------------------------------------------------------------------------------

    @property
    def auth_url(self) -> str:
        """Base URL of the Keycloak server (``http://127.0.0.1:PORT``)."""
        return self.keycloak.base_url

    @property
    def token_url(self) -> str:
        """The realm's token endpoint."""
        return self.keycloak.token_url

    @property
    def jwks_url(self) -> str:
        """The realm's JWKS endpoint."""
        return self.keycloak.jwks_url

    def bucket(self, user: str) -> str:
        """The personal bucket of `user` (``oidc-<user>``)."""
        return bucket_of(user)

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> EditoEmulator:
        """Start moto, create the users' buckets, then serve Keycloak, S3 and the process API."""
        if self._front_server is not None:
            raise RuntimeError("emulator already started")
        try:
            self.moto.start()
            admin = self.s3_client()
            for user in self.users:
                admin.create_bucket(
                    Bucket=self.bucket(user),
                    CreateBucketConfiguration={"LocationConstraint": REGION},
                )
            auth = web.Application(middlewares=[self._recorder(lambda r: "auth")])
            auth.add_routes(self.keycloak.routes())
            self._auth_server = ServerThread(auth, self.host, self.auth_port).start()
            self.keycloak.base_url = self._auth_server.url
            front = S3Front(self.moto.url, self.sts, self.credentials, self.fault_injector)
            app = front.make_app(self._recorder(lambda r: "sts" if is_sts(r) else "s3"))
            self._front_server = ServerThread(app, self.host, self.port).start()
            self.s3_url = self._front_server.url
            api = self.processes.make_app(self._recorder(lambda r: "processes"))
            self._process_server = ServerThread(api, self.host, self.process_port).start()
            self.processes_url = self._process_server.url + PREFIX
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the servers and moto (idempotent)."""
        for server in (self._process_server, self._front_server, self._auth_server):
            if server is not None:
                server.stop()
        self._process_server = self._front_server = self._auth_server = None
        self.moto.stop()

    # -- test controls ---------------------------------------------------------------------------

    def expire_tokens(self) -> None:
        """Every Keycloak access token issued so far now counts as expired."""
        self.keycloak.expire_tokens()

    def expire_credentials(self) -> None:
        """Every STS credential issued so far now counts as expired."""
        self.credentials.expire_all()

    def s3_client(self) -> Any:
        """A boto3 S3 client straight to moto with admin rights, for set-up and assertions."""
        import boto3
        from botocore.config import Config

        if not self.moto.url:
            raise RuntimeError("emulator not started")
        return boto3.client(
            "s3",
            endpoint_url=self.moto.url,
            region_name=REGION,
            aws_access_key_id=ADMIN_KEY,
            aws_secret_access_key=ADMIN_SECRET,
            config=Config(
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    # -- request log -----------------------------------------------------------------------------

    def _recorder(self, service_of: Callable[[web.Request], str]) -> Middleware:
        """A middleware appending (service, method, path?query) of each request to the log."""

        @web.middleware
        async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
            self.requests.append((service_of(request), request.method, request.path_qs))
            return await handler(request)

        return record
