"""Agave account operations from the seed notebook: OAuth clients, tokens and the profile.

Blocking calls on ``requests``, for logins and the command line. OAuth clients are managed
with HTTP basic auth on the user's own username and password; tokens come from ``/token``
with basic auth on the client's key and secret.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from remotefs.auth.oauth2 import OAuth2Client
from remotefs.auth.tokens import Token
from remotefs.http import NO_RETRY, RetryPolicy, Timeouts, sync_request

if TYPE_CHECKING:
    import requests

DEFAULT_BASE_URL = "https://api.tacc.utexas.edu"
SCOPE = "PRODUCTION"


@dataclass(frozen=True)
class AgaveAccount:
    """Where an Agave tenant is and how to talk to it (no secrets)."""

    base_url: str = DEFAULT_BASE_URL
    verify: bool = True
    timeouts: Timeouts = Timeouts()
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def _call(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        session: requests.Session | None,
        **kwargs: Any,
    ) -> Any:
        import requests

        own = session is None
        session = session or requests.Session()
        try:
            resp = sync_request(
                session,
                method,
                self.base_url.rstrip("/") + path,
                idempotent=idempotent,
                retry=self.retry if idempotent else NO_RETRY,
                timeouts=self.timeouts,
                verify=self.verify,
                **kwargs,
            )
            data = resp.json() if resp.content else {}
        finally:
            if own:
                session.close()
        return data.get("result", data) if isinstance(data, dict) else data

    def list_clients(
        self, username: str, password: str, session: requests.Session | None = None
    ) -> list[dict[str, Any]]:
        """The user's OAuth clients (their secrets are not listed by the service)."""
        return list(
            self._call(
                "GET", "/clients/v2", idempotent=True, session=session, auth=(username, password)
            )
            or []
        )

    def create_client(
        self,
        username: str,
        password: str,
        client_name: str,
        *,
        description: str = "",
        session: requests.Session | None = None,
    ) -> dict[str, Any]:
        """Create an OAuth client; the reply is the only place its ``consumerSecret`` appears."""
        form = {"clientName": client_name, "description": description}
        result: dict[str, Any] = self._call(
            "POST",
            "/clients/v2",
            idempotent=False,
            session=session,
            data=form,
            auth=(username, password),
        )
        return result

    def delete_client(
        self,
        username: str,
        password: str,
        client_name: str,
        session: requests.Session | None = None,
    ) -> None:
        """Delete an OAuth client (its tokens stop working)."""
        self._call(
            "DELETE",
            f"/clients/v2/{client_name}",
            idempotent=True,
            session=session,
            auth=(username, password),
        )

    def oauth2(self, client_key: str, client_secret: str) -> OAuth2Client:
        """The token endpoint, authenticated as the given OAuth client."""
        return OAuth2Client(
            token_url=self.base_url.rstrip("/") + "/token",
            client_id=client_key,
            client_secret=client_secret,
            client_auth="basic",
            scope=SCOPE,
            timeouts=self.timeouts,
            verify=self.verify,
        )

    def get_token(self, client_key: str, client_secret: str, username: str, password: str) -> Token:
        """Password grant: a new access token and refresh token."""
        return self.oauth2(client_key, client_secret).password_grant(username, password)

    def refresh_token(self, client_key: str, client_secret: str, refresh_token: str) -> Token:
        """Refresh grant: the service rotates the refresh token, so keep the new one."""
        return self.oauth2(client_key, client_secret).refresh_grant(refresh_token)

    def whoami(self, access_token: str, session: requests.Session | None = None) -> dict[str, Any]:
        """The caller's profile (``profiles/v2/me``)."""
        result: dict[str, Any] = self._call(
            "GET",
            "/profiles/v2/me",
            idempotent=True,
            session=session,
            headers={"Authorization": f"Bearer {access_token}"},
        )
        return result
