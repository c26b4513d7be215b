"""OAuth clients (``/clients/v2``), the token endpoint (``/token``) and the API gateway check.

Policy, following the WSO2 front end of Agave v2:

* ``/clients/v2`` authenticates with HTTP Basic username:password; clients belong to a user, names
  are unique per user, every user starts with ``DefaultApplication``.
* ``/token`` authenticates the client with HTTP Basic consumerKey:consumerSecret and answers plain
  OAuth JSON (not the envelope). Refresh rotates: the old refresh token is retired.
* Every other path needs ``Authorization: Bearer <token>``; a missing, unknown or expired token is
  answered by the gateway's own 401 ``fault`` JSON, never the Agave envelope.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass

from aiohttp import BasicAuth, web

from remotefs.testing.agave.envelope import (
    base_url,
    json_response,
    page,
    read_fields,
    success,
)
from remotefs.testing.agave.store import AgaveError

__all__ = ["CALLER", "Auth"]

CALLER: ContextVar[str] = ContextVar("agave_caller")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
TIERS = ("UNLIMITED", "GOLD", "SILVER", "BRONZE")
OPEN_APIS = ("/token", "/clients/v2")


@dataclass
class Client:
    """An OAuth client (API key pair) owned by a user."""

    name: str
    owner: str
    key: str
    secret: str
    tier: str = "Unlimited"
    callback_url: str | None = ""
    description: str | None = ""


@dataclass(frozen=True)
class Grant:
    """What an access token stands for and until when."""

    user: str
    client_key: str
    expires_at: float
    generation: int


def _api(path: str) -> str:
    """The gateway API a path belongs to: its first two segments (``/files/v2``)."""
    return "/" + "/".join(path.strip("/").split("/")[:2])


def _basic(request: web.Request) -> BasicAuth | None:
    """The HTTP Basic credentials of a request, if well formed."""
    try:
        return BasicAuth.decode(request.headers.get("Authorization", ""))
    except ValueError:
        return None


def _oauth_error(status: int, code: str, description: str) -> web.Response:
    """An OAuth error body (RFC 6749 section 5.2)."""
    return web.json_response({"error": code, "error_description": description}, status=status)


class Auth:
    """Users, OAuth clients and tokens, with their HTTP routes and the gateway middleware."""

    def __init__(self, users: Mapping[str, str], token_lifetime: float) -> None:
        self.users = dict(users)
        self.token_lifetime = token_lifetime
        self._clients: dict[str, Client] = {}
        self._access: dict[str, Grant] = {}
        self._refresh: dict[str, tuple[str, str]] = {}
        self._generation = 0
        for user in self.users:
            self._new_client(user, "DefaultApplication", None, None, "Unlimited")

    def expire_tokens(self) -> None:
        """Make every access token issued so far invalid (refresh tokens stay usable)."""
        self._generation += 1

    def user_for(self, token: str) -> str | None:
        """The user an access token belongs to, or None if unknown or expired."""
        grant = self._access.get(token)
        if grant is None:
            return None
        if grant.generation != self._generation or time.monotonic() >= grant.expires_at:
            self._access.pop(token, None)
            return None
        return grant.user

    def routes(self) -> list[web.RouteDef]:
        """Routes of the clients service and the token endpoint."""
        routes = [web.post("/token", self.token)]
        for root in ("/clients/v2", "/clients/v2/"):
            routes += [web.get(root, self.list_clients), web.post(root, self.create_client)]
        for item in ("/clients/v2/{name}", "/clients/v2/{name}/"):
            routes += [web.get(item, self.get_client), web.delete(item, self.delete_client)]
        return routes

    # -- gateway ---------------------------------------------------------------------------------

    @web.middleware
    async def gateway(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Require a valid bearer token outside the open APIs; the handler sees ``CALLER``."""
        api = _api(request.path)
        if api in OPEN_APIS:
            return await handler(request)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        user = self.user_for(token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            description = (
                f"Access failure for API: {api}, version: v2 status: (900901) - "
                "Invalid Credentials. Make sure you have given the correct access token"
            )
            fault = {"code": 900901, "message": "Invalid Credentials", "description": description}
            return web.json_response({"fault": fault}, status=401)
        reset = CALLER.set(user)
        try:
            return await handler(request)
        finally:
            CALLER.reset(reset)

    # -- clients ---------------------------------------------------------------------------------

    def _owner(self, request: web.Request) -> str:
        """The user named by HTTP Basic username:password, or 401."""
        auth = _basic(request)
        if auth is None or self.users.get(auth.login) != auth.password:
            raise AgaveError(401, "Invalid username/password combination")
        return auth.login

    def _new_client(
        self, owner: str, name: str, callback: str | None, description: str | None, tier: str
    ) -> Client:
        """Register a client with a fresh key pair."""
        client = Client(name, owner, secrets.token_urlsafe(21), secrets.token_urlsafe(21))
        client.callback_url, client.description, client.tier = callback, description, tier
        self._clients[client.key] = client
        return client

    def _find(self, owner: str, name: str) -> Client | None:
        """The client `name` of `owner`."""
        return next(
            (c for c in self._clients.values() if c.owner == owner and c.name == name), None
        )

    def _client_json(self, request: web.Request, client: Client, secret: bool) -> dict[str, object]:
        """A client object; the secret is shown only right after creation."""
        base = base_url(request)
        data: dict[str, object] = {"name": client.name, "consumerKey": client.key}
        if secret:
            data["consumerSecret"] = client.secret
        data.update(
            tier=client.tier,
            callbackUrl=client.callback_url,
            description=client.description,
            _links={
                "self": {"href": f"{base}/clients/v2/{client.name}"},
                "subscriber": {"href": f"{base}/profiles/v2/{client.owner}"},
                "subscriptions": {"href": f"{base}/clients/v2/{client.name}/subscriptions/"},
            },
        )
        return data

    async def list_clients(self, request: web.Request) -> web.Response:
        """GET /clients/v2: the caller's clients, without secrets."""
        owner = self._owner(request)
        mine = [
            self._client_json(request, c, False) for c in self._clients.values() if c.owner == owner
        ]
        return success(request, page(request, mine, 100), "Clients retrieved successfully.")

    async def create_client(self, request: web.Request) -> web.Response:
        """POST /clients/v2: a new client and its secret, 201."""
        owner = self._owner(request)
        fields = await read_fields(request)
        name = fields.get("clientName", "").strip()
        if not name:
            raise AgaveError(400, "No clientName specified. Please specify a name for the client")
        if self._find(owner, name) is not None:
            raise AgaveError(400, f"A client with name {name} already exists for user {owner}")
        tier = fields.get("tier", "Unlimited").strip() or "Unlimited"
        if tier.upper() not in TIERS:
            raise AgaveError(400, f"Invalid tier {tier}. Valid values are {', '.join(TIERS)}")
        client = self._new_client(
            owner,
            name,
            fields.get("callbackUrl", ""),
            fields.get("description", ""),
            tier.capitalize(),
        )
        data = self._client_json(request, client, True)
        return success(request, data, "Client created successfully.", status=201)

    def _named(self, request: web.Request) -> Client:
        """The client named in the URL, owned by the caller, or 404."""
        owner = self._owner(request)
        name = request.match_info["name"]
        client = self._find(owner, name)
        if client is None:
            raise AgaveError(404, f"No client found with name {name}")
        return client

    async def get_client(self, request: web.Request) -> web.Response:
        """GET /clients/v2/{name}."""
        client = self._named(request)
        data = self._client_json(request, client, False)
        return success(request, data, "Client retrieved successfully.")

    async def delete_client(self, request: web.Request) -> web.Response:
        """DELETE /clients/v2/{name}: the client goes, and so do its tokens."""
        client = self._named(request)
        del self._clients[client.key]
        for token in [t for t, g in self._access.items() if g.client_key == client.key]:
            del self._access[token]
        for token in [t for t, (_, k) in self._refresh.items() if k == client.key]:
            del self._refresh[token]
        return success(request, None, "Client deleted successfully.")

    # -- tokens ----------------------------------------------------------------------------------

    async def token(self, request: web.Request) -> web.Response:
        """POST /token: password and refresh_token grants, client authenticated by Basic."""
        auth = _basic(request)
        client = self._clients.get(auth.login) if auth is not None else None
        if auth is None or client is None or client.secret != auth.password:
            return _oauth_error(401, "invalid_client", "Client Authentication failed.")
        form = await request.post()
        grant = str(form.get("grant_type", ""))
        if grant == "password":
            user, password = str(form.get("username", "")), str(form.get("password", ""))
            if not user or self.users.get(user) != password:
                return _oauth_error(400, "invalid_grant", f"Authentication failed for {user}")
        elif grant == "refresh_token":
            presented = str(form.get("refresh_token", ""))
            owner = self._refresh.get(presented)
            if owner is None or owner[1] != client.key:
                return _oauth_error(400, "invalid_grant", "Provided Authorization Grant is invalid")
            user = owner[0]
            del self._refresh[presented]
        elif not grant:
            return _oauth_error(400, "invalid_request", "Missing parameters: grant_type")
        else:
            return _oauth_error(400, "unsupported_grant_type", f"Unsupported grant_type {grant}")
        return self._issue(request, user, client)

    def _issue(self, request: web.Request, user: str, client: Client) -> web.Response:
        """A fresh access token and refresh token for `user` through `client`."""
        access, refresh = secrets.token_hex(16), secrets.token_hex(16)
        expires_at = time.monotonic() + self.token_lifetime
        self._access[access] = Grant(user, client.key, expires_at, self._generation)
        self._refresh[refresh] = (user, client.key)
        lifetime = self.token_lifetime
        body = {
            "access_token": access,
            "expires_in": int(lifetime) if float(lifetime).is_integer() else lifetime,
            "refresh_token": refresh,
            "scope": "default",
            "token_type": "bearer",
        }
        response = json_response(request, body)
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
        return response
