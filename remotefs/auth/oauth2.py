"""OAuth2 token grants the services use: password and refresh_token.

Client authentication is either HTTP basic with the client's key and secret (Agave's
``/token``) or a ``client_id`` form field (Keycloak public clients). Failures become an
:class:`AuthenticationError` that says what to do; passwords and secrets never enter it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from remotefs.auth.tokens import Token
from remotefs.errors import AuthenticationError, RemoteError
from remotefs.http import NO_RETRY, Timeouts, service_message, sync_request

if TYPE_CHECKING:
    import requests


@dataclass(frozen=True)
class OAuth2Client:
    """A client of an OAuth2 token endpoint."""

    token_url: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    client_auth: Literal["basic", "form"] = "basic"
    scope: str | None = None
    timeouts: Timeouts = Timeouts()
    verify: bool | str = True

    def password_grant(
        self, username: str, password: str, session: requests.Session | None = None
    ) -> Token:
        """Log in with a username and password."""
        form = {"grant_type": "password", "username": username, "password": password}
        hint = "check the username, password and client credentials"
        return self._grant(form, session, f"logging in as {username!r}", hint)

    def refresh_grant(self, refresh_token: str, session: requests.Session | None = None) -> Token:
        """Exchange a refresh token for a new access token (and usually a new refresh token)."""
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        hint = "the refresh token is no longer valid: log in again"
        return self._grant(form, session, "renewing the access token", hint)

    def _grant(
        self, form: dict[str, str], session: requests.Session | None, doing: str, hint: str
    ) -> Token:
        import requests

        if self.scope:
            form["scope"] = self.scope
        auth: tuple[str, str] | None = None
        if self.client_auth == "basic":
            auth = (self.client_id, self.client_secret or "")
        else:
            form["client_id"] = self.client_id
            if self.client_secret:
                form["client_secret"] = self.client_secret
        own = session is None
        session = session or requests.Session()
        try:
            # A grant is not idempotent (refresh tokens rotate): never resend it blindly.
            resp = sync_request(
                session,
                "POST",
                self.token_url,
                idempotent=False,
                retry=NO_RETRY,
                timeouts=self.timeouts,
                data=form,
                auth=auth,
                verify=self.verify,
                on_error=lambda status, body, path: _grant_error(status, body, doing, hint),
            )
            data: dict[str, Any] = resp.json()
        except ValueError:
            raise AuthenticationError(
                f"{doing} failed: the token endpoint did not answer JSON"
            ) from None
        finally:
            if own:
                session.close()
        if "access_token" not in data:
            raise AuthenticationError(f"{doing} failed: the reply holds no access_token")
        return Token.from_response(data)


def _grant_error(status: int, body: bytes, doing: str, hint: str) -> RemoteError:
    message = service_message(body)
    if status in (400, 401):
        return AuthenticationError(f"{doing} failed: {message}; {hint}", status=status)
    return RemoteError(f"{doing} failed: {message}", status=status, retriable=status >= 500)
