"""S3 error answers of the front, in MinIO's wording: one exception, one XML body."""

from __future__ import annotations

import uuid
from xml.sax.saxutils import escape

from aiohttp import web

__all__ = ["S3Error"]

MESSAGES = {
    "AccessDenied": (403, "Access Denied."),
    "InvalidAccessKeyId": (403, "The Access Key Id you provided does not exist in our records."),
    "ExpiredToken": (400, "The provided token has expired."),
    "SignatureDoesNotMatch": (
        403,
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.",
    ),
    "AuthorizationHeaderMalformed": (400, "The authorization header is malformed."),
    "InvalidRequest": (
        400,
        "The authorization mechanism you have provided is not supported. "
        "Please use AWS4-HMAC-SHA256.",
    ),
}


class S3Error(Exception):
    """An S3 request refused by the front; :meth:`response` is what the client gets."""

    def __init__(self, code: str, message: str | None = None) -> None:
        status, default = MESSAGES[code]
        super().__init__(message or default)
        self.code = code
        self.status = status
        self.message = message or default

    def response(self, request: web.Request) -> web.Response:
        """The ``<Error>`` document, with bucket, key and resource taken from the path."""
        bucket, _, key = request.path.lstrip("/").partition("/")
        request_id = uuid.uuid4().hex[:16].upper()
        parts = [f"<Code>{self.code}</Code>", f"<Message>{escape(self.message)}</Message>"]
        if key:
            parts.append(f"<Key>{escape(key)}</Key>")
        if bucket:
            parts.append(f"<BucketName>{escape(bucket)}</BucketName>")
        parts += [
            f"<Resource>{escape(request.path)}</Resource>",
            f"<RequestId>{request_id}</RequestId>",
            f"<HostId>{uuid.uuid5(uuid.NAMESPACE_DNS, request.host).hex}</HostId>",
        ]
        body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error>' + "".join(parts) + "</Error>"
        response = web.Response(status=self.status, text=body, content_type="application/xml")
        response.headers["x-amz-request-id"] = request_id
        return response
