"""How an AgaveFileSystem obtains and renews its tokens.

Order of preference: a refresh token (renewed through the OAuth client), then a password
login. A password login needs an OAuth client: the given key and secret, else the client of
``client_name`` whose secret we stored when we created it, else a new client of that name
(the service never shows a secret twice, so an existing client we hold no secret for is
replaced). Client secrets live in the private credential store; passwords are never stored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from remotefs.agave.account import AgaveAccount
from remotefs.auth.store import CredentialStore
from remotefs.auth.tokens import Token
from remotefs.errors import AuthenticationError

log = logging.getLogger("remotefs.agave")

DEFAULT_CLIENT_NAME = "remotefs"


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
                log.info("refresh token rejected; logging in again with the password")
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
            "no usable Agave credentials: pass username and password (or set AGAVE_USERNAME "
            "and AGAVE_PASSWORD), or a refresh token with client_key and client_secret"
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
