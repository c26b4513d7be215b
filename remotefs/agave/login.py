"""How an AgaveFileSystem obtains and renews its tokens.

Order of preference: a refresh token (renewed through the OAuth client), then a password
login. A password login needs an OAuth client: the given key and secret, else the client of
``client_name`` whose secret we stored when we created it, else a new client of that name
(the service never shows a secret twice, so an existing client we hold no secret for is
replaced). Client secrets live in the private credential store; passwords are never stored.

``remotefs login agave`` (:func:`login`) keeps the tokens of a profile in the store; a
filesystem given no password or token uses them (:func:`profile_login`), and every renewal
writes the rotated refresh token back (:class:`~remotefs.auth.stored.StoredTokens`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from remotefs.agave.account import DEFAULT_BASE_URL, AgaveAccount
from remotefs.auth.store import CredentialStore
from remotefs.auth.stored import StoredTokens, token_record
from remotefs.auth.tokens import Token, TokenProvider
from remotefs.config import login_record, profile_name, profile_settings
from remotefs.errors import AuthenticationError
from remotefs.http import RetryPolicy, Timeouts

log = logging.getLogger("remotefs.agave")

SERVICE = "agave"
ENV = {
    "base_url": "AGAVE_BASE_URL",
    "username": "AGAVE_USERNAME",
    "password": "AGAVE_PASSWORD",
    "client_name": "AGAVE_CLIENT_NAME",
    "client_key": "AGAVE_CLIENT_KEY",
    "client_secret": "AGAVE_CLIENT_SECRET",
    "token": "AGAVE_TOKEN",
    "refresh_token": "AGAVE_REFRESH_TOKEN",
}
SETTINGS = {
    "base_url": "AGAVE_BASE_URL",
    "username": "AGAVE_USERNAME",
    "client_name": "AGAVE_CLIENT_NAME",
}
DEFAULT_CLIENT_NAME = "remotefs"
NOT_LOGGED_IN = "not logged in: run `remotefs login agave`"


@dataclass
class AgaveCredentials:
    """What the user gave us to authenticate with; secrets stay out of the repr."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    client_name: str = DEFAULT_CLIENT_NAME
    client_key: str | None = None
    client_secret: str | None = field(default=None, repr=False)


class AgaveAuthenticator:
    """The ``refresher`` of a TokenProvider for Agave: refresh grant, else password login."""

    def __init__(
        self,
        account: AgaveAccount,
        credentials: AgaveCredentials,
        store: CredentialStore | None = None,
    ) -> None:
        self.account = account
        self.credentials = credentials
        self.store = store
        self._client_given = bool(credentials.client_key and credentials.client_secret)

    def __repr__(self) -> str:
        return f"<AgaveAuthenticator {self.account.base_url} user={self.credentials.username}>"

    def __call__(self, old: Token | None) -> Token:
        creds = self.credentials
        if old is not None and old.refresh_token and creds.client_key and creds.client_secret:
            try:
                return self.account.refresh_token(
                    creds.client_key, creds.client_secret, old.refresh_token
                )
            except AuthenticationError:
                if not (creds.username and creds.password):
                    raise
                log.info("the refresh grant was refused; logging in again")
        if creds.username and creds.password:
            key, secret = self.client()
            try:
                return self.account.get_token(key, secret, creds.username, creds.password)
            except AuthenticationError as exc:
                if self._client_given or exc.status != 401:
                    raise
            # Our client was deleted or replaced elsewhere: find or make it again, once.
            log.info("OAuth client %r was rejected; setting it up again", creds.client_name)
            creds.client_key = creds.client_secret = None
            key, secret = self.client()
            return self.account.get_token(key, secret, creds.username, creds.password)
        raise AuthenticationError(
            f"{NOT_LOGGED_IN}, or pass username and password (or set AGAVE_USERNAME and "
            "AGAVE_PASSWORD), or a refresh token with client_key and client_secret"
        )

    def _record_name(self) -> str:
        creds = self.credentials
        return f"agave-client {self.account.base_url} {creds.username} {creds.client_name}"

    def client(self) -> tuple[str, str]:
        """The OAuth client's key and secret, reusing or creating the client as needed."""
        creds = self.credentials
        if creds.client_key and creds.client_secret:
            return creds.client_key, creds.client_secret
        if not (creds.username and creds.password):
            raise AuthenticationError("creating an Agave OAuth client needs username and password")
        existing = {
            c.get("name"): c.get("consumerKey")
            for c in self.account.list_clients(creds.username, creds.password)
        }
        stored = self.store.get(self._record_name()) if self.store else None
        key = existing.get(creds.client_name)
        secret = creds.client_secret
        if key and not secret and stored and stored.get("consumerKey") == key:
            secret = stored.get("consumerSecret")
        if key and secret:
            creds.client_key, creds.client_secret = key, secret
            return key, secret
        if key:
            log.warning(
                "replacing Agave client %r: its secret is not known here", creds.client_name
            )
            self.account.delete_client(creds.username, creds.password, creds.client_name)
        made = self.account.create_client(
            creds.username, creds.password, creds.client_name, description="remotefs"
        )
        key, secret = made["consumerKey"], made["consumerSecret"]
        if self.store is not None:
            self.store.put(self._record_name(), {"consumerKey": key, "consumerSecret": secret})
        creds.client_key, creds.client_secret = key, secret
        return key, secret


