"""AWS Signature Version 4 on the server side: who signed an S3 request, and was it them.

Both forms are read: the ``Authorization: AWS4-HMAC-SHA256 Credential=...`` header and presigned
URLs (``X-Amz-Credential`` ... in the query string); the session token comes from the
``X-Amz-Security-Token`` header or query parameter. The signature is recomputed over the
request as received, with the payload hash the client declared (``x-amz-content-sha256``, or
``UNSIGNED-PAYLOAD`` for presigned URLs): the body itself is not hashed, as it is streamed on.
Clients disagree on a few encoding details, so the path and the query string are tried both as
sent and re-encoded the way the AWS specification says.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import quote, unquote

from aiohttp import web

from remotefs.testing.edito.s3errors import S3Error

__all__ = ["Signature", "read_signature"]

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED = "UNSIGNED-PAYLOAD"


@dataclass(frozen=True)
class Signature:
    """The signing claims of one request."""

    access_key: str
    scope: str
    signed_headers: tuple[str, ...]
    signature: str
    timestamp: str
    session_token: str
    presigned: bool
    expires: int

    def matches(self, request: web.Request, secret_key: str) -> bool:
        """Whether `secret_key` produces this signature over `request`."""
        date, region, service, _ = self.scope.split("/")
        key = _hmac(f"AWS4{secret_key}".encode(), date)
        for part in (region, service, "aws4_request"):
            key = _hmac(key, part)
        for canonical in _canonical_requests(request, self):
            digest = hashlib.sha256(canonical.encode()).hexdigest()
            to_sign = f"{ALGORITHM}\n{self.timestamp}\n{self.scope}\n{digest}"
            computed = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
            if hmac.compare_digest(computed, self.signature):
                return True
        return False

    def presign_expired(self) -> bool:
        """Whether a presigned URL is past its ``X-Amz-Expires``."""
        if not self.presigned:
            return False
        try:
            signed = datetime.strptime(self.timestamp, "%Y%m%dT%H%M%SZ")
        except ValueError:
            return True
        age = datetime.now(timezone.utc) - signed.replace(tzinfo=timezone.utc)
        return age.total_seconds() > self.expires


def _hmac(key: bytes, text: str) -> bytes:
    """One step of the signing-key derivation."""
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def read_signature(request: web.Request) -> Signature | None:
    """The request's SigV4 claims, None when it is anonymous, or :class:`S3Error`."""
    header = request.headers.get("Authorization")
    query = request.query
    if header is not None:
        algorithm, _, rest = header.strip().partition(" ")
        if algorithm != ALGORITHM:
            raise S3Error("InvalidRequest")
        fields = {}
        for item in rest.split(","):
            name, _, value = item.strip().partition("=")
            fields[name] = value
        credential = fields.get("Credential", "")
        signed_headers = fields.get("SignedHeaders", "")
        signature = fields.get("Signature", "")
        timestamp = request.headers.get("X-Amz-Date", "")
        token = request.headers.get("X-Amz-Security-Token", "")
        presigned, expires = False, 0
    elif "X-Amz-Credential" in query:
        if query.get("X-Amz-Algorithm") != ALGORITHM:
            raise S3Error("InvalidRequest")
        credential = query["X-Amz-Credential"]
        signed_headers = query.get("X-Amz-SignedHeaders", "")
        signature = query.get("X-Amz-Signature", "")
        timestamp = query.get("X-Amz-Date", "")
        token = query.get("X-Amz-Security-Token", "")
        presigned = True
        try:
            expires = int(query.get("X-Amz-Expires", ""))
        except ValueError:
            raise S3Error("AuthorizationHeaderMalformed", "X-Amz-Expires is invalid") from None
    else:
        return None
    access_key, _, scope = credential.partition("/")
    if not access_key or scope.count("/") != 3 or not scope.endswith("/aws4_request"):
        raise S3Error(
            "AuthorizationHeaderMalformed",
            "The authorization header is malformed; the Credential is mal-formed; expecting "
            '"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".',
        )
    if not signed_headers or not signature or not timestamp:
        raise S3Error("AuthorizationHeaderMalformed")
    return Signature(
        access_key=access_key,
        scope=scope,
        signed_headers=tuple(signed_headers.lower().split(";")),
        signature=signature,
        timestamp=timestamp,
        session_token=token,
        presigned=presigned,
        expires=expires,
    )


def _encode(text: str) -> str:
    """AWS URI encoding of a query name or value: everything but unreserved characters."""
    return quote(unquote(text), safe="-_.~")


def _canonical_requests(request: web.Request, claims: Signature) -> list[str]:
    """Canonical requests to try: as received, then with AWS's own encoding."""
    path, _, raw_query = request.raw_path.partition("?")
    path = path or "/"
    paths = dict.fromkeys([path, quote(unquote(path), safe="/-_.~")])
    pairs = []
    for item in raw_query.split("&"):
        if item:
            name, _, value = item.partition("=")
            if not (claims.presigned and name == "X-Amz-Signature"):
                pairs.append((name, value))
    queries = dict.fromkeys(
        [
            "&".join(f"{n}={v}" for n, v in sorted(pairs)),
            "&".join(f"{n}={v}" for n, v in sorted((_encode(n), _encode(v)) for n, v in pairs)),
        ]
    )
    headers = "".join(
        f"{name}:{','.join(' '.join(v.split()) for v in request.headers.getall(name, []))}\n"
        for name in claims.signed_headers
    )
    if claims.presigned:
        payload = request.query.get("X-Amz-Content-Sha256", UNSIGNED)
    else:
        payload = request.headers.get("X-Amz-Content-Sha256", EMPTY_SHA256)
    signed = ";".join(claims.signed_headers)
    return [
        f"{request.method}\n{p}\n{q}\n{headers}\n{signed}\n{payload}"
        for p in paths
        for q in queries
    ]
