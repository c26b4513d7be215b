"""Agave listing entries as fsspec info dictionaries.

A listing entry carries ``type`` (``file``/``dir``), ``length``, ``lastModified`` (ISO-8601
with a numeric offset), ``mimeType`` and ``permissions``. Directories report size 0, as fsspec
expects (Agave's own small native sizes would skew ``du``). A listed name that could point
outside its directory is refused, never joined to a path.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from remotefs.errors import RemoteError

Entry = dict[str, Any]


def info_from_entry(name: str, entry: Entry) -> dict[str, Any]:
    """fsspec's info dict for ``entry``, under the fsspec path ``name``."""
    is_dir = entry.get("type") == "dir"
    modified = entry.get("lastModified")
    return {
        "name": name,
        "size": 0 if is_dir else int(entry.get("length") or 0),
        "type": "directory" if is_dir else "file",
        "mtime": timestamp(modified) if modified else None,
        "mimetype": entry.get("mimeType"),
        "permissions": entry.get("permissions"),
    }


def child_infos(path: str, children: list[Entry]) -> list[dict[str, Any]]:
    """Info dicts of a directory's children (``.``/``..`` left out, unsafe names refused)."""
    return [
        info_from_entry(f"{path}/{safe_name(c, path)}", c)
        for c in children
        if c.get("name") not in (".", "..")
    ]


def safe_name(entry: Entry, parent: str) -> str:
    """A listed name, refused if it could point outside its directory."""
    name = str(entry.get("name", ""))
    if not name or "/" in name or "\x00" in name or name in (".", ".."):
        raise RemoteError(f"the service listed an unsafe file name {name!r}", path=parent)
    return name


def timestamp(value: str) -> float:
    """Epoch seconds of Agave's ``2017-07-20T13:28:30.000-05:00``."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