def profile_login(
    profile: str | None, opt: dict[str, str | None], store: CredentialStore
) -> str | None:
    """Fill the settings missing from ``opt`` from the profile; the stored login to use, if any.

    The stored login serves when the caller gave no password or token (or named the profile)
    and it belongs to the same tenant and user.
    """
    name = profile_name(profile)
    for key, value in profile_settings(SERVICE, name).items():
        if key in SETTINGS and opt.get(key) is None:
            opt[key] = str(value)
    if profile is None and (opt["password"] or opt["token"] or opt["refresh_token"]):
        return None
    record = login_record(SERVICE, name)
    saved = store.get(record)
    base_url = (opt["base_url"] or DEFAULT_BASE_URL).rstrip("/")
    if not saved or saved.get("base_url") != base_url:
        return None
    if opt["username"] and saved.get("username") != opt["username"]:
        return None
    opt["username"] = saved.get("username")
    for key in ("client_name", "client_key", "client_secret"):
        opt[key] = opt[key] or saved.get(key)
    return record


@dataclass(frozen=True)
class ResolvedLogin:
    """Where a filesystem logs in, as whom, and the provider of its tokens."""

    base_url: str
    profile: str | None  # the profile whose stored login renews the tokens, or as given
    account: AgaveAccount
    credentials: AgaveCredentials
    tokens: TokenProvider


def resolve_login(
    given: Mapping[str, str | None],
    *,
    profile: str | None,
    store: CredentialStore,
    token_expires_at: float | None,
    verify: bool,
    timeouts: Timeouts,
    retry: RetryPolicy,
) -> ResolvedLogin:
    """Each option of ``ENV`` from ``given``, else its environment variable, else the login of
    ``profile``; the tokens start from a given token and renew through the stored login, or
    through the refresh grant and password login of :class:`AgaveAuthenticator`."""
    opt = {
        k: given.get(k) if given.get(k) is not None else os.environ.get(v) for k, v in ENV.items()
    }
    record = profile_login(profile, opt, store)
    base_url = (opt["base_url"] or DEFAULT_BASE_URL).rstrip("/")
    account = AgaveAccount(base_url, verify=verify, timeouts=timeouts, retry=retry)
    credentials = AgaveCredentials(
        username=opt["username"],
        password=opt["password"],
        client_name=opt["client_name"] or DEFAULT_CLIENT_NAME,
        client_key=opt["client_key"],
        client_secret=opt["client_secret"],
    )
    initial = None
    if opt["token"] or opt["refresh_token"]:
        initial = Token(
            access_token=opt["token"] or "",
            refresh_token=opt["refresh_token"],
            expires_at=token_expires_at if opt["token"] else 0.0,
        )
    authenticator = AgaveAuthenticator(account, credentials, store)
    if record is None:
        tokens = TokenProvider(initial, authenticator)
    else:
        saved = stored_tokens(store, record, authenticator)
        tokens = TokenProvider(initial or saved.load(), saved)
    used = profile_name(profile) if record else profile
    return ResolvedLogin(base_url, used, account, credentials, tokens)


def stored_tokens(store: CredentialStore, record: str, renew: AgaveAuthenticator) -> StoredTokens:
    """The tokens of a stored login, renewed through ``renew`` under the store's lock."""
    return StoredTokens(store, record, "access", renew, not_logged_in=NOT_LOGGED_IN)


def login(
    settings: dict[str, Any], password: str, store: CredentialStore, record: str
) -> dict[str, Any]:
    """Log in with a password and keep the tokens (never the password) under ``record``."""
    username = settings.get("username")
    if not username:
        raise ValueError("logging in to agave needs a username: give --username")
    account = AgaveAccount((settings.get("base_url") or DEFAULT_BASE_URL).rstrip("/"))
    creds = AgaveCredentials(
        username=username,
        password=password,
        client_name=settings.get("client_name") or DEFAULT_CLIENT_NAME,
    )
    token = AgaveAuthenticator(account, creds, store)(None)
    store.put(
        record,
        {
            "base_url": account.base_url,
            "username": username,
            "client_name": creds.client_name,
            "client_key": creds.client_key,
            "client_secret": creds.client_secret,
            "tokens": {"access": token_record(token)},
        },
    )
    return _identity(account, username, token, account.whoami(token.access_token))


def whoami(store: CredentialStore, record: str) -> dict[str, Any]:
    """Who the stored login is (``profiles/v2/me``) and when its access token expires."""
    saved = store.get(record)
    if not saved:
        raise AuthenticationError(NOT_LOGGED_IN)
    account = AgaveAccount(saved["base_url"])
    creds = AgaveCredentials(
        username=saved.get("username"),
        client_name=saved.get("client_name") or DEFAULT_CLIENT_NAME,
        client_key=saved.get("client_key"),
        client_secret=saved.get("client_secret"),
    )
    tokens = stored_tokens(store, record, AgaveAuthenticator(account, creds, store))
    provider = TokenProvider(tokens.load(), tokens)
    token = provider.current()
    try:
        me = account.whoami(token.access_token)
    except PermissionError:
        token = provider.reject(token.access_token)
        me = account.whoami(token.access_token)
    return _identity(account, str(saved.get("username")), token, me)


def _identity(
    account: AgaveAccount, username: str, token: Token, me: dict[str, Any]
) -> dict[str, Any]:
    name = " ".join(str(me[k]) for k in ("first_name", "last_name") if me.get(k))
    return {
        "service": SERVICE,
        "base_url": account.base_url,
        "username": me.get("username") or username,
        "name": name or None,
        "email": me.get("email"),
        "token_expires": token.expires_at,
    }
