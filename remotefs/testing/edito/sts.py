"""MinIO's STS ``AssumeRoleWithWebIdentity``: Keycloak access tokens in, temporary S3 keys out.

Policy, following MinIO's ``registerSTSRouter`` and ``sts-errors.go``:

* A ``POST /`` is an STS call when its query string names ``Action=AssumeRoleWithWebIdentity``
  (the seed's form, empty body) or when its query string is empty and its body is form-encoded
  (what AWS SDKs send). Parameters come from the body, then the query string.
* ``Version`` must be ``2011-06-15`` (else ``MissingParameter``), ``WebIdentityToken`` is required.
  The token must be an access token of the realm, signed by its key, not expired (else
  ``ExpiredToken``) and meant for MinIO: ``azp: onyxia-minio`` or ``aud: minio`` (else
  ``InvalidClientGrantsToken``).
* ``DurationSeconds`` (default 3600) must lie in ``[credential_min, max(604800, credential_max)]``
  (else ``InvalidParameterValue``); the credentials live ``min(DurationSeconds, credential_max)``
  seconds, the way ``MINIO_STS_DURATION`` caps them. ``Policy`` must be a JSON object of at most
  2048 characters (else ``MalformedPolicyDocument``/``InvalidParameterValue``) and is otherwise
  not enforced; ``RoleArn`` and ``RoleSessionName`` are ignored, as MinIO does in claim mode.
"""

from __future__ import annotations

import json
import secrets
import string
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from xml.sax.saxutils import escape

import jwt
from aiohttp import hdrs, web

from remotefs.testing.edito.keycloak import MINIO_CLIENT, Keycloak, TokenError

__all__ = ["ACTION", "Credential", "CredentialStore", "Sts", "is_sts"]

ACTION = "AssumeRoleWithWebIdentity"
NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
API_VERSION = "2011-06-15"
DEFAULT_DURATION = 3600
DOCUMENTED_MAX = 604800
FORM = "application/x-www-form-urlencoded"
MESSAGES = {  # MinIO's own descriptions, for the errors that carry no detail
    "ExpiredToken": "The web identity token that was passed is expired or is not valid. Get a "
    "new identity token from the identity provider and then retry the request.",
    "MalformedPolicyDocument": "The request was rejected because the policy document was "
    "malformed.",
}
UPPER_ALNUM = string.ascii_uppercase + string.digits
ALNUM = string.ascii_letters + string.digits


def is_sts(request: web.Request) -> bool:
    """Whether a request to the S3 front is an STS call (MinIO's routing rules)."""
    if request.method != hdrs.METH_POST or request.path != "/":
        return False
    if request.query_string:
        return request.query.get("Action") == ACTION
    return request.content_type == FORM


@dataclass
class Credential:
    """Temporary S3 keys bound to a user and an expiry (wall-clock seconds)."""

    access_key: str
    secret_key: str
    session_token: str
    user: str
    expires_at: float

    def expired(self) -> bool:
        """Whether the credentials have run out."""
        return time.time() >= self.expires_at


class CredentialStore:
    """Every credential issued so far, by access key id (expired ones are kept, to say so)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[str, Credential] = {}
        self._signer = secrets.token_bytes(64)

    def get(self, access_key: str) -> Credential | None:
        """The credential with this access key id, if ever issued."""
        return self._by_key.get(access_key)

    def issue(self, user: str, policy: str, subject: str, lifetime: float) -> Credential:
        """New keys for `user`; the session token is a signed JWT, like MinIO's."""
        access_key = "".join(secrets.choice(UPPER_ALNUM) for _ in range(20))
        secret_key = "".join(secrets.choice(ALNUM) for _ in range(40))
        expires_at = time.time() + lifetime
        claims = {
            "accessKey": access_key,
            "exp": int(expires_at),
            "parent": f"openid:{subject}",
            "policy": policy,
            "preferred_username": user,
            "sub": subject,
        }
        token = jwt.encode(claims, self._signer, algorithm="HS512")
        credential = Credential(access_key, secret_key, token, user, expires_at)
        with self._lock:
            self._by_key[access_key] = credential
        return credential

    def expire_all(self) -> None:
        """Make every credential issued so far count as expired."""
        now = time.time()
        with self._lock:
            for credential in self._by_key.values():
                credential.expires_at = min(credential.expires_at, now)


