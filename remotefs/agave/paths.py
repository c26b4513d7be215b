"""Agave paths: ``SYSTEM/relative/to/home`` or ``SYSTEM//absolute/from/root``.

fsspec hands us paths without the protocol. The first segment names the storage system; the
rest is sent to the service as written (a leading slash means absolute from the system's
rootDir, none means relative to its homeDir), with each segment percent-encoded.
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import quote


class AgavePath(NamedTuple):
    """A path split into the storage system and the path on it."""

    system: str
    path: str

    @classmethod
    def parse(cls, fs_path: str) -> AgavePath:
        """Split ``SYSTEM/rest``; refuse a path without a system or with ``..`` segments."""
        system, _, rest = fs_path.partition("/")
        if not system:
            raise ValueError(
                f"{fs_path!r} names no storage system: use agave://SYSTEM_ID/path/on/system"
            )
        if ".." in rest.split("/"):
            raise ValueError(f"{fs_path!r}: '..' is not allowed in agave paths")
        absolute = rest.startswith("/")
        rest = "/".join(part for part in rest.split("/") if part and part != ".")
        return cls(system, "/" + rest if absolute else rest)

    def url_path(self) -> str:
        """``SYSTEM/encoded/path`` (``SYSTEM//abs`` when absolute) for a service URL."""
        encoded = "/".join(quote(part, safe="") for part in self.path.split("/") if part)
        lead = "/" if self.path.startswith("/") else ""
        return f"{quote(self.system, safe='')}/{lead}{encoded}"

    def fs_path(self) -> str:
        """Back to the fsspec form."""
        return f"{self.system}/{self.path}" if self.path else self.system

    @property
    def name(self) -> str:
        """The last segment (empty for the home directory)."""
        return self.path.rstrip("/").rpartition("/")[2]

    @property
    def parent(self) -> AgavePath:
        """The containing directory (the home directory's parent is itself)."""
        head, sep, _ = self.path.rpartition("/")
        if self.path.startswith("/") and head == "":
            return AgavePath(self.system, "/")
        return AgavePath(self.system, head if sep else "")

    def child(self, name: str) -> AgavePath:
        """The path of ``name`` inside this directory."""
        if self.path in ("", "/"):
            return AgavePath(self.system, self.path + name)
        return AgavePath(self.system, f"{self.path}/{name}")
