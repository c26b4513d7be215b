"""Files service, writing side: multipart uploads with asynchronous staging, and PUT actions.

Uploads stream the ``fileToUpload`` part to ``.staging/`` (never held in memory), answer 202
``STAGING_QUEUED``, and a timer ``staging_delay`` seconds later moves the file into place
atomically, recording ``UPLOAD`` then ``STAGING_COMPLETED`` (or ``STAGING_FAILED`` when the
failure predicate matches or the move is impossible). Until then the target is absent or keeps
its old content. PUT runs mkdir/rename/copy/move synchronously inside the request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from aiohttp.hdrs import CONTENT_TYPE

from remotefs.testing.agave.envelope import read_fields, success
from remotefs.testing.agave.files import FilesBase, Target
from remotefs.testing.agave.store import AgaveError, Store, new_uuid
from remotefs.testing.multipart import MultipartError, MultipartStream, boundary_of

__all__ = ["FileWrites"]

FIELD_LIMIT = 64 << 10
Action = Callable[[web.Request, Target, str, dict[str, str]], Awaitable[web.Response]]


class FileWrites(FilesBase):
    """POST media (upload) and PUT media (mkdir, rename, copy, move)."""

    def __init__(self, store: Store, system_id: str, staging_delay: float) -> None:
        super().__init__(store, system_id)
        self.staging_delay = staging_delay
        self.fail_predicate: Callable[[str], bool] | None = None
        self._pending: dict[Path, asyncio.TimerHandle] = {}

    # -- upload ----------------------------------------------------------------------------------

    async def upload(self, request: web.Request) -> web.Response:
        """Multipart upload into an existing directory; 202 with a STAGING_QUEUED logical file."""
        t = self.target(request)
        self.store.require_write(t.user, t.path)
        if not request.content_type.startswith("multipart/"):
            self._no_file(await read_fields(request))
        directory = self.store.stat(t.path)
        if directory is None:
            raise AgaveError(404, f"Destination path {t.path} does not exist.")
        if not directory.is_dir:
            raise AgaveError(400, f"{t.path} is not a directory")
        staged = self.store.staging / new_uuid()
        try:
            original, fields = await self._receive(request, staged)
            if original is None:
                self._no_file(fields)
            name = (fields.get("filename") or original or "").strip()
            if not name or "/" in name or name in (".", ".."):
                raise AgaveError(400, f"Invalid file name {name!r}")
        except BaseException:
            staged.unlink(missing_ok=True)
            raise
        path = f"{t.path.rstrip('/')}/{name}"
        self.store.record(path, "STAGING_QUEUED", t.user, "File/folder queued for staging")
        handle = asyncio.get_running_loop().call_later(
            self.staging_delay, self._stage, staged, path, t.user
        )
        self._pending[staged] = handle
        host = request.remote or "unknown"
        host = f"[{host}]" if ":" in host else host
        result = self.logical_file(
            t,
            path,
            status="STAGING_QUEUED",
            is_dir=False,
            source=f"http://{host}/{original or name}",
            notifications=True,
        )
        return success(request, result, "File upload queued for staging", status=202)

    @staticmethod
    def _no_file(fields: dict[str, str]) -> None:
        """Answer a POST without a file part the way the import path does."""
        if any(k.lower() == "urltoingest" for k in fields):
            raise AgaveError(501, "Importing from a URL (urlToIngest) is not emulated")
        raise AgaveError(500, "No valid URL specified")

    async def _receive(
        self, request: web.Request, staged: Path
    ) -> tuple[str | None, dict[str, str]]:
        """Stream ``fileToUpload`` to `staged`; return its file name (None: no part) and fields."""
        original: str | None = None
        fields: dict[str, str] = {}
        try:
            form = MultipartStream(request.content, boundary_of(request.headers[CONTENT_TYPE]))
            while (part := await form.next_part()) is not None:
                if part.name == "fileToUpload" and original is None:
                    original = part.filename or ""
                    with open(staged, "wb") as out:
                        await form.read_into(out.write)
                elif part.name and part.filename is None:
                    value = await form.read(FIELD_LIMIT)
                    fields[part.name.lower()] = value.decode("utf-8", "replace")
        except MultipartError as exc:
            raise AgaveError(400, f"Malformed multipart body: {exc}") from None
        return original, fields

    def _stage(self, staged: Path, path: str, user: str) -> None:
        """The staging step: place the upload, or record why it failed."""
        self._pending.pop(staged, None)
        failure: str | None = None
        if self.fail_predicate is not None and self.fail_predicate(path):
            failure = "Staging failed: the transfer to the storage system was rejected"
        else:
            try:
                self.store.place(staged, path)
            except OSError as exc:
                failure = f"Staging failed: {exc.strerror or exc}"
        if failure is not None:
            staged.unlink(missing_ok=True)
            self.store.record(path, "STAGING_FAILED", user, failure)
            return
        self.store.record(path, "UPLOAD", user, "File upload has completed")
        self.store.record(path, "STAGING_COMPLETED", user, "Staging completed successfully")

    def cancel_staging(self) -> None:
        """Drop uploads still waiting for their staging step (server shutdown)."""
        for staged, handle in list(self._pending.items()):
            handle.cancel()
            staged.unlink(missing_ok=True)
        self._pending.clear()

    # -- actions ---------------------------------------------------------------------------------

    async def action(self, request: web.Request) -> web.Response:
        """PUT media: dispatch on the case-insensitive ``action`` field."""
        t = self.target(request)
        fields = {k.lower(): v for k, v in (await read_fields(request)).items()}
        name = fields.get("action", "").strip()
        if not name:
            raise AgaveError(400, "No action specified. Valid actions: mkdir, rename, copy, move")
        actions: dict[str, Action] = {
            "mkdir": self._mkdir,
            "rename": self._rename,
            "copy": self._copy,
            "move": self._move,
        }
        handler = actions.get(name.lower())
        if handler is None:
            raise AgaveError(501, f"Action {name} not supported")
        path = fields.get("path", "")
        if not path.strip():
            raise AgaveError(400, f"No path specified for action {name}")
        return await handler(request, t, path, fields)

    async def _mkdir(
        self, request: web.Request, t: Target, path: str, fields: dict[str, str]
    ) -> web.Response:
        """Create ``urlpath/path`` (``path`` alone when the URL names no path) and its parents."""
        target = self._destination(t, f"{t.remainder}/{path}" if t.remainder else path)
        created = self.store.mkdir(target)
        if not created:
            result = self.logical_file(t, target)
            return success(request, result, f"Directory {target} already exists")
        self.store.record(target, "CREATED", t.user, "New directory created")
        return success(request, self.logical_file(t, target), "Directory created", status=201)

    def _source(self, t: Target, write: bool) -> str:
        """The URL path as an existing source the caller may read (copy) or modify."""
        if write:
            self.store.require_write(t.user, t.path)
        else:
            self.store.require_read(t.user, t.path)
        self.store.existing(t.path)
        return t.path

    def _destination(self, t: Target, path: str) -> str:
        """`path` resolved as a destination the caller may write."""
        dst = self.store.resolve(path)
        self.store.require_write(t.user, dst)
        return dst

    async def _rename(
        self, request: web.Request, t: Target, path: str, fields: dict[str, str]
    ) -> web.Response:
        """New name in the same parent directory; an existing target is refused."""
        src = self._source(t, write=True)
        dst = self._destination(t, f"{src.rsplit('/', 1)[0]}/{path}")
        if self.store.stat(dst) is not None:
            raise AgaveError(400, f"A File or folder at {dst} already exists")
        self.store.move(src, dst)
        self.store.record(dst, "RENAME", t.user, f"File item renamed from {src} to {dst}")
        return success(request, self.logical_file(t, dst), "Rename success")

    async def _copy(
        self, request: web.Request, t: Target, path: str, fields: dict[str, str]
    ) -> web.Response:
        """Copy to a destination path: files overwrite, directories merge, ``append`` appends."""
        src = self._source(t, write=False)
        dst = self._destination(t, path)
        append = fields.get("append", "").strip().lower() == "true"
        existed = await asyncio.to_thread(self.store.copy, src, dst, append)
        event = "OVERWRITTEN" if existed else "CREATED"
        self.store.record(dst, event, t.user, f"File item copied from {src}")
        source = t.links.media(src)["href"]
        return success(request, self.logical_file(t, dst, source=source), "Copy success")

    async def _move(
        self, request: web.Request, t: Target, path: str, fields: dict[str, str]
    ) -> web.Response:
        """Move to a destination path, replacing a same-kind target."""
        src = self._source(t, write=True)
        dst = self._destination(t, path)
        self.store.move(src, dst)
        self.store.record(dst, "MOVED", t.user, f"File item moved from {src} to {dst}")
        return success(request, self.logical_file(t, dst), "Move success")
