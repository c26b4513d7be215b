"""A login shared by processes: its tokens live in the credential store and renew under its lock.

Policy: services rotate refresh tokens (Agave retires one once used), so two processes that
share a login must never both present the same one. Every renewal therefore happens inside
the store's exclusive lock, starting from the newest refresh token in the store, and the new
tokens are written back before the lock is released. A process that finds a different, still
valid access token there (another process renewed meanwhile) adopts it instead of renewing.
A login that has disappeared from the store (``remotefs logout``) is reported as such.
"""

from __future__ import annotations

from typing import Any

from remotefs.auth.store import CredentialStore, Record
from remotefs.auth.tokens import Refresher, Token
from remotefs.errors import AuthenticationError


def token_record(token: Token) -> Record:
    """A token as the credential store keeps it."""
    return {
        "access_token": token.access_token,
        "refresh_token": token.refresh_token,
        "expires_at": token.expires_at,
        "lifetime": token.lifetime,
    }


def token_from_record(data: Any) -> Token | None:
    """The token a store record holds, or None."""
    if not isinstance(data, dict) or not (data.get("access_token") or data.get("refresh_token")):
        return None
    return Token(
        access_token=str(data.get("access_token") or ""),
        refresh_token=data.get("refresh_token"),
        expires_at=data.get("expires_at"),
        lifetime=data.get("lifetime"),
    )


class StoredTokens:
    """The refresher of a TokenProvider whose tokens are ``record["tokens"][key]`` in a store.

    ``renew(token)`` does the actual grant (a refresh grant with ``token.refresh_token``);
    ``not_logged_in`` is the message when the record is gone.
    """

    def __init__(
        self,
        store: CredentialStore,
        record: str,
        key: str,
        renew: Refresher,
        *,
        not_logged_in: str,
        margin: float = 300.0,
    ) -> None:
        self.store = store
        self.record = record
        self.key = key
        self._renew = renew
        self._not_logged_in = not_logged_in
        self._margin = margin

    def __repr__(self) -> str:
        return f"<StoredTokens {self.record!r} [{self.key}] in {self.store!r}>"

    def load(self) -> Token | None:
        """The stored token, or None when the login is not in the store."""
        record = self.store.get(self.record)
        return token_from_record((record or {}).get("tokens", {}).get(self.key))

    def __call__(self, old: Token | None) -> Token:
        result: list[Token] = []

        def change(record: Record | None) -> Record:
            if record is None:
                raise AuthenticationError(self._not_logged_in)
            saved = token_from_record(record.get("tokens", {}).get(self.key))
            if saved is not None and self._adoptable(saved, old):
                result.append(saved)
                return record
            new = self._renew(saved or old)
            if new.refresh_token is None and saved is not None:
                new = Token(new.access_token, saved.refresh_token, new.expires_at, new.lifetime)
            record.setdefault("tokens", {})[self.key] = token_record(new)
            result.append(new)
            return record

        self.store.update(self.record, change)
        return result[0]

    def _adoptable(self, saved: Token, old: Token | None) -> bool:
        """Whether another process renewed meanwhile and left a token still fresh."""
        if old is not None and saved.access_token == old.access_token:
            return False
        margin = min(self._margin, saved.lifetime / 2) if saved.lifetime else self._margin
        return bool(saved.access_token) and saved.remaining() > margin
