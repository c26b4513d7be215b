"""Files service, reading side and deletion: listings, downloads, history, pems, DELETE.

Every handler resolves ``{endpoint}/system/{id}/{remainder}`` with the section-4 path rules
(leading slash: from rootDir; otherwise from homeDir), checks the caller's permission, and answers
in the envelope. Downloads go out with sendfile; ``Range`` honours only the first range and
rejects bounds past EOF with 416 instead of clipping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any
from urllib.parse import quote

from aiohttp import web

from remotefs.testing.agave.auth import CALLER
from remotefs.testing.agave.envelope import base_url, page, page_params, success
from remotefs.testing.agave.store import NOT_FOUND, AgaveError, Store
from remotefs.testing.agave.views import (
    Links,
    entry_json,
    event_json,
    logical_file_json,
    mime_type,
    permission_json,
)
from remotefs.testing.sendfile import FileSlice

__all__ = ["FilesBase", "FileReads", "Target"]


@dataclass(frozen=True)
class Target:
    """The caller and the file a files-service request is about."""

    user: str
    links: Links
    remainder: str
    path: str


class FilesBase:
    """What every files handler shares: the store, the system id, request resolution."""

    def __init__(self, store: Store, system_id: str) -> None:
        self.store = store
        self.system_id = system_id

    def target(self, request: web.Request) -> Target:
        """Caller, links and absolute path of a ``.../system/{id}/{path}`` request."""
        system = request.match_info.get("system", self.system_id)
        if system != self.system_id:
            raise AgaveError(404, f"No system found for user with id {system}")
        remainder = request.match_info.get("path", "")[1:]
        links = Links(base_url(request), system)
        return Target(CALLER.get(), links, remainder, self.store.resolve(remainder))

    def logical_file(
        self,
        target: Target,
        path: str,
        *,
        status: str | None = None,
        is_dir: bool | None = None,
        source: str | None = None,
        notifications: bool = False,
    ) -> dict[str, Any]:
        """Logical-file object of `path` (legacy TRANSFORMING_COMPLETED for directories)."""
        if is_dir is None:
            entry = self.store.stat(path)
            is_dir = entry is not None and entry.is_dir
        if status is None:
            status = "TRANSFORMING_COMPLETED" if is_dir else "STAGING_COMPLETED"
        return logical_file_json(
            target.links,
            path,
            relative=self.store.relative(path),
            owner=target.user,
            uuid=self.store.uuid(path),
            status=status,
            is_dir=is_dir,
            source=source,
            notifications=notifications,
        )


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end)`` inclusive of the first range of a ``Range`` header; None serves it all."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    low, dash, high = spec.split(",")[0].strip().partition("-")
    if unit.strip().lower() != "bytes" or not dash:
        return None
    try:
        if not low.strip():
            suffix = int(high)
            start, end = (max(size - suffix, 0) if suffix > 0 else size), size - 1
        else:
            start = int(low)
            end = int(high) if high.strip() else size - 1
    except ValueError:
        return None
    unsatisfiable = {"Content-Range": f"bytes */{size}"}
    if start >= size:
        raise AgaveError(416, "Lower bound out of range of file", unsatisfiable)
    if end < start:
        raise AgaveError(416, "Upper bound less than lower bound", unsatisfiable)
    if end >= size:
        raise AgaveError(416, "Upper bound out of range of file", unsatisfiable)
    return start, end


class FileReads(FilesBase):
    """GET listings, GET/HEAD media, GET history, GET pems and DELETE media."""

    def __init__(self, store: Store, system_id: str, page_size: int, users: Iterable[str]) -> None:
        super().__init__(store, system_id)
        self.page_size = page_size
        self.users = list(users)

    async def listing(self, request: web.Request) -> web.Response:
        """The path itself first (``"."`` for a directory), then its children by name."""
        t = self.target(request)
        self.store.require_read(t.user, t.path)
        entry = self.store.existing(t.path)
        limit, offset = page_params(request, self.page_size)
        perm = self.store.permission
        if not entry.is_dir:
            found = [entry_json(t.links, entry, perm(t.user, t.path))] if offset == 0 else []
            return success(request, found)
        children = self.store.children(t.path)
        if offset == 0:
            uuid = self.store.uuid(t.path)
            found = [entry_json(t.links, entry, perm(t.user, t.path), self_uuid=uuid)]
            chosen = children[: limit - 1]
        else:
            found, chosen = [], children[offset - 1 : offset - 1 + limit]
        found += [entry_json(t.links, child, perm(t.user, child.path)) for child in chosen]
        return success(request, found)

    async def download(self, request: web.Request) -> web.StreamResponse:
        """File bytes (or the first requested range); HEAD gives the same headers only."""
        t = self.target(request)
        self.store.require_read(t.user, t.path)
        entry = self.store.existing(t.path)
        if entry.is_dir:
            raise AgaveError(501, "Directory downloads not supported")
        if request.query.get("force", "").lower() == "true":
            disposition = f"attachment; filename*=UTF-8''{quote(entry.name)}"
        else:
            disposition = "inline"
        headers = {
            "Content-Type": mime_type(entry.name),
            "Content-Disposition": disposition,
            "Accept-Ranges": "bytes",
            "Last-Modified": formatdate(entry.mtime, usegmt=True),
        }
        status, start, count = 200, 0, entry.size
        first = byte_range(request.headers.get("Range"), entry.size)
        if first is not None:
            status, start, count = 206, first[0], first[1] - first[0] + 1
            headers["Content-Range"] = f"bytes {first[0]}-{first[1]}/{entry.size}"
        if request.method == "GET":
            self.store.record(t.path, "DOWNLOAD", t.user, "File downloaded")
        disk = self.store.disk(t.path)
        return FileSlice(disk, start, count, status=status, headers=headers)

    async def history(self, request: web.Request) -> web.Response:
        """Events of a path, oldest first; ``.../{path}/{event id}`` gives one event."""
        t = self.target(request)
        self.store.require_read(t.user, t.path)
        events = self.store.history(t.path)
        if events is None:
            if self.store.stat(t.path) is None:
                return success(request, self._single_event(t))
            events = []
        found = [event_json(t.links, t.path, event) for event in events]
        return success(request, page(request, found, self.page_size))

    def _single_event(self, t: Target) -> dict[str, Any]:
        """The event a history event's ``_links.self`` points at, or 404."""
        parent, _, event_id = t.path.rpartition("/")
        for event in self.store.history(parent or "/") or []:
            if event.id == event_id:
                return event_json(t.links, parent or "/", event)
        raise AgaveError(404, NOT_FOUND)

    async def permissions(self, request: web.Request) -> web.Response:
        """GET pems: every user's effective permission on the path (read-only; no grants)."""
        t = self.target(request)
        self.store.require_read(t.user, t.path)
        self.store.existing(t.path)
        found = [
            permission_json(t.links, t.path, user, level)
            for user in self.users
            if (level := self.store.permission(user, t.path)) != "NONE"
        ]
        return success(request, page(request, found, self.page_size))

    async def delete(self, request: web.Request) -> web.Response:
        """Recursive delete; a caller without write access gets 401 in the Agave envelope."""
        t = self.target(request)
        if self.store.permission(t.user, t.path) != "ALL":
            raise AgaveError(401, f"User does not have permission to delete {t.path}")
        if self.store.stat(t.path) is None:
            raise AgaveError(404, f"Remote path {t.path} does not exist.")
        await asyncio.to_thread(self.store.delete, t.path)
        self.store.forget(t.path)
        self.store.record(t.path, "DELETED", t.user, "File/folder deleted")
        return success(request, None, "File/folder deleted successfully")
