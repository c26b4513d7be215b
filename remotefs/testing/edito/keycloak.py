"""A Keycloak realm with public clients: the token endpoint, its JWKS and OIDC discovery.

Policy, following Keycloak's defaults:

* Public clients ``onyxia``, ``onyxia-minio`` and ``edito`` authenticate by ``client_id`` alone.
  Grants: ``password`` and ``refresh_token``; errors are Keycloak's (401 ``invalid_client``, 401
  ``invalid_grant`` for a bad password, 400 ``invalid_grant`` for a bad refresh token).
* Access tokens are RS256 JWTs (``typ: JWT``, ``kid``) signed with a 2048-bit key made at start.
  ``onyxia-minio`` tokens carry ``aud: minio`` and ``policy: stsonly`` (what MinIO reads).
* Refresh tokens are HS512 JWTs (``typ: Refresh``, or ``Offline`` with scope ``offline_access``,
  which never expire). Each refresh returns a new one; the old one stays valid until its own
  expiry, as Keycloak does unless "revoke refresh token" is on.
* The server keeps every token's exact deadline, so sub-second lifetimes work and
  :meth:`Keycloak.expire_tokens` can end all access tokens issued so far.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = ["MINIO_CLIENT", "Keycloak", "TokenError"]

MINIO_CLIENT = "onyxia-minio"
CLIENTS = ("onyxia", MINIO_CLIENT, "edito")
DEFAULT_SCOPES = ("profile", "email")
GRANTS = ("password", "refresh_token")


class TokenError(Exception):
    """A web identity token that cannot be used; ``expired`` tells why."""

    def __init__(self, message: str, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


@dataclass(frozen=True)
class Session:
    """One login: who, through which client, with which scope."""

    user: str
    client_id: str
    scope: str
    session_id: str
    offline: bool


def _oauth_error(status: int, code: str, description: str) -> web.Response:
    """Keycloak's OAuth error body."""
    return web.json_response({"error": code, "error_description": description}, status=status)


def _seconds(value: float) -> float | int:
    """A lifetime as JSON shows it: an integer when whole."""
    return int(value) if float(value).is_integer() else value


def _granted_scope(requested: str) -> str:
    """Requested scopes in order, then Keycloak's default client scopes."""
    scopes = [s for s in requested.split() if s]
    scopes += [s for s in DEFAULT_SCOPES if s not in scopes]
    return " ".join(dict.fromkeys(scopes))


