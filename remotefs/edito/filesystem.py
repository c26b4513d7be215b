"""``edito://bucket/key``: EDITO's MinIO S3 as an s3fs filesystem whose keys renew themselves.

Defaults fit EDITO (endpoint ``https://minio.dive.edito.eu``, region ``waw3-1``, path-style
addressing) and MinIO (boto3 >= 1.36 would otherwise send checksums MinIO rejects). With a
username and password, or a Keycloak token or refresh token, S3 credentials come from STS and
are renewed before they expire, and once more if S3 answers ``ExpiredToken``. Ready
``key``/``secret``/``session_token`` (or the ``AWS_*`` variables of an EDITO pod) are used as
they are. Pickles carry settings, tokens and keys, never the password or a live session.
File transfers stream with bounded memory (:mod:`remotefs.edito.transfer`), ``batch_size``
files at a time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from typing import Any

from fsspec.callbacks import DEFAULT_CALLBACK, Callback
from s3fs import S3FileSystem

from remotefs.auth.store import CredentialStore
from remotefs.auth.tokens import Refresher, Token
from remotefs.config import profile_name
from remotefs.edito.credentials import (
    DEFAULT_ENDPOINT,
    DEFAULT_REGION,
    EditoCredentials,
    EditoSettings,
    parse_expiration,
)
from remotefs.edito.login import not_logged_in, profile_login, stored_tokens
from remotefs.edito.sts import DEFAULT_DURATION, StsCredentials
from remotefs.edito.transfer import download, upload

log = logging.getLogger("remotefs.edito")

ENV = {
    "token_url": "EDITO_TOKEN_URL",
    "endpoint_url": "EDITO_S3_ENDPOINT",
    "username": "EDITO_USERNAME",
    "password": "EDITO_PASSWORD",
    "token": "EDITO_TOKEN",
    "refresh_token": "EDITO_REFRESH_TOKEN",
}
SECRET_OPTIONS = frozenset({"password", "token", "refresh_token", "secret", "session_token"})
BATCH_SIZE = 8  # files in flight in put/get: enough to keep MinIO busy, few buffers
MINIO_CONFIG = {
    "s3": {"addressing_style": "path"},
    "request_checksum_calculation": "when_required",
    "response_checksum_validation": "when_required",
}


class EditoFileSystem(S3FileSystem):
    """s3fs on EDITO's MinIO with Keycloak login and self-renewing STS credentials.

    Keywords (environment variable in brackets): ``token_url`` (``EDITO_TOKEN_URL``),
    ``endpoint_url`` (``EDITO_S3_ENDPOINT``, else ``https://`` + ``AWS_S3_ENDPOINT``),
    ``region`` (``AWS_DEFAULT_REGION``), ``username``/``password`` (``EDITO_USERNAME``,
    ``EDITO_PASSWORD``), ``token``/``refresh_token`` (``EDITO_TOKEN``, ``EDITO_REFRESH_TOKEN``;
    Keycloak tokens of client ``onyxia-minio``), or ready ``key``/``secret``/``session_token``
    (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``); else the login
    of ``profile`` (``remotefs login edito``), whose settings also fill in what neither
    keywords nor environment give. (s3fs's AWS ``profile`` does not apply to edito://.)
    ``batch_size`` (8) files move at once in ``put``/``get``, each streamed (``transfer``).
    """

    protocol = ("edito",)

    def __init__(
        self,
        *args: Any,
        token_url: str | None = None,
        endpoint_url: str | None = None,
        region: str | None = None,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        refresh_token: str | None = None,
        key: str | None = None,
        secret: str | None = None,
        session_token: str | None = None,
        duration: int = DEFAULT_DURATION,
        verify: bool = True,
        expiration: str | None = None,
        batch_size: int = BATCH_SIZE,
        profile: str | None = None,
        **kwargs: Any,
    ) -> None:
        env = os.environ.get
        password = password or env(ENV["password"])
        token = token or env(ENV["token"])
        refresh_token = refresh_token or env(ENV["refresh_token"])
        opt = {
            "token_url": token_url or env(ENV["token_url"]),
            "endpoint_url": endpoint_url or env(ENV["endpoint_url"]) or _pod_endpoint(),
            "region": region or env("AWS_DEFAULT_REGION"),
            "username": username or env(ENV["username"]),
        }
        given = password or token or refresh_token or key or env("AWS_ACCESS_KEY_ID")
        store = CredentialStore()
        login = profile_login(profile, opt, store, given=bool(given or kwargs.get("anon")))
        self.login_profile = profile_name(profile) if login else profile
        region = opt["region"] or DEFAULT_REGION
        settings = EditoSettings(
            endpoint_url=(opt["endpoint_url"] or DEFAULT_ENDPOINT).rstrip("/"),
            region=region,
            duration=duration,
            verify=verify,
            **({"token_url": opt["token_url"]} if opt["token_url"] else {}),
        )
        username = opt["username"]
        self.settings = settings
        self.credentials: EditoCredentials | None = None
        config = _merge(MINIO_CONFIG, kwargs.pop("config_kwargs", None) or {})
        client_kwargs = {"region_name": region, **(kwargs.pop("client_kwargs", None) or {})}
        if not verify:
            client_kwargs["verify"] = False
        if login or username or token or refresh_token or not (given or kwargs.get("anon")):
            seed = (
                Token(token or "", refresh_token, expires_at=None if token else 0.0)
                if token or refresh_token
                else None
            )
            refresher: Refresher | None = None
            if login is not None:
                saved = stored_tokens(store, login, settings)
                seed, refresher = seed or saved.load(), saved
            elif not (password or seed):
                refresher = not_logged_in
            self.credentials = EditoCredentials(
                settings,
                username=username,
                password=password,
                token=seed,
                current=_sts_from(key, secret, session_token, expiration),
                refresher=refresher,
            )
            kwargs["session"] = _session_with(self.credentials)
        else:
            key = key or env("AWS_ACCESS_KEY_ID")
            secret = secret or env("AWS_SECRET_ACCESS_KEY")
            session_token = session_token or env("AWS_SESSION_TOKEN")
            kwargs.update(key=key, secret=secret, token=session_token)
        super().__init__(
            *args,
            endpoint_url=settings.endpoint_url,
            client_kwargs=client_kwargs,
            config_kwargs=config,
            **kwargs,
        )
        self.batch_size = batch_size

    @property
    def storage_options(self) -> dict[str, Any]:
        """Constructor options without secrets or live objects (fsspec serialises these)."""
        return {
            k: v
            for k, v in self._storage_options.items()
            if k not in SECRET_OPTIONS and k != "session"
        }

    @storage_options.setter
    def storage_options(self, value: dict[str, Any]) -> None:
        self._storage_options = dict(value)

    def __repr__(self) -> str:
        user = self.credentials.username if self.credentials else None
        return f"EditoFileSystem(endpoint_url={self.settings.endpoint_url!r}, username={user!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        state: dict[str, Any] = {
            **{f.name: getattr(self.settings, f.name) for f in dataclasses.fields(self.settings)},
            **{k: v for k, v in self.storage_options.items() if k in _PASSED_THROUGH},
        }
        for name in ("client_id", "scope", "role_arn"):
            state.pop(name)
        if self.credentials is not None:
            self.credentials.valid()
            state.update(self.credentials.state())
            state["username"] = self.credentials.username
        else:
            state.update(key=self.key, secret=self.secret, session_token=self.token)
        return (_rebuild, (type(self), state))

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        # Fail at open, as local files do; the conditional PUT still guards the write itself.
        if mode == "xb" and self.exists(path):
            raise FileExistsError(f"{path} exists already (mode 'x')")
        return super()._open(path, mode=mode, **kwargs)

    async def _get_file(
        self,
        rpath: str,
        lpath: str,
        callback: Callback = DEFAULT_CALLBACK,
        version_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        """One streamed GET into a temporary name, renamed after a size check.

        s3fs's ``chunksize`` and ``max_concurrency`` (ranged GETs) are accepted and unused.
        """
        await download(self, rpath, lpath, callback, version_id)

    async def _put_file(
        self,
        lpath: str,
        rpath: str,
        callback: Callback = DEFAULT_CALLBACK,
        chunksize: int | None = None,
        max_concurrency: int | None = None,
        mode: str = "overwrite",
        **kwargs: Any,
    ) -> None:
        """Stream a file up: one PUT, or parts of ``chunksize`` (16 MiB) read as they are sent."""
        if os.path.isdir(lpath):
            await super()._put_file(lpath, rpath, callback=callback, mode=mode, **kwargs)
            return
        await upload(self, lpath, rpath, callback, chunksize, max_concurrency, mode, **kwargs)

    async def _call_s3(self, method: str, *akwarglist: Any, **kwargs: Any) -> Any:
        try:
            return await super()._call_s3(method, *akwarglist, **kwargs)
        except OSError as exc:
            if self.credentials is None or not _maybe_expired(method, exc):
                raise
        # MinIO may end credentials early (at the login token's expiry): renew, try once more.
        log.info("S3 says the credentials expired; renewing them")
        await self.credentials.renew_now()
        return await super()._call_s3(method, *akwarglist, **kwargs)


_PASSED_THROUGH = frozenset(
    {
        "anon",
        "batch_size",
        "max_concurrency",
        "use_ssl",
        "default_block_size",
        "default_cache_type",
        "version_aware",
        "skip_instance_cache",
    }
)


def _rebuild(cls: type[EditoFileSystem], state: dict[str, Any]) -> EditoFileSystem:
    return cls(**state)


def _pod_endpoint() -> str | None:
    """``https://`` + ``AWS_S3_ENDPOINT``, which EDITO's pods get without a scheme."""
    host = os.environ.get("AWS_S3_ENDPOINT")
    if not host:
        return None
    return host if "://" in host else f"https://{host}"


def _sts_from(
    key: str | None, secret: str | None, session_token: str | None, expiration: str | None
) -> StsCredentials | None:
    """Credentials handed over by a pickle (with their expiry), else None."""
    if not (key and secret and session_token and expiration):
        return None
    return StsCredentials(key, secret, session_token, parse_expiration(expiration))


def _session_with(credentials: EditoCredentials) -> Any:
    """An aiobotocore session whose credential chain starts with our STS provider."""
    from aiobotocore.session import AioSession
    from botocore.credentials import CredentialProvider

    class EditoProvider(CredentialProvider):  # type: ignore[misc]
        METHOD = CANONICAL_NAME = "remotefs-edito-sts"

        async def load(self) -> Any:
            return await asyncio.to_thread(credentials.botocore_credentials)

    session = AioSession()
    session.get_component("credential_provider").insert_before("env", EditoProvider())
    return session


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = {**base}
    for name, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(name), dict):
            merged[name] = {**merged[name], **value}
        else:
            merged[name] = value
    return merged


def _maybe_expired(method: str, exc: BaseException) -> bool:
    """Whether S3 may have refused the credentials as expired.

    ``ExpiredToken`` says so; a HEAD has no body to say it in, so its bare 400 counts too.
    """
    response = getattr(exc.__cause__, "response", None)
    if not isinstance(response, dict):
        return False
    code = str(response.get("Error", {}).get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code == "ExpiredToken" or (method.startswith("head_") and status == 400)
