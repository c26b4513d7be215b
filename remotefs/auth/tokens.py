"""Access tokens that renew themselves, safely from many threads and coroutines at once.

Policy: a token is refreshed *before* it expires, when less than ``margin`` seconds remain
(at most half its lifetime, so short-lived tokens are not refreshed on every call), and once
more when a service says the token was rejected. Refreshes are serialised by one lock and
re-checked inside it, so a burst of callers causes one refresh, not many. A failed refresh
raises; the stale token is never used again after the service rejected it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from remotefs.errors import AuthenticationError


@dataclass(frozen=True)
class Token:
    """An OAuth2 access token with its refresh token and expiry (epoch seconds)."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: float | None = None
    lifetime: float | None = None
    token_type: str = "Bearer"

    @classmethod
    def from_response(cls, data: dict[str, Any], now: float | None = None) -> Token:
        """Build from an OAuth2 token reply (``access_token``, ``expires_in``, ...)."""
        now = time.time() if now is None else now
        expires_in = data.get("expires_in")
        lifetime = float(expires_in) if expires_in is not None else None
        return cls(
            access_token=str(data["access_token"]),
            refresh_token=data.get("refresh_token"),
            expires_at=now + lifetime if lifetime is not None else None,
            lifetime=lifetime,
        )

    def remaining(self, now: float | None = None) -> float:
        """Seconds until expiry (infinite when the service gave no expiry)."""
        if self.expires_at is None:
            return float("inf")
        return self.expires_at - (time.time() if now is None else now)

    def expired(self) -> Token:
        """A copy that counts as already expired (after the service rejected it)."""
        return replace(self, expires_at=0.0)


Refresher = Callable[[Token | None], Token]


class TokenProvider:
    """Hands out a valid access token, refreshing it through ``refresher`` when needed.

    ``refresher(old)`` gets the current token (or None) and returns a new one; it raises
    :class:`AuthenticationError` when it cannot. ``on_refresh`` is told about every new token
    (to persist a rotated refresh token).
    """

    def __init__(
        self,
        token: Token | None,
        refresher: Refresher | None,
        *,
        margin: float = 300.0,
        on_refresh: Callable[[Token], None] | None = None,
    ) -> None:
        if token is None and refresher is None:
            raise ValueError("a TokenProvider needs a token or a way to obtain one")
        self._token = token
        self._refresher = refresher
        self._margin = margin
        self._on_refresh = on_refresh
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        state = "none" if self._token is None else f"{self._token.remaining():.0f}s left"
        return f"<TokenProvider {state}>"

    @property
    def token(self) -> Token | None:
        """The token held now (possibly stale); use :meth:`current` to get a valid one."""
        return self._token

    def _fresh(self, token: Token | None) -> bool:
        if token is None:
            return False
        margin = self._margin
        if token.lifetime:
            margin = min(margin, token.lifetime / 2)
        return token.remaining() > margin

    def current(self) -> Token:
        """A token valid for at least the margin, refreshed first if necessary."""
        token = self._token
        if self._fresh(token):
            assert token is not None
            return token
        with self._lock:
            if not self._fresh(self._token):
                self._refresh_locked()
            assert self._token is not None
            return self._token

    def reject(self, stale_access_token: str) -> Token:
        """The service rejected ``stale_access_token``: refresh unless another caller did."""
        with self._lock:
            if self._token is None or self._token.access_token == stale_access_token:
                if self._token is not None:
                    self._token = self._token.expired()
                self._refresh_locked()
            assert self._token is not None
            return self._token

    def _refresh_locked(self) -> None:
        if self._refresher is None:
            raise AuthenticationError(
                "the access token expired and cannot be renewed: log in again, or pass a "
                "refresh token or credentials"
            )
        new = self._refresher(self._token)
        self._token = new
        if self._on_refresh is not None:
            self._on_refresh(new)

    async def acurrent(self) -> Token:
        """:meth:`current` for coroutines: a refresh runs in a worker thread."""
        token = self._token
        if self._fresh(token):
            assert token is not None
            return token
        return await asyncio.to_thread(self.current)

    async def areject(self, stale_access_token: str) -> Token:
        """:meth:`reject` for coroutines."""
        return await asyncio.to_thread(self.reject, stale_access_token)


class TokenAuth:
    """Bearer authentication for :func:`remotefs.http.request` on top of a TokenProvider.

    ``is_token_error(status, body)`` tells a rejected token from a service-level refusal
    (services differ: Agave's gateway answers a JSON ``fault``); only the former refreshes.
    """

    def __init__(
        self,
        provider: TokenProvider,
        is_token_error: Callable[[int, bytes], bool] = lambda status, body: status == 401,
    ) -> None:
        self.provider = provider
        self._is_token_error = is_token_error

    def __repr__(self) -> str:
        return f"<TokenAuth {self.provider!r}>"

    async def header(self) -> str:
        """The Authorization header value for the next attempt."""
        token = await self.provider.acurrent()
        return f"Bearer {token.access_token}"

    async def refresh_after(self, stale: str, status: int, body: bytes) -> bool:
        """Refresh after a 401 that means a bad token; True when a retry may succeed."""
        if not self._is_token_error(status, body):
            return False
        await self.provider.areject(stale.partition(" ")[2])
        return True
