"""The MinIO-like front: STS and credential-checked S3, relayed to moto as a stream.

Policy:

* ``POST /`` STS calls (see :func:`~remotefs.testing.edito.sts.is_sts`) are answered here.
* Every other request is S3. A signed request needs keys issued by our STS: unknown keys or a
  session token that does not go with them get 403 ``InvalidAccessKeyId``, expired ones 400
  ``ExpiredToken``, a wrong signature 403 ``SignatureDoesNotMatch``. The ``stsonly`` policy
  lets a user touch only the bucket ``oidc-<user>``, copy sources (``x-amz-copy-source``)
  included; ``ListBuckets`` is answered with that bucket only, as MinIO filters it. Objects
  under ``<bucket>/public/`` can be read (GET, HEAD, copied) by anyone, signed or not; any
  other anonymous request is 403 ``AccessDenied``.
* Accepted requests go to moto unchanged (method, raw path and query, headers including the
  client's signature) minus hop-by-hop headers; anonymous public reads are signed with the
  emulator's admin keys because moto refuses anonymous reads. Bodies stream both ways: nothing
  is buffered except ``ListBuckets`` and, while faults are injected, GET bodies up to
  ``CUT_LIMIT`` (so that the fault injector can cut them short; larger ones fail with 503).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING
from urllib.parse import unquote

import aiohttp
from aiohttp import hdrs, web
from aiohttp.abc import AbstractStreamWriter
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from multidict import CIMultiDict
from yarl import URL

from remotefs.testing.edito.s3errors import S3Error
from remotefs.testing.edito.sigv4 import read_signature
from remotefs.testing.edito.sts import Credential, CredentialStore, Sts, is_sts
from remotefs.testing.faults import FaultInjector

if TYPE_CHECKING:
    from aiohttp.typedefs import Middleware

__all__ = ["ADMIN_KEY", "ADMIN_SECRET", "REGION", "Handler", "S3Front", "bucket_of"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ADMIN_KEY = "remotefs-admin"
ADMIN_SECRET = "remotefs-admin-secret"
REGION = "waw3-1"
CUT_LIMIT = 8 << 20
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
    }
)
NO_AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")
BUCKET_ENTRY = re.compile(r"<Bucket>\s*<Name>([^<]*)</Name>.*?</Bucket>", re.DOTALL)


def bucket_of(user: str) -> str:
    """The personal bucket of a user."""
    return f"oidc-{user}"


def _end_to_end(headers: Mapping[str, str]) -> CIMultiDict[str]:
    """`headers` without the hop-by-hop ones."""
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in HOP_BY_HOP)


def _answer_headers(upstream: aiohttp.ClientResponse) -> CIMultiDict[str]:
    """moto's response headers as MinIO would send them.

    moto announces ``x-amz-version-id: null`` for objects of unversioned buckets, which MinIO
    does not, and then refuses ``versionId=null`` with a 400 (rclone asks for it after a
    multipart upload); the header is dropped.
    """
    headers = _end_to_end(upstream.headers)
    if headers.get("x-amz-version-id") == "null":
        del headers["x-amz-version-id"]
    return headers


class _Relay(web.StreamResponse):
    """An upstream response replayed to the client: status, headers, then the body in chunks."""

    def __init__(self, upstream: aiohttp.ClientResponse) -> None:
        super().__init__(status=upstream.status, reason=upstream.reason)
        self.headers.extend(_answer_headers(upstream))
        self._upstream = upstream

    def close_upstream(self) -> None:
        """Give the upstream connection up (the response was never sent)."""
        self._upstream.close()

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        """Send the headers, then copy the body as it arrives."""
        if self.prepared:
            return await super().prepare(request)
        try:
            writer = await super().prepare(request)
            async for chunk in self._upstream.content.iter_chunked(1 << 20):
                await self.write(chunk)
        except BaseException:
            self._upstream.close()
            raise
        self._upstream.release()
        return writer


_RELAYS: ContextVar[list[_Relay]] = ContextVar("edito_relays")


class S3Front:
    """The S3 + STS endpoint: checks credentials and policy, then relays to moto."""

    def __init__(
        self,
        moto_url: str,
        sts: Sts,
        store: CredentialStore,
        fault_injector: FaultInjector,
    ) -> None:
        self.moto_url = moto_url
        self.sts = sts
        self.store = store
        self.fault_injector = fault_injector
        self._session: aiohttp.ClientSession | None = None
        self._admin = S3SigV4Auth(Credentials(ADMIN_KEY, ADMIN_SECRET), "s3", REGION)

    def make_app(self, record: Middleware) -> web.Application:
        """The aiohttp application: `record`, release unsent relays, faults (S3 only), dispatch."""
        app = web.Application(
            middlewares=[record, self._release_unsent, self.fault_injector.middleware]
        )
        app.router.add_route("*", "/{tail:.*}", self.dispatch)
        app.on_startup.append(self._open)
        app.on_cleanup.append(self._close)
        return app

    async def _open(self, app: web.Application) -> None:
        """The upstream connection pool; bodies pass through undecoded."""
        self._session = aiohttp.ClientSession(
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
            read_bufsize=4 << 20,
        )

    async def _close(self, app: web.Application) -> None:
        """Close the upstream pool."""
        if self._session is not None:
            await self._session.close()

    @web.middleware
    async def _release_unsent(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Close the upstream of a relay that fault injection replaced by a 503."""
        relays: list[_Relay] = []
        reset = _RELAYS.set(relays)
        response: web.StreamResponse | None = None
        try:
            response = await handler(request)
            return response
        finally:
            _RELAYS.reset(reset)
            for relay in relays:
                if relay is not response:
                    relay.close_upstream()

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        """STS here, S3 after the credential and policy checks."""
        if is_sts(request):
            return await self.sts.handle(request)
        try:
            credential = self._authorize(request)
        except S3Error as exc:
            return exc.response(request)
        return await self._forward(request, credential)

    def _authorize(self, request: web.Request) -> Credential | None:
        """The credential that may make this request (None: an anonymous public read)."""
        bucket, _, key = request.path.lstrip("/").partition("/")
        public_read = request.method in (hdrs.METH_GET, hdrs.METH_HEAD) and key.startswith(
            "public/"
        )
        signature = read_signature(request)
        if signature is None:
            if public_read:
                return None
            raise S3Error("AccessDenied")
        credential = self.store.get(signature.access_key)
        if credential is None or credential.session_token != signature.session_token:
            raise S3Error("InvalidAccessKeyId")
        if credential.expired():
            raise S3Error("ExpiredToken")
        if not signature.matches(request, credential.secret_key):
            raise S3Error("SignatureDoesNotMatch")
        if signature.presign_expired():
            raise S3Error("AccessDenied", "Request has expired")
        own = bucket_of(credential.user)
        if bucket and bucket != own and not public_read:
            raise S3Error("AccessDenied")
        source = request.headers.get("x-amz-copy-source")
        if source is not None:
            source_bucket, _, source_key = unquote(source).lstrip("/").partition("/")
            if source_bucket != own and not source_key.startswith("public/"):
                raise S3Error("AccessDenied")
        return credential

    def _admin_headers(self, request: web.Request) -> dict[str, str]:
        """Authorization headers of the admin keys for `request` (moto refuses anonymous)."""
        signed = AWSRequest(
            method=request.method,
            url=self.moto_url + request.raw_path,
            headers={"Host": request.host},
        )
        self._admin.add_auth(signed)
        return dict(signed.headers.items())

    async def _forward(
        self, request: web.Request, credential: Credential | None
    ) -> web.StreamResponse:
        """Relay the request to moto and its answer back."""
        assert self._session is not None
        headers = _end_to_end(request.headers)
        if credential is None:
            headers.update(self._admin_headers(request))
        upstream = await self._session.request(
            request.method,
            URL(self.moto_url + request.raw_path, encoded=True),
            headers=headers,
            data=request.content if request.body_exists else None,
            skip_auto_headers=NO_AUTO_HEADERS,
            allow_redirects=False,
        )
        if credential is not None and request.method == hdrs.METH_GET and request.path == "/":
            return await _own_buckets(upstream, bucket_of(credential.user))
        size = upstream.content_length
        if (
            request.method == hdrs.METH_GET
            and self.fault_injector.fail_rate > 0
            and size is not None
            and size <= CUT_LIMIT
        ):
            return await _buffered(upstream)
        relay = _Relay(upstream)
        _RELAYS.get().append(relay)
        return relay


async def _buffered(upstream: aiohttp.ClientResponse) -> web.Response:
    """The whole upstream response as a plain response."""
    async with upstream:
        body = await upstream.read()
    headers = _answer_headers(upstream)
    headers.popall(hdrs.CONTENT_LENGTH, None)
    return web.Response(status=upstream.status, reason=upstream.reason, headers=headers, body=body)


async def _own_buckets(upstream: aiohttp.ClientResponse, bucket: str) -> web.Response:
    """``ListBuckets`` filtered down to the caller's bucket, as MinIO lists only allowed ones."""
    async with upstream:
        text = await upstream.text()
    if upstream.status == 200:
        text = BUCKET_ENTRY.sub(lambda m: m.group(0) if m.group(1) == bucket else "", text)
    headers = _answer_headers(upstream)
    headers.popall(hdrs.CONTENT_LENGTH, None)
    return web.Response(status=upstream.status, headers=headers, body=text.encode())
