"""Keycloak (OpenID Connect) logins: the realm's token endpoint and its public clients.

EDITO's realm ``datalab`` has public clients (no secret): ``onyxia`` for the process API and
``onyxia-minio`` for the token handed to MinIO's STS. A :class:`KeycloakLogin` is the refresher
of a :class:`~remotefs.auth.tokens.TokenProvider`: refresh grant while a refresh token is held,
password grant when there is none or it was rejected and a password is known.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from remotefs.auth.oauth2 import OAuth2Client
from remotefs.auth.tokens import Token
from remotefs.errors import AuthenticationError
from remotefs.http import Timeouts

log = logging.getLogger("remotefs.auth")

EDITO_TOKEN_URL = "https://auth.dive.edito.eu/auth/realms/datalab/protocol/openid-connect/token"


def token_url(server: str, realm: str) -> str:
    """The token endpoint of ``realm`` on a Keycloak server (``https://host/auth``)."""
    return f"{server.rstrip('/')}/realms/{realm}/protocol/openid-connect/token"


@dataclass
class KeycloakLogin:
    """Obtain and renew tokens of one public client of a realm."""

    token_url: str
    client_id: str
    scope: str | None = "openid"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    verify: bool = True
    timeouts: Timeouts = Timeouts()

    @property
    def client(self) -> OAuth2Client:
        """The OAuth2 client (form client authentication, as Keycloak's public clients use)."""
        return OAuth2Client(
            token_url=self.token_url,
            client_id=self.client_id,
            client_auth="form",
            scope=self.scope,
            timeouts=self.timeouts,
            verify=self.verify,
        )

    def __call__(self, old: Token | None) -> Token:
        if old is not None and old.refresh_token:
            try:
                return self.client.refresh_grant(old.refresh_token)
            except AuthenticationError:
                if not (self.username and self.password):
                    raise
                log.info("refresh token rejected by Keycloak; logging in again")
        if self.username and self.password:
            return self.client.password_grant(self.username, self.password)
        raise AuthenticationError(
            f"no usable credentials for Keycloak client {self.client_id!r}: pass a username and "
            "password, or a refresh token"
        )