class Keycloak:
    """Users, signing keys and issued tokens of one realm, with its HTTP routes."""

    def __init__(
        self,
        users: Mapping[str, str],
        realm: str,
        token_lifetime: float,
        refresh_lifetime: float,
    ) -> None:
        self.users = dict(users)
        self.realm = realm
        self.token_lifetime = token_lifetime
        self.refresh_lifetime = refresh_lifetime
        self.base_url = ""
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._kid = secrets.token_urlsafe(16)
        self._hmac = secrets.token_bytes(64)
        self._lock = threading.Lock()
        self._access: dict[str, float] = {}
        self._refresh: dict[str, tuple[float, Session]] = {}
        self._subjects = {user: str(uuid.uuid5(uuid.NAMESPACE_URL, user)) for user in self.users}

    # -- URLs ------------------------------------------------------------------------------------

    @property
    def issuer(self) -> str:
        """The realm's issuer URL (``iss`` of every token)."""
        return f"{self.base_url}/auth/realms/{self.realm}"

    @property
    def token_url(self) -> str:
        """The token endpoint."""
        return f"{self.issuer}/protocol/openid-connect/token"

    @property
    def jwks_url(self) -> str:
        """The JWKS endpoint."""
        return f"{self.issuer}/protocol/openid-connect/certs"

    def routes(self) -> list[web.RouteDef]:
        """Token endpoint, JWKS and discovery document of ``/auth/realms/{realm}``."""
        base = "/auth/realms/{realm}"
        return [
            web.post(f"{base}/protocol/openid-connect/token", self.token),
            web.get(f"{base}/protocol/openid-connect/certs", self.certs),
            web.get(f"{base}/.well-known/openid-configuration", self.discovery),
        ]

    # -- token checks for the other services -----------------------------------------------------

    def expire_tokens(self) -> None:
        """Make every access token issued so far count as expired (refresh tokens stay)."""
        with self._lock:
            for jti in self._access:
                self._access[jti] = 0.0

    def verify_access_token(self, token: str) -> dict[str, Any]:
        """The claims of a live access token of this realm, or :class:`TokenError`."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key.public_key(),
                algorithms=["RS256"],
                options={"verify_exp": False, "verify_aud": False},
                issuer=self.issuer,
            )
        except jwt.InvalidTokenError as exc:
            raise TokenError(f"invalid web identity token: {exc}") from None
        deadline = self._access.get(str(claims.get("jti")))
        if deadline is None or claims.get("typ") != "Bearer":
            raise TokenError("not an access token of this realm")
        if time.time() >= deadline:
            raise TokenError("the token has expired", expired=True)
        return claims

    # -- HTTP ------------------------------------------------------------------------------------

    def _realm_check(self, request: web.Request) -> web.Response | None:
        """Keycloak's 404 for a realm that does not exist."""
        if request.match_info["realm"] != self.realm:
            return web.json_response({"error": "Realm does not exist"}, status=404)
        return None

    async def certs(self, request: web.Request) -> web.Response:
        """GET .../certs: the public signing key as a JWK set."""
        missing = self._realm_check(request)
        if missing is not None:
            return missing
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        jwk.update(kid=self._kid, use="sig", alg="RS256")
        return web.json_response({"keys": [jwk]})

    async def discovery(self, request: web.Request) -> web.Response:
        """GET .well-known/openid-configuration: where the endpoints are."""
        missing = self._realm_check(request)
        if missing is not None:
            return missing
        return web.json_response(
            {
                "issuer": self.issuer,
                "token_endpoint": self.token_url,
                "jwks_uri": self.jwks_url,
                "grant_types_supported": list(GRANTS),
                "token_endpoint_auth_methods_supported": ["none"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "subject_types_supported": ["public"],
                "scopes_supported": ["openid", "offline_access", *DEFAULT_SCOPES],
            }
        )

    async def token(self, request: web.Request) -> web.Response:
        """POST .../token: password and refresh_token grants of the public clients."""
        missing = self._realm_check(request)
        if missing is not None:
            return missing
        form = await request.post()
        grant = str(form.get("grant_type", ""))
        if grant not in GRANTS:
            return _oauth_error(400, "unsupported_grant_type", "Unsupported grant_type")
        client_id = str(form.get("client_id", ""))
        if client_id not in CLIENTS:
            return _oauth_error(
                401, "invalid_client", "Invalid client or Invalid client credentials"
            )
        if grant == "password":
            user, password = str(form.get("username", "")), str(form.get("password", ""))
            if not user or user not in self.users or self.users[user] != password:
                return _oauth_error(401, "invalid_grant", "Invalid user credentials")
            scope = _granted_scope(str(form.get("scope", "")))
            offline = "offline_access" in scope.split()
            session = Session(user, client_id, scope, str(uuid.uuid4()), offline)
        else:
            presented = str(form.get("refresh_token", ""))
            if not presented:
                return _oauth_error(400, "invalid_request", "Missing parameter: refresh_token")
            found = self._session_of(presented, client_id)
            if isinstance(found, web.Response):
                return found
            session = found
        response = web.json_response(self._issue(session))
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
        return response

    # -- tokens ----------------------------------------------------------------------------------

    def _session_of(self, refresh_token: str, client_id: str) -> Session | web.Response:
        """The session a refresh token continues, or Keycloak's 400 ``invalid_grant``."""
        try:
            claims = jwt.decode(
                refresh_token,
                self._hmac,
                algorithms=["HS512"],
                options={"verify_exp": False, "verify_aud": False},
            )
        except jwt.InvalidTokenError:
            return _oauth_error(400, "invalid_grant", "Invalid refresh token")
        record = self._refresh.get(str(claims.get("jti")))
        if record is None or record[1].client_id != client_id:
            return _oauth_error(400, "invalid_grant", "Invalid refresh token")
        deadline, session = record
        if time.time() >= deadline:
            return _oauth_error(400, "invalid_grant", "Token is not active")
        return session

    def _sign(self, claims: dict[str, Any]) -> str:
        """An RS256 JWT with this realm's key id."""
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self._kid})

    def _issue(self, session: Session) -> dict[str, Any]:
        """A Keycloak token response for `session`: access, refresh and maybe ID token."""
        now = time.time()
        user, client_id = session.user, session.client_id
        common = {
            "iat": int(now),
            "iss": self.issuer,
            "sub": self._subjects[user],
            "azp": client_id,
            "sid": session.session_id,
        }
        identity = {
            "preferred_username": user,
            "email": f"{user}@example.org",
            "email_verified": True,
        }
        access_jti = str(uuid.uuid4())
        access = {
            **common,
            "exp": math.ceil(now + self.token_lifetime),
            "jti": access_jti,
            "aud": "minio" if client_id == MINIO_CLIENT else "account",
            "typ": "Bearer",
            "scope": session.scope,
            **identity,
        }
        if client_id == MINIO_CLIENT:
            access["policy"] = "stsonly"
        refresh_jti = str(uuid.uuid4())
        refresh: dict[str, Any] = {
            **common,
            "jti": refresh_jti,
            "aud": self.issuer,
            "typ": "Offline" if session.offline else "Refresh",
            "scope": session.scope,
        }
        refresh_deadline = math.inf
        if not session.offline:
            refresh_deadline = now + self.refresh_lifetime
            refresh["exp"] = math.ceil(refresh_deadline)
        with self._lock:
            self._access[access_jti] = now + self.token_lifetime
            self._refresh[refresh_jti] = (refresh_deadline, session)
        body: dict[str, Any] = {
            "access_token": self._sign(access),
            "expires_in": _seconds(self.token_lifetime),
            "refresh_expires_in": 0 if session.offline else _seconds(self.refresh_lifetime),
            "refresh_token": jwt.encode(refresh, self._hmac, algorithm="HS512"),
            "token_type": "Bearer",
            "not-before-policy": 0,
            "session_state": session.session_id,
            "scope": session.scope,
        }
        if "openid" in session.scope.split():
            id_token = {
                **common,
                "exp": access["exp"],
                "jti": str(uuid.uuid4()),
                "aud": client_id,
                "typ": "ID",
                "auth_time": int(now),
                **identity,
            }
            body["id_token"] = self._sign(id_token)
        return body
