"""Where a command reads or writes: an fsspec filesystem and a path, from any URL.

Every URL goes through fsspec (``url_to_fs``): local paths, ``memory://``, ``agave://``,
``edito://`` and whatever else fsspec knows. The services remotefs logs in to get the chosen
profile. URLs that name the same filesystem share one instance, so a copy between them stays
on the server. Every destination path built from a name that a listing returned goes through
:func:`contained`, so a hostile or odd name (``../../x``, ``/etc/x``) never lands outside the
destination directory.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import posixpath
from dataclasses import dataclass
from typing import Any

from fsspec import AbstractFileSystem
from fsspec.core import split_protocol, url_to_fs
from fsspec.implementations.local import LocalFileSystem
from fsspec.implementations.memory import MemoryFileSystem

from remotefs.cli.services import SERVICES
from remotefs.errors import RemoteError

Info = dict[str, Any]
MTIME_KEYS = ("mtime", "LastModified", "last_modified", "modified", "updated", "created")


@dataclass(frozen=True)
class Location:
    """A path on a filesystem, and the URL it came from."""

    fs: AbstractFileSystem
    path: str
    url: str

    @property
    def local(self) -> bool:
        """Whether this is the machine's own filesystem."""
        return isinstance(self.fs, LocalFileSystem)

    @property
    def s3(self) -> bool:
        """Whether the filesystem is s3fs (edito://, s3://): mtimes live in metadata there."""
        return any(cls.__module__.startswith("s3fs") for cls in type(self.fs).__mro__)

    @property
    def as_directory(self) -> bool:
        """Whether the URL says it names a directory (a trailing slash)."""
        return self.url.endswith("/")

    def info(self) -> Info:
        """The info of this path; a missing one is an error that names the URL."""
        try:
            info: Info = self.fs.info(self.path)
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"{self.url}: no such file or directory") from exc
        return info

    def child(self, relative: str) -> str:
        """The path of ``relative`` (a name from a listing) inside this location."""
        return posixpath.join(self.path.rstrip("/") or "/", contained(relative, self.url))

    def show(self, path: str) -> str:
        """A path of this filesystem as a URL to print."""
        return path if self.local else self.fs.unstrip_protocol(path)

    def mtime(self, path: str, info: Info) -> float | None:
        """Modification time in epoch seconds: on S3 from rclone's ``mtime`` metadata."""
        if self.s3 and info.get("type") == "file":
            value = self.fs.metadata(path).get("mtime")
            if value:
                try:
                    return float(value)
                except ValueError:
                    pass
        return mtime_of(info)

    def md5(self, path: str, info: Info) -> str | None:
        """The file's MD5 where this backend has one (S3 ETag of a single-part upload) or
        where reading it costs nothing over the network (local and memory files)."""
        if self.s3:
            etag = str(info.get("ETag", "")).strip('"')
            return etag if len(etag) == 32 and "-" not in etag else None
        if isinstance(self.fs, (LocalFileSystem, MemoryFileSystem)):
            digest = hashlib.md5()
            with self.fs.open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
            return digest.hexdigest()
        return None


class Resolver:
    """Turns URLs into locations, with one filesystem instance per distinct filesystem."""

    def __init__(self, profile: str | None = None) -> None:
        self.profile = profile
        self._known: list[AbstractFileSystem] = []

    def __call__(self, url: str) -> Location:
        options: dict[str, Any] = {"skip_instance_cache": True}
        chained = "::" in url
        for link in url.split("::"):  # simplecache::agave://...: fsspec takes options by protocol
            protocol = split_protocol(link)[0]
            if protocol in SERVICES:
                if chained:
                    options[protocol] = {"profile": self.profile, "skip_instance_cache": True}
                else:
                    options["profile"] = self.profile
        fs, path = url_to_fs(url, **options)
        for known in self._known:
            if known == fs:
                fs = known
                break
        else:
            self._known.append(fs)
        return Location(fs, path, url)


def contained(relative: str, where: str) -> str:
    """``relative`` if it stays inside its directory; else an error naming it."""
    parts = relative.split("/")
    if relative.startswith("/") or "\x00" in relative or any(p in ("", ".", "..") for p in parts):
        raise RemoteError(
            f"refusing the name {relative!r}: it would land outside {where}", path=where
        )
    return relative


def list_files(loc: Location) -> dict[str, Info]:
    """Every file below a directory, by path relative to it (checked by :func:`contained`)."""
    found = loc.fs.find(loc.path, detail=True, **find_options(loc))
    root = loc.path.rstrip("/")
    prefix = root + "/" if root else ""
    files = {}
    for name, info in found.items():
        if not name.startswith(prefix) or name == root:
            raise RemoteError(f"the listing of {loc.url} named {name!r}, outside it", path=root)
        files[contained(name[len(prefix) :], loc.url)] = info
    return files


def find_options(loc: Location) -> dict[str, Any]:
    """``find`` keywords that make a directory that cannot be listed an error, not a gap
    (s3fs lists a whole tree in one request and takes no such keyword)."""
    return {} if loc.s3 else {"on_error": "raise"}


def mtime_of(info: Info) -> float | None:
    """Modification time in epoch seconds from whichever field a backend's info has."""
    for key in MTIME_KEYS:
        value = info.get(key)
        if isinstance(value, dt.datetime):
            when = value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
            return when.timestamp()
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and value:
            try:
                return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return None


def basename(path: str) -> str:
    """The last segment of a filesystem path."""
    return posixpath.basename(path.rstrip("/")) or path


def is_dir(info: Info) -> bool:
    """Whether an info dict describes a directory."""
    return info.get("type") == "directory"


def local_parent(path: str) -> None:
    """Make the parent directories of a local path."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
