"""JSON shapes of the Files service: listing entries, logical files and history events.

Hrefs use the base URL of the request and the absolute double-slash form
``{base}/files/v2/media/system/{id}//home/user/x`` the seed shows, percent-encoded.
"""

from __future__ import annotations

import json
import mimetypes
import time
from typing import Any
from urllib.parse import quote

from remotefs.testing.agave.store import Entry, Event, iso_time

__all__ = [
    "Links",
    "entry_json",
    "event_json",
    "logical_file_json",
    "mime_type",
    "permission_json",
]

_MIME = mimetypes.MimeTypes(filenames=())


def mime_type(name: str) -> str:
    """Content type guessed from a file name, ``application/octet-stream`` when unknown."""
    return _MIME.guess_type(name, strict=False)[0] or "application/octet-stream"


class Links:
    """Href builder for one request: base URL plus system id."""

    def __init__(self, base: str, system_id: str) -> None:
        self.base = base
        self.system_id = system_id

    def _files(self, endpoint: str, path: str) -> dict[str, str]:
        return {"href": f"{self.base}/files/v2/{endpoint}/system/{self.system_id}/{quote(path)}"}

    def media(self, path: str) -> dict[str, str]:
        """Download/actions URL of a path."""
        return self._files("media", path)

    def history(self, path: str) -> dict[str, str]:
        """History URL of a path."""
        return self._files("history", path)

    def permissions(self, path: str) -> dict[str, str]:
        """Permissions URL of a path."""
        return self._files("pems", path)

    def system(self) -> dict[str, str]:
        """URL of the storage system."""
        return {"href": f"{self.base}/systems/v2/{self.system_id}"}

    def profile(self, user: str) -> dict[str, str]:
        """URL of a user's profile."""
        return {"href": f"{self.base}/profiles/v2/{user}"}

    def metadata(self, uuid: str) -> dict[str, str]:
        """Metadata search URL for a logical file."""
        query = json.dumps({"associationIds": uuid}, separators=(",", ":"))
        return {"href": f"{self.base}/meta/v2/data?q={quote(query, safe='')}"}


def entry_json(
    links: Links, entry: Entry, permission: str, *, self_uuid: str | None = None
) -> dict[str, Any]:
    """A listing entry; with `self_uuid` it is the ``"."`` entry of a listed directory."""
    data_links: dict[str, Any] = {"self": links.media(entry.path), "system": links.system()}
    if self_uuid is not None:
        data_links["history"] = links.history(entry.path)
        data_links["metadata"] = links.metadata(self_uuid)
    return {
        "name": "." if self_uuid is not None else entry.name,
        "path": entry.path,
        "lastModified": iso_time(int(entry.mtime)),
        "length": entry.size,
        "permissions": permission,
        "format": "folder" if entry.is_dir else "raw",
        "mimeType": "text/directory" if entry.is_dir else mime_type(entry.name),
        "type": "dir" if entry.is_dir else "file",
        "system": links.system_id,
        "_links": data_links,
    }


def logical_file_json(
    links: Links,
    path: str,
    *,
    relative: str,
    owner: str,
    uuid: str,
    status: str,
    is_dir: bool,
    source: str | None = None,
    notifications: bool = False,
) -> dict[str, Any]:
    """The logical-file object returned by uploads and file actions."""
    data_links: dict[str, Any] = {
        "self": links.media(path),
        "system": links.system(),
        "history": links.history(path),
        "profile": links.profile(owner),
    }
    if notifications:
        data_links["notification"] = []
    return {
        "name": path.rsplit("/", 1)[-1],
        "uuid": uuid,
        "owner": owner,
        "internalUsername": None,
        "lastModified": iso_time(time.time()),
        "source": source,
        "path": relative,
        "status": status,
        "systemId": links.system_id,
        "nativeFormat": "dir" if is_dir else "raw",
        "_links": data_links,
    }


def event_json(links: Links, path: str, event: Event) -> dict[str, Any]:
    """A history event of `path`."""
    history = links.history(path)["href"]
    return {
        "id": event.id,
        "status": event.status,
        "created": iso_time(event.created),
        "createdBy": event.created_by,
        "description": event.description,
        "_links": {
            "self": {"href": f"{history}/{event.id}"},
            "file": links.media(path),
            "profile": links.profile(event.created_by),
        },
    }


def permission_json(links: Links, path: str, user: str, level: str) -> dict[str, Any]:
    """A user's permission on `path` (level ALL or READ), as the pems resource lists it."""
    full = level == "ALL"
    return {
        "username": user,
        "internalUsername": None,
        "permission": {"read": True, "write": full, "execute": full},
        "recursive": True,
        "_links": {
            "self": links.permissions(path),
            "file": links.media(path),
            "profile": links.profile(user),
        },
    }