class StsError(Exception):
    """An STS failure answered with MinIO's ``ErrorResponse`` (all of ours are 400s)."""

    def __init__(self, code: str, message: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.message = message or MESSAGES[code]


def _iso(timestamp: float) -> str:
    """``2019-08-08T20:26:12Z``: UTC, whole seconds (rounded down, never later than the truth)."""
    return datetime.fromtimestamp(int(timestamp), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Sts:
    """The STS handler of the S3 front: validates web identity tokens and issues credentials."""

    def __init__(
        self,
        keycloak: Keycloak,
        store: CredentialStore,
        credential_min: float,
        credential_max: float,
    ) -> None:
        self.keycloak = keycloak
        self.store = store
        self.credential_min = credential_min
        self.credential_max = credential_max

    async def handle(self, request: web.Request) -> web.Response:
        """POST / (STS): credentials XML, or MinIO's ``ErrorResponse``."""
        request_id = uuid.uuid4().hex[:16].upper()
        try:
            credential, subject = self._assume(await _parameters(request))
        except StsError as exc:
            error = (
                f'<ErrorResponse xmlns="{NAMESPACE}">'
                f"<Error><Type></Type><Code>{exc.code}</Code>"
                f"<Message>{escape(exc.message)}</Message></Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>"
            )
            return _reply(400, error, request_id)
        result = (
            "<AssumeRoleWithWebIdentityResult>"
            "<AssumedRoleUser><Arn></Arn><AssumeRoleId></AssumeRoleId></AssumedRoleUser>"
            "<Credentials>"
            f"<AccessKeyId>{credential.access_key}</AccessKeyId>"
            f"<SecretAccessKey>{credential.secret_key}</SecretAccessKey>"
            f"<Expiration>{_iso(credential.expires_at)}</Expiration>"
            f"<SessionToken>{credential.session_token}</SessionToken>"
            "</Credentials>"
            f"<SubjectFromWebIdentityToken>{escape(subject)}</SubjectFromWebIdentityToken>"
            "</AssumeRoleWithWebIdentityResult>"
        )
        body = (
            f'<AssumeRoleWithWebIdentityResponse xmlns="{NAMESPACE}">{result}'
            f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
            "</AssumeRoleWithWebIdentityResponse>"
        )
        return _reply(200, body, request_id)

    def _assume(self, params: dict[str, str]) -> tuple[Credential, str]:
        """Check the parameters and the token; issue the credentials and name the subject."""
        version = params.get("Version", "")
        if version != API_VERSION:
            raise StsError(
                "MissingParameter", f"Invalid STS API version {version}, expecting {API_VERSION}"
            )
        action = params.get("Action", "")
        if action != ACTION:
            raise StsError("InvalidParameterValue", f"Unsupported action {action}")
        token = params.get("WebIdentityToken", "")
        if not token:
            raise StsError("MissingParameter", "WebIdentityToken is missing")
        try:
            claims = self.keycloak.verify_access_token(token)
        except TokenError as exc:
            if exc.expired:
                raise StsError("ExpiredToken") from None
            raise StsError("InvalidClientGrantsToken", str(exc)) from None
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if claims.get("azp") != MINIO_CLIENT and "minio" not in audiences:
            raise StsError(
                "InvalidClientGrantsToken",
                f"STS JWT Token has `azp` claim set to `{claims.get('azp')}`, "
                f"expected client id `{MINIO_CLIENT}`",
            )
        lifetime = min(self._duration(params.get("DurationSeconds")), self.credential_max)
        _check_policy(params.get("Policy"))
        subject = str(claims.get("sub", ""))
        user = str(claims.get("preferred_username", ""))
        credential = self.store.issue(user, str(claims.get("policy", "")), subject, lifetime)
        return credential, subject

    def _duration(self, text: str | None) -> float:
        """The requested lifetime, checked against MinIO's range."""
        if text is None or text == "":
            return DEFAULT_DURATION
        upper = max(DOCUMENTED_MAX, self.credential_max)
        try:
            seconds = int(text)
        except ValueError:
            raise StsError("InvalidParameterValue", f"invalid DurationSeconds {text!r}") from None
        if not self.credential_min <= seconds <= upper:
            raise StsError(
                "InvalidParameterValue",
                f"Requested DurationSeconds {seconds} is out of range: it must be between "
                f"{_number(self.credential_min)} and {_number(upper)} seconds",
            )
        return seconds


def _number(value: float) -> str:
    """A number of seconds without a useless ``.0``."""
    return str(int(value)) if float(value).is_integer() else str(value)


def _check_policy(policy: str | None) -> None:
    """An inline session policy must be a small JSON object with a ``Version``."""
    if not policy:
        return
    if len(policy) > 2048:
        raise StsError("InvalidParameterValue", "Session policy should not exceed 2048 characters")
    try:
        document = json.loads(policy)
    except ValueError:
        raise StsError("MalformedPolicyDocument") from None
    if not isinstance(document, dict) or not document.get("Version"):
        raise StsError("MalformedPolicyDocument")


async def _parameters(request: web.Request) -> dict[str, str]:
    """Form body parameters over query parameters (Go's ``r.Form`` order)."""
    pairs: list[tuple[str, object]] = []
    if request.content_type == FORM:
        pairs += (await request.post()).items()
    pairs += request.query.items()
    params: dict[str, str] = {}
    for name, value in pairs:
        if isinstance(value, str):
            params.setdefault(name, value)
    return params


def _reply(status: int, body: str, request_id: str) -> web.Response:
    """An XML answer with MinIO's request id header."""
    response = web.Response(status=status, text=body, content_type="text/xml")
    response.headers["x-amz-request-id"] = request_id
    return response
