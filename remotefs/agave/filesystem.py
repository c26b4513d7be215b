"""``agave://SYSTEM_ID/path``: an Agave v2 storage system as an fsspec filesystem.

Paths are relative to the system's home directory (``agave://SYS//abs`` is absolute from its
root). Listings are cached and every write invalidates the written path and its ancestors.
Uploads return only once the service has staged the file and its size matches; downloads go
to a temporary name, are size-checked and renamed. Pickling carries settings and tokens,
never a password or a live session, so instances travel to Dask workers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import os
import tempfile
import weakref
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from fsspec.asyn import AsyncFileSystem, sync, sync_wrapper
from fsspec.callbacks import DEFAULT_CALLBACK, Callback
from fsspec.utils import tokenize

from remotefs.agave.client import BULK_MIN, AgaveClient, UploadBody, is_token_error
from remotefs.agave.entries import child_infos, info_from_entry
from remotefs.agave.login import resolve_login
from remotefs.agave.paths import AgavePath
from remotefs.auth.store import CredentialStore
from remotefs.auth.tokens import TokenAuth
from remotefs.errors import (
    RemoteError,
    RemoteFileExistsError,
    RemoteIsADirectoryError,
    TransferError,
)
from remotefs.http import RetryPolicy, Timeouts
from remotefs.localfiles import create_partial

SECRET_OPTIONS = frozenset({"password", "client_secret", "token", "refresh_token"})


class AgaveFileSystem(AsyncFileSystem):
    """fsspec filesystem over the Agave v2 Files API (``agave://SYSTEM_ID/path``).

    Credentials come from keywords, else from the ``AGAVE_*`` environment variables named in
    ``remotefs.agave.login.ENV``: ``username``/``password`` (an OAuth client named
    ``client_name`` is created or reused), or ``client_key``/``client_secret`` with ``token``
    and/or ``refresh_token``; else from the login of ``profile`` (``remotefs login agave``),
    whose settings also fill in what neither keywords nor environment give.
    """

    protocol = "agave"
    root_marker = ""

    def __init__(
        self,
        base_url: str | None = None,
        username: str | None = None,
        password: str | None = None,
        client_name: str | None = None,
        client_key: str | None = None,
        client_secret: str | None = None,
        token: str | None = None,
        refresh_token: str | None = None,
        *,
        token_expires_at: float | None = None,
        verify: bool = True,
        staging_timeout: float = 600.0,
        page_size: int = 1000,
        retry: RetryPolicy | dict[str, Any] | None = None,
        timeouts: Timeouts | dict[str, Any] | None = None,
        credential_store: str | os.PathLike[str] | None = None,
        profile: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(retry, dict):
            retry = RetryPolicy(**retry)
        if isinstance(timeouts, dict):
            timeouts = Timeouts(**timeouts)
        given = {
            "base_url": base_url,
            "username": username,
            "password": password,
            "client_name": client_name,
            "client_key": client_key,
            "client_secret": client_secret,
            "token": token,
            "refresh_token": refresh_token,
        }
        store = CredentialStore(credential_store) if credential_store else CredentialStore()
        resolved = resolve_login(
            given, profile=profile, store=store, token_expires_at=token_expires_at,
            verify=verify, timeouts=timeouts or Timeouts(), retry=retry or RetryPolicy(),
        )  # fmt: skip
        self.login_profile = resolved.profile
        self.base_url = resolved.base_url
        self.account = resolved.account
        self.credentials = resolved.credentials
        self.tokens = resolved.tokens
        self.staging_timeout = staging_timeout
        self._settings = {
            "verify": verify,
            "staging_timeout": staging_timeout,
            "page_size": page_size,
            "retry": retry,
            "timeouts": timeouts,
            "credential_store": credential_store,
        }
        self.client = AgaveClient(
            self.base_url,
            TokenAuth(self.tokens, is_token_error),
            retry=retry or RetryPolicy(),
            timeouts=timeouts or Timeouts(),
            verify=verify,
            page_size=page_size,
        )
        # A listed directory's own entry, so info() of a folder just listed costs nothing;
        # forgotten with the listing cache.
        self._dir_info: dict[str, dict[str, Any]] = {}
        weakref.finalize(self, self.client.sessions.close)

    # -- identity, pickling, secrets --------------------------------------------------------

    @property
    def storage_options(self) -> dict[str, Any]:
        """Constructor options without secrets, as plain data (fsspec serialises them)."""
        return {
            k: dataclasses.asdict(v) if isinstance(v, (RetryPolicy, Timeouts)) else v
            for k, v in self._storage_options.items()
            if k not in SECRET_OPTIONS
        }

    @storage_options.setter
    def storage_options(self, value: dict[str, Any]) -> None:
        self._storage_options = dict(value)

    def __repr__(self) -> str:
        return (
            f"AgaveFileSystem(base_url={self.base_url!r}, username={self.credentials.username!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        token = self.tokens.current()
        creds = self.credentials
        state = {
            "base_url": self.base_url,
            "username": creds.username,
            "client_name": creds.client_name,
            "client_key": creds.client_key,
            "client_secret": creds.client_secret,
            "token": token.access_token,
            "refresh_token": token.refresh_token,
            "token_expires_at": token.expires_at,
            "profile": self.login_profile,
            **self._settings,
        }
        return (_rebuild, (type(self), state))

    # -- paths ------------------------------------------------------------------------------

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        path = str(path)
        if path.startswith("agave://"):
            path = path[len("agave://") :]
        elif path.startswith("agave:"):
            path = path[len("agave:") :]
        return path.rstrip("/")

    def unstrip_protocol(self, name: str) -> str:
        """The full URL of an fsspec path."""
        return f"agave://{self._strip_protocol(name)}"

    # -- reading metadata --------------------------------------------------------------------

    async def _ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        path = self._strip_protocol(path)
        entries = None if kwargs.get("refresh") else self.dircache.get(path)
        if entries is None:
            me, entries = await self._list(path)
            if entries is None:
                entries = [me]
        return entries if detail else [e["name"] for e in entries]

    async def _info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        path = self._strip_protocol(path)
        if path in self._dir_info:
            return dict(self._dir_info[path])
        parent = self._parent(path)
        if parent in self.dircache:
            for entry in self.dircache[parent]:
                if entry["name"] == path:
                    return dict(entry)
        # One page tells what the path is and, for a small directory, also lists it.
        me, _ = await self._list(path, max_pages=1)
        return me

    async def _list(
        self, path: str, max_pages: int | None = None
    ) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
        """List ``path`` and cache what was learnt: its own info, and all its entries (or None
        for a file, or a directory longer than ``max_pages``)."""
        me, children, complete = await self.client.list_dir(AgavePath.parse(path), max_pages)
        info = info_from_entry(path, me)
        if info["type"] != "directory":
            return info, None
        self._dir_info[path] = info
        if not complete:
            return info, None
        entries = child_infos(path, children)
        self.dircache[path] = entries
        return info, entries

    async def _exists(self, path: str, **kwargs: Any) -> bool:
        try:
            await self._info(path)
        except FileNotFoundError:
            return False
        return True

    async def _isdir(self, path: str) -> bool:
        try:
            return (await self._info(path))["type"] == "directory"
        except FileNotFoundError:
            return False

    def modified(self, path: str) -> datetime:
        """Last modification time, as the service reports it."""
        mtime = self.info(path).get("mtime")
        if mtime is None:
            raise RemoteError("the service reports no modification time", path=path)
        return datetime.fromtimestamp(mtime, tz=timezone.utc)

    def ukey(self, path: str) -> str:
        """Changes whenever the file changes (by size or modification time)."""
        info = self.info(path)
        return tokenize(info["name"], info["size"], info["mtime"])

    def invalidate_cache(self, path: str | None = None) -> None:
        """Forget cached listings of ``path``, what is below it and its ancestors (all, without
        a path): a write changes its parent, a delete or move also everything below."""
        if path is None:
            self.dircache.clear()
            self._dir_info.clear()
            return
        path = self._strip_protocol(path)
        for cache in (self.dircache, self._dir_info):
            for cached in [p for p in cache if p.startswith(path + "/")]:
                cache.pop(cached, None)
        while path:
            self.dircache.pop(path, None)
            self._dir_info.pop(path, None)
            parent = self._parent(path)
            path = "" if parent == path else parent

    # -- reading data -------------------------------------------------------------------------

    async def _cat_file(
        self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any
    ) -> bytes:
        path = self._strip_protocol(path)
        where = AgavePath.parse(path)
        if (start is not None and start < 0) or (end is not None and end < 0):
            size = (await self._info(path))["size"]
            start = size + start if start is not None and start < 0 else start
            end = size + end if end is not None and end < 0 else end
        start = max(start or 0, 0)
        if end is not None and end <= start:
            return b""
        try:
            return await self.client.read(where, start, end)
        except RemoteError as exc:
            if exc.status != 416:
                raise
        size = (await self._info(path))["size"]
        end = size if end is None else min(end, size)
        if start >= end:
            return b""
        return await self.client.read(where, start, end)

    async def _get_file(
        self, rpath: str, lpath: str, callback: Callback = DEFAULT_CALLBACK, **kwargs: Any
    ) -> None:
        rpath = self._strip_protocol(rpath)
        info = await self._info(rpath)
        if info["type"] == "directory":
            os.makedirs(lpath, exist_ok=True)
            return
        if os.path.isdir(lpath):
            lpath = os.path.join(lpath, AgavePath.parse(rpath).name)
        folder = os.path.dirname(os.path.abspath(lpath))
        os.makedirs(folder, exist_ok=True)
        out, tmp = create_partial(lpath)
        size = info["size"]
        callback.set_size(size)
        try:
            with out:
                where = AgavePath.parse(rpath)
                written = await self.client.download_to(where, out, size, callback.relative_update)
            if written != size:
                raise TransferError(f"downloaded {written} bytes, expected {size}", path=rpath)
            os.replace(tmp, lpath)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def _open(
        self,
        path: str,
        mode: str = "rb",
        block_size: int | None = None,
        autocommit: bool = True,
        cache_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        from remotefs.agave.file import AgaveFile

        path = self._strip_protocol(path)
        if mode == "xb" and self.exists(path):
            raise RemoteFileExistsError("the file exists already (mode 'x')", path=path)
        return AgaveFile(
            self,
            path,
            mode=mode,
            block_size=block_size or "default",
            autocommit=autocommit,
            cache_options=cache_options,
            **kwargs,
        )

    # -- writing --------------------------------------------------------------------------------

    async def _put_file(
        self,
        lpath: str,
        rpath: str,
        callback: Callback = DEFAULT_CALLBACK,
        mode: str = "overwrite",
        **kwargs: Any,
    ) -> None:
        rpath = self._strip_protocol(rpath)
        if os.path.isdir(lpath):
            await self._makedirs(rpath, exist_ok=True)
            return
        size = os.path.getsize(lpath)
        callback.set_size(size)

        def open_body() -> UploadBody:
            return _ProgressReader(lpath, callback)

        await self._upload(rpath, open_body, size, exclusive=mode == "create")

    async def _pipe_file(
        self, path: str, value: bytes, mode: str = "overwrite", **kwargs: Any
    ) -> None:
        path = self._strip_protocol(path)
        await self._upload(path, lambda: io.BytesIO(value), len(value), exclusive=mode == "create")

    async def _upload(
        self, path: str, open_body: Callable[[], UploadBody], size: int, *, exclusive: bool
    ) -> None:
        where = AgavePath.parse(path)
        if not where.name:
            raise ValueError(f"{path!r} names a system's home or root, not a file")
        if exclusive and await self._exists(path):
            raise RemoteFileExistsError("the file exists already (mode 'create')", path=path)
        folder = where.parent.fs_path()
        if size >= BULK_MIN and not await self._isdir(folder):  # send a large body only once
            await self._makedirs(folder, exist_ok=True)
        try:
            await self.client.upload(where.parent, where.name, open_body, size)
        except FileNotFoundError:
            await self._makedirs(folder, exist_ok=True)
            await self.client.upload(where.parent, where.name, open_body, size)
        finally:
            self.invalidate_cache(folder)
        await self.client.wait_staged(where, size, timeout=self.staging_timeout)
        self.invalidate_cache(folder)

    async def _mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        path = self._strip_protocol(path)
        where = AgavePath.parse(path)
        if not create_parents and not await self._isdir(where.parent.fs_path()):
            raise FileNotFoundError(f"parent directory of {path} does not exist")
        await self._makedirs(path, exist_ok=False)

    async def _makedirs(self, path: str, exist_ok: bool = False) -> None:
        path = self._strip_protocol(path)
        where = AgavePath.parse(path)
        if not where.name:
            if exist_ok:
                return
            raise RemoteFileExistsError("the home and root directories always exist", path=path)
        status, _ = await self.client.action(where.parent, "mkdir", where.name)
        self.invalidate_cache(path)
        if status != 201 and not exist_ok:
            raise RemoteFileExistsError("the directory exists already", path=path)

    async def _rm_file(self, path: str, **kwargs: Any) -> None:
        path = self._strip_protocol(path)
        if (await self._info(path))["type"] == "directory":
            raise RemoteIsADirectoryError("use rm(path, recursive=True) for directories", path=path)
        await self.client.delete(AgavePath.parse(path))
        self.invalidate_cache(path)

    async def _rmdir(self, path: str) -> None:
        path = self._strip_protocol(path)
        if await self._ls(path, detail=False):
            raise RemoteError("the directory is not empty", path=path)
        await self.client.delete(AgavePath.parse(path))
        self.invalidate_cache(path)

    rmdir = sync_wrapper(_rmdir)

    async def _rm(
        self, path: Any, recursive: bool = False, maxdepth: int | None = None, **kwargs: Any
    ) -> None:
        paths = await self._expand_path(path, recursive=recursive, maxdepth=maxdepth)
        if recursive and maxdepth is None:
            # The service deletes directories recursively: delete only the top-most paths.
            tops = [p for p in paths if not any(p.startswith(q + "/") for q in paths)]
            await asyncio.gather(*(self.client.delete(AgavePath.parse(p)) for p in tops))
            for p in tops:
                self.invalidate_cache(p)
            return
        for p in sorted(paths, reverse=True):
            info = await self._info(p)
            if info["type"] != "directory":
                await self._rm_file(p)
            elif not recursive:
                raise RemoteIsADirectoryError("use recursive=True to remove directories", path=p)
            elif not await self._ls(p, detail=False):
                await self._rmdir(p)

    async def _cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        path1, path2 = self._strip_protocol(path1), self._strip_protocol(path2)
        src, dst = AgavePath.parse(path1), AgavePath.parse(path2)
        if (await self._info(path1))["type"] == "directory":
            await self._makedirs(path2, exist_ok=True)
            return
        if src.system != dst.system:
            await self._copy_across_systems(path1, path2)
            return
        try:
            await self.client.action(src, "copy", dst.path)
        except FileNotFoundError:
            await self._makedirs(dst.parent.fs_path(), exist_ok=True)
            await self.client.action(src, "copy", dst.path)
        self.invalidate_cache(path2)

    async def _copy_across_systems(self, path1: str, path2: str) -> None:
        with tempfile.TemporaryDirectory(prefix="remotefs-") as folder:
            local = os.path.join(folder, "copy")
            await self._get_file(path1, local)
            await self._put_file(local, path2)

    def mv(
        self,
        path1: str,
        path2: str,
        recursive: bool = False,
        maxdepth: int | None = None,
        **kwargs: Any,
    ) -> None:
        """Move on the server when one path moves within a system; else copy, then delete."""
        p1, p2 = self._strip_protocol(path1), self._strip_protocol(path2)
        if isinstance(p1, str) and isinstance(p2, str) and not _has_magic(p1) and maxdepth is None:
            src, dst = AgavePath.parse(p1), AgavePath.parse(p2)
            if src.system == dst.system:
                sync(self.loop, self._mv_within_system, p1, p2, recursive)
                return
        super().mv(path1, path2, recursive=recursive, maxdepth=maxdepth, **kwargs)

    async def _mv_within_system(self, path1: str, path2: str, recursive: bool) -> None:
        info = await self._info(path1)
        if info["type"] == "directory" and not recursive:
            raise RemoteIsADirectoryError("use recursive=True to move a directory", path=path1)
        if await self._isdir(path2):
            path2 = f"{path2}/{AgavePath.parse(path1).name}"
        dst = AgavePath.parse(path2)
        if not await self._isdir(dst.parent.fs_path()):
            await self._makedirs(dst.parent.fs_path(), exist_ok=True)
        await self.client.action(AgavePath.parse(path1), "move", dst.path)
        self.invalidate_cache(path1)
        self.invalidate_cache(path2)


class _ProgressReader(io.FileIO):
    """A local file whose reads advance a progress callback (restarted on each attempt)."""

    def __init__(self, path: str, callback: Callback) -> None:
        super().__init__(path, "rb")
        self._callback = callback
        callback.absolute_update(0)

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self._callback.relative_update(len(data))
        return data

    def readinto(self, buffer: Any) -> int | None:
        count = super().readinto(buffer)
        self._callback.relative_update(count or 0)
        return count


def _has_magic(path: str) -> bool:
    return any(ch in path for ch in "*?[")


def _rebuild(cls: type[AgaveFileSystem], state: dict[str, Any]) -> AgaveFileSystem:
    return cls(**state)
