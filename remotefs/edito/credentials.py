"""S3 credentials for EDITO that renew themselves: Keycloak token -> STS -> S3 keys.

Policy: STS credentials are renewed before they expire, botocore-style (an advisory window of
15 minutes and a mandatory one of 10, shrunk to a third and a sixth of the lifetime for short
credentials), with a fresh Keycloak token each time; a token STS rejects is renewed and the
call repeated once. The provider is built inside each filesystem from plain settings, so it
never travels in a pickle; what travels is :meth:`EditoCredentials.state`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from remotefs.auth.keycloak import EDITO_TOKEN_URL, KeycloakLogin
from remotefs.auth.redact import protect_loggers
from remotefs.auth.tokens import Refresher, Token, TokenProvider
from remotefs.edito.sts import (
    DEFAULT_DURATION,
    DEFAULT_ROLE_ARN,
    StsCredentials,
    assume_role_with_web_identity,
)
from remotefs.errors import AuthenticationError

log = logging.getLogger("remotefs.edito")

DEFAULT_ENDPOINT = "https://minio.dive.edito.eu"
DEFAULT_REGION = "waw3-1"
S3_CLIENT_ID = "onyxia-minio"
S3_SCOPE = "openid email profile"
ADVISORY, MANDATORY = 15 * 60.0, 10 * 60.0


@dataclass(frozen=True)
class EditoSettings:
    """Where EDITO's services are and how long credentials should last (no secrets)."""

    token_url: str = EDITO_TOKEN_URL
    endpoint_url: str = DEFAULT_ENDPOINT
    region: str = DEFAULT_REGION
    duration: int = DEFAULT_DURATION
    client_id: str = S3_CLIENT_ID
    scope: str = S3_SCOPE
    role_arn: str = DEFAULT_ROLE_ARN
    verify: bool = True


@dataclass
class EditoCredentials:
    """Keycloak login plus STS exchange for one user; hands out current S3 credentials.

    Tokens come from ``refresher`` when given (a stored login), else from a Keycloak login.
    """

    settings: EditoSettings
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: Token | None = field(default=None, repr=False)
    current: StsCredentials | None = field(default=None, repr=False)
    refresher: Refresher | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        protect_loggers()
        login = KeycloakLogin(
            token_url=self.settings.token_url,
            client_id=self.settings.client_id,
            scope=self.settings.scope,
            username=self.username,
            password=self.password,
            verify=self.settings.verify,
        )
        self.tokens = TokenProvider(self.token, self.refresher or login, margin=60.0)
        self._botocore: Any = None

    def fetch(self) -> StsCredentials:
        """New STS credentials from a valid Keycloak token (renewed once if STS rejects it)."""
        web_token = self.tokens.current()
        try:
            creds = self._exchange(web_token)
        except AuthenticationError:
            log.info("STS rejected the Keycloak token; renewing it and trying once more")
            creds = self._exchange(self.tokens.reject(web_token.access_token))
        self.current = creds
        log.debug("new S3 credentials, valid %.0f s", creds.remaining())
        return creds

    def _exchange(self, web_token: Token) -> StsCredentials:
        s = self.settings
        return assume_role_with_web_identity(
            s.endpoint_url,
            web_token.access_token,
            duration=s.duration,
            region=s.region,
            role_arn=s.role_arn,
            verify=s.verify,
        )

    def valid(self) -> StsCredentials:
        """Credentials with at least the mandatory window left, fetched if needed."""
        creds = self.current
        if creds is None or creds.remaining() <= _windows(creds)[1]:
            creds = self.fetch()
        return creds

    def state(self) -> dict[str, Any]:
        """What a copy in another process needs: tokens and keys, never the password."""
        token = self.tokens.token
        creds = self.current
        return {
            "refresh_token": token.refresh_token if token else None,
            "key": creds.access_key_id if creds else None,
            "secret": creds.secret_access_key if creds else None,
            "session_token": creds.session_token if creds else None,
            "expiration": creds.expiration.isoformat() if creds else None,
        }

    def botocore_credentials(self) -> Any:
        """aiobotocore refreshable credentials that call back into :meth:`fetch`."""
        from aiobotocore.credentials import AioRefreshableCredentials

        first = self.valid()
        advisory, mandatory = _windows(first)

        async def refresh() -> dict[str, str]:
            return (await asyncio.to_thread(self.fetch)).as_botocore_metadata()

        self._botocore = AioRefreshableCredentials.create_from_metadata(
            first.as_botocore_metadata(),
            refresh_using=refresh,
            method="remotefs-edito-sts",
            advisory_timeout=advisory,
            mandatory_timeout=mandatory,
        )
        return self._botocore

    async def renew_now(self) -> None:
        """Replace the credentials at once (the server refused them before their expiry)."""
        if self._botocore is None:
            await asyncio.to_thread(self.fetch)
            return
        # botocore has no public "refresh now"; this is the call its own expiry check makes.
        await self._botocore._protected_refresh(is_mandatory=True)


def _windows(creds: StsCredentials) -> tuple[float, float]:
    """Advisory and mandatory refresh windows for credentials of this lifetime."""
    lifetime = max(creds.remaining(), 1.0)
    return min(ADVISORY, lifetime / 3), min(MANDATORY, lifetime / 6)


def parse_expiration(value: str) -> dt.datetime:
    """An ISO-8601 expiry as an aware datetime."""
    when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)
