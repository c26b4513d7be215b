"""The emulated Agave storage system: a directory on disk plus the API's bookkeeping.

Layout under ``data_dir``: ``root/`` is the system's ``rootDir`` (``/home/<user>`` per user and a
read-only ``/public``), ``.staging/`` holds uploads waiting for their staging step, outside
every user-visible path. Agave paths are absolute from rootDir (``/home/demo/x``); nothing
resolves outside ``root/``.

Permissions are path-based: ALL on your own home and below; READ on ``/``, ``/home`` and
``/public/**``; NONE elsewhere (other users' homes). History events and logical-file uuids are
kept in memory, keyed by absolute path; moves carry them along with the data.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar

__all__ = ["AgaveError", "Entry", "Event", "Store", "iso_time", "new_uuid"]

HOME_DIR = "/home"
PUBLIC_DIR = "/public"
READ_DENIED = "User does not have access to view the requested resource"
WRITE_DENIED = "User does not have access to modify the requested resource"
NOT_FOUND = "File/folder does not exist"
PUBLIC_README = "Public data of the emulated Agave storage system. Read-only for every user.\n"

T = TypeVar("T")


class AgaveError(Exception):
    """A service-level failure, answered with the Agave error envelope."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def new_uuid(kind: str = "002") -> str:
    """An Agave-style uuid such as ``7129190038640988647-242ac113-0001-002``."""
    return f"{10**18 + secrets.randbelow(9 * 10**18)}-242ac113-0001-{kind}"


def iso_time(timestamp: float) -> str:
    """ISO-8601 in local time with milliseconds and a numeric offset (``...30.000-05:00``)."""
    return datetime.fromtimestamp(timestamp).astimezone().isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Event:
    """One file history event."""

    id: str
    status: str
    created: float
    created_by: str
    description: str


@dataclass(frozen=True)
class Entry:
    """A file or directory as the storage reports it."""

    path: str
    name: str
    is_dir: bool
    size: int
    mtime: float


def _entry(path: str, disk: str | Path, st: os.stat_result) -> Entry:
    """An Entry from a stat result; a directory's length is small, like the seed's (6 + 4/entry)."""
    name = path.rsplit("/", 1)[-1] or "/"
    if not stat.S_ISDIR(st.st_mode):
        return Entry(path, name, False, st.st_size, st.st_mtime)
    try:
        with os.scandir(disk) as it:
            count = sum(1 for _ in it)
    except OSError:
        count = 0
    return Entry(path, name, True, 6 + 4 * count, st.st_mtime)


def _join(parent: str, name: str) -> str:
    """Absolute child path."""
    return f"{parent.rstrip('/')}/{name}"


def _in_tree(path: str, top: str) -> bool:
    """Whether `path` is `top` or below it."""
    return top == "/" or path == top or path.startswith(top + "/")


