"""``remotefs login edito``: the Keycloak logins EDITO needs, kept in the credential store.

A login is a password grant for two public clients of the realm: ``onyxia-minio`` (scope
``openid email profile``; its token buys S3 keys at MinIO's STS) and ``onyxia`` (the process
API). Both tokens are stored, never the password, under the profile's record; a filesystem
given no credentials uses the ``onyxia-minio`` one (:func:`profile_login`), ``remotefs jobs``
the ``onyxia`` one (:func:`process_tokens`), and every renewal writes the new refresh token
back (:class:`~remotefs.auth.stored.StoredTokens`). The profile may also name the process API
(``processes_url``).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from remotefs.auth.keycloak import KeycloakLogin
from remotefs.auth.store import CredentialStore
from remotefs.auth.stored import StoredTokens, token_record
from remotefs.auth.tokens import Token, TokenProvider
from remotefs.config import login_record, profile_name, profile_settings
from remotefs.edito.credentials import S3_CLIENT_ID, S3_SCOPE, EditoCredentials, EditoSettings
from remotefs.errors import AuthenticationError

SERVICE = "edito"
SETTINGS = {
    "token_url": "EDITO_TOKEN_URL",
    "endpoint_url": "EDITO_S3_ENDPOINT",
    "region": "AWS_DEFAULT_REGION",
    "username": "EDITO_USERNAME",
    "processes_url": "EDITO_PROCESSES_URL",
}
PROCESS_CLIENT_ID = "onyxia"
CLIENT_SCOPES = {S3_CLIENT_ID: S3_SCOPE, PROCESS_CLIENT_ID: "openid"}
NOT_LOGGED_IN = "not logged in: run `remotefs login edito`"


def settings_from(values: dict[str, Any]) -> EditoSettings:
    """EditoSettings from plain values, defaults for what is missing."""
    known = {k: values[k] for k in ("token_url", "endpoint_url", "region") if values.get(k)}
    if "endpoint_url" in known:
        known["endpoint_url"] = str(known["endpoint_url"]).rstrip("/")
    return EditoSettings(**known)


def stored_tokens(
    store: CredentialStore, record: str, settings: EditoSettings, client_id: str = S3_CLIENT_ID
) -> StoredTokens:
    """The tokens of one client of a stored login, renewed under the store's lock."""
    renew = KeycloakLogin(
        token_url=settings.token_url,
        client_id=client_id,
        scope=CLIENT_SCOPES.get(client_id, "openid"),
        verify=settings.verify,
    )
    return StoredTokens(store, record, client_id, renew, not_logged_in=NOT_LOGGED_IN, margin=60.0)


def profile_login(
    profile: str | None, opt: dict[str, Any], store: CredentialStore, *, given: bool
) -> str | None:
    """Fill the settings missing from ``opt`` from the profile; the stored login to use, if any.

    The stored login serves when the caller ``given`` no credentials (or named the profile)
    and it belongs to the same Keycloak realm and user.
    """
    name = profile_name(profile)
    for key, value in profile_settings(SERVICE, name).items():
        if key in SETTINGS and not opt.get(key):
            opt[key] = str(value)
    if profile is None and given:
        return None
    record = login_record(SERVICE, name)
    saved = store.get(record)
    if not saved or saved.get("token_url") != settings_from(opt).token_url:
        return None
    if opt.get("username") and saved.get("username") != opt["username"]:
        return None
    opt["username"] = saved.get("username")
    return record


def process_tokens(
    store: CredentialStore, profile: str | None, settings: EditoSettings
) -> TokenProvider:
    """The process API's tokens (client ``onyxia``) of the profile's login, renewed in the store.

    Without a login of the profile to the realm of ``settings``, the first request that needs a
    token fails with "not logged in".
    """
    record = login_record(SERVICE, profile_name(profile))
    saved = store.get(record)
    if not saved or saved.get("token_url") != settings.token_url:
        return TokenProvider(None, not_logged_in)
    tokens = stored_tokens(store, record, settings, PROCESS_CLIENT_ID)
    return TokenProvider(tokens.load(), tokens, margin=60.0)


def not_logged_in(old: Token | None) -> Token:
    """The refresher of a filesystem that has no credentials at all."""
    raise AuthenticationError(NOT_LOGGED_IN)


def login(
    settings: dict[str, Any], password: str, store: CredentialStore, record: str
) -> dict[str, Any]:
    """Log in to both clients with a password; keep their tokens under ``record``."""
    username = settings.get("username")
    if not username:
        raise ValueError("logging in to edito needs a username: give --username")
    chosen = settings_from(settings)
    tokens = {}
    for client_id, scope in CLIENT_SCOPES.items():
        grant = KeycloakLogin(
            token_url=chosen.token_url,
            client_id=client_id,
            scope=scope,
            username=username,
            password=password,
            verify=chosen.verify,
        )
        tokens[client_id] = grant(None)
    store.put(
        record,
        {
            "token_url": chosen.token_url,
            "endpoint_url": chosen.endpoint_url,
            "region": chosen.region,
            "username": username,
            "tokens": {client_id: token_record(token) for client_id, token in tokens.items()},
        },
    )
    return _identity(chosen, tokens[S3_CLIENT_ID], None)


def whoami(store: CredentialStore, record: str) -> dict[str, Any]:
    """Who the stored login is (from its token's claims), and when tokens and S3 keys expire."""
    saved = store.get(record)
    if not saved:
        raise AuthenticationError(NOT_LOGGED_IN)
    settings = settings_from(saved)
    tokens = stored_tokens(store, record, settings)
    credentials = EditoCredentials(
        settings, username=saved.get("username"), token=tokens.load(), refresher=tokens
    )
    keys = credentials.fetch()
    token = credentials.tokens.token
    if token is None:
        raise AuthenticationError(NOT_LOGGED_IN)
    return _identity(settings, token, keys.expiration.timestamp())


def _identity(settings: EditoSettings, token: Token, s3_expires: float | None) -> dict[str, Any]:
    access = claims(token.access_token)
    refresh = claims(token.refresh_token or "")
    return {
        "service": SERVICE,
        "token_url": settings.token_url,
        "endpoint_url": settings.endpoint_url,
        "username": access.get("preferred_username"),
        "name": access.get("name"),
        "email": access.get("email"),
        "token_expires": access.get("exp") or token.expires_at,
        "refresh_expires": refresh.get("exp"),
        "s3_expires": s3_expires,
    }


def claims(jwt: str) -> dict[str, Any]:
    """The claims of a JWT, decoded without verification (for display only); {} if not a JWT."""
    parts = jwt.split(".")
    if len(parts) != 3:
        return {}
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        data = json.loads(payload)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