class Store:
    """Disk layout, path rules, permissions, history and uuids of the emulated system."""

    def __init__(self, data_dir: Path, users: Iterable[str]) -> None:
        self.root = data_dir / "root"
        self.staging = data_dir / ".staging"
        self.home_dir = HOME_DIR
        self._history: dict[str, list[Event]] = {}
        self._uuids: dict[str, str] = {}
        shutil.rmtree(self.staging, ignore_errors=True)
        self.staging.mkdir(parents=True)
        for user in users:
            self.disk(_join(HOME_DIR, user)).mkdir(parents=True, exist_ok=True)
        readme = self.disk(f"{PUBLIC_DIR}/README.txt")
        if not readme.parent.exists():
            readme.parent.mkdir(parents=True)
            readme.write_text(PUBLIC_README)

    # -- paths and permissions ------------------------------------------------------------------

    def resolve(self, remainder: str) -> str:
        """Absolute path of a URL/body path: leading ``/`` is from rootDir, else from homeDir."""
        if "\x00" in remainder:
            raise AgaveError(400, f"Invalid path {remainder!r}")
        parts: list[str] = []
        base = "" if remainder.startswith("/") else self.home_dir
        for segment in f"{base}/{remainder}".split("/"):
            if segment in ("", "."):
                continue
            if segment != "..":
                parts.append(segment)
            elif parts:
                parts.pop()
            else:
                raise AgaveError(403, f"Path {remainder} is outside the system root directory")
        return "/" + "/".join(parts)

    def disk(self, path: str) -> Path:
        """Where an absolute Agave path lives on local disk."""
        return self.root / path.lstrip("/")

    def relative(self, path: str) -> str:
        """The logical-file ``path`` field: relative to homeDir when below it, else absolute."""
        prefix = self.home_dir + "/"
        return path[len(prefix) :] if path.startswith(prefix) else path

    def permission(self, user: str, path: str) -> str:
        """The caller's effective permission on `path`: ALL, READ or NONE."""
        if _in_tree(path, _join(self.home_dir, user)):
            return "ALL"
        if path in ("/", self.home_dir) or _in_tree(path, PUBLIC_DIR):
            return "READ"
        return "NONE"

    def require_read(self, user: str, path: str) -> None:
        """Raise 403 unless `user` may read `path`."""
        if self.permission(user, path) == "NONE":
            raise AgaveError(403, READ_DENIED)

    def require_write(self, user: str, path: str) -> None:
        """Raise 403 unless `user` may modify `path`."""
        if self.permission(user, path) != "ALL":
            raise AgaveError(403, WRITE_DENIED)

    # -- reading --------------------------------------------------------------------------------

    def stat(self, path: str) -> Entry | None:
        """The entry at `path`, or None when nothing is there."""
        disk = self.disk(path)
        try:
            st = disk.stat()
        except OSError:
            return None
        return _entry(path, disk, st)

    def existing(self, path: str) -> Entry:
        """The entry at `path`, or 404 ``File/folder does not exist``."""
        entry = self.stat(path)
        if entry is None:
            raise AgaveError(404, NOT_FOUND)
        return entry

    def children(self, path: str) -> list[Entry]:
        """Entries of a directory, sorted by name."""
        found = []
        with os.scandir(self.disk(path)) as it:
            for item in it:
                try:
                    st = item.stat()
                except OSError:
                    continue
                found.append(_entry(_join(path, item.name), item.path, st))
        return sorted(found, key=lambda e: e.name)

    # -- history and uuids ----------------------------------------------------------------------

    def uuid(self, path: str) -> str:
        """The logical-file uuid of `path`, allocated on first use."""
        return self._uuids.setdefault(path, new_uuid())

    def record(self, path: str, status: str, user: str, description: str) -> Event:
        """Append a history event to `path`."""
        event = Event(new_uuid("038"), status, time.time(), user, description)
        self._history.setdefault(path, []).append(event)
        return event

    def history(self, path: str) -> list[Event] | None:
        """Events of `path` oldest first, or None when it never had any."""
        events = self._history.get(path)
        return None if events is None else list(events)

    def _carry(self, src: str, dst: str) -> None:
        """Re-key history and uuids of the `src` tree to `dst`, replacing what `dst` had."""
        _rekey(self._history, src, dst)
        _rekey(self._uuids, src, dst)

    # -- writing --------------------------------------------------------------------------------

    def mkdir(self, path: str) -> bool:
        """Create `path` and its parents; False when it already was a directory."""
        if self.disk(path).is_dir():
            return False
        current = ""
        for name in path.strip("/").split("/"):
            current = f"{current}/{name}"
            target = self.disk(current)
            if target.exists() and not target.is_dir():
                raise AgaveError(400, f"A file already exists at {current}")
        self.disk(path).mkdir(parents=True, exist_ok=True)
        return True

    def copy(self, src: str, dst: str, append: bool = False) -> bool:
        """Copy on disk (files overwrite, directories merge); True when `dst` existed before."""
        source, target = self._check_transfer(src, dst, verb="copy")
        existed = target.exists()
        if source.is_dir():
            _merge_tree(source, target)
        elif append and target.is_file():
            with open(source, "rb") as fin, open(target, "ab") as fout:
                shutil.copyfileobj(fin, fout, 4 << 20)
        else:
            shutil.copyfile(source, target)
        return existed

    def move(self, src: str, dst: str) -> None:
        """Move `src` to `dst`, replacing a file by a file or a directory by a directory."""
        if _in_tree(src, dst) and src != dst:
            raise AgaveError(400, f"Cannot move {src} onto its own parent directory {dst}")
        source, target = self._check_transfer(src, dst, verb="move")
        if source.is_dir() and target.is_dir():
            shutil.rmtree(target)
        os.replace(source, target)
        self._carry(src, dst)

    def _check_transfer(self, src: str, dst: str, verb: str) -> tuple[Path, Path]:
        """Validate a copy/move and create the destination's parents."""
        source, target = self.disk(src), self.disk(dst)
        if src == dst:
            raise AgaveError(400, f"Cannot {verb} {src} onto itself")
        if source.is_dir() and _in_tree(dst, src):
            raise AgaveError(400, f"Cannot {verb} directory {src} into itself")
        if source.is_dir() and target.exists() and not target.is_dir():
            raise AgaveError(400, f"A file already exists at {dst}")
        if not source.is_dir() and target.is_dir():
            raise AgaveError(400, f"A directory already exists at {dst}")
        self.mkdir(dst.rsplit("/", 1)[0] or "/")
        return source, target

    def delete(self, path: str) -> None:
        """Remove a file or a whole directory tree from disk (safe to run in a worker thread)."""
        target = self.disk(path)
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink()

    def forget(self, path: str) -> None:
        """Drop the uuids of a deleted tree; its history stays, ending with the deletion."""
        for key in [k for k in self._uuids if _in_tree(k, path)]:
            del self._uuids[key]

    def place(self, staged: Path, path: str) -> None:
        """Atomically move a staged upload to `path`, overwriting a file there."""
        os.replace(staged, self.disk(path))


def _rekey(table: dict[str, T], src: str, dst: str) -> None:
    """Move the keys of the `src` tree to the `dst` tree, dropping what `dst` had."""
    for key in [k for k in table if _in_tree(k, dst)]:
        del table[key]
    for key in [k for k in table if _in_tree(k, src)]:
        table[dst + key[len(src) :]] = table.pop(key)


def _merge_tree(source: Path, target: Path) -> None:
    """Copy a directory into `target`, overwriting files and merging directories."""
    if target.exists() and not target.is_dir():
        target.unlink()
    target.mkdir(exist_ok=True)
    with os.scandir(source) as it:
        for item in it:
            dest = target / item.name
            if item.is_dir(follow_symlinks=False):
                _merge_tree(Path(item.path), dest)
                continue
            if dest.is_dir():
                shutil.rmtree(dest)
            shutil.copyfile(item.path, dest)
