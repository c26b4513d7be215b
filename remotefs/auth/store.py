"""The private credential store: refresh tokens and client secrets, never passwords.

Policy: one JSON file in the user's config directory, created with mode 0600 from the start
(``os.open``, not chmod afterwards), replaced atomically on every write, and updated under an
exclusive lock so that two processes rotating a refresh token at once lose nothing. A store
that group or others can read is refused: its secrets may already have leaked.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

Record = dict[str, Any]


def config_dir() -> Path:
    """remotefs's configuration directory (``$REMOTEFS_CONFIG_DIR``, else XDG's)."""
    explicit = os.environ.get("REMOTEFS_CONFIG_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(Path.home(), ".config")
    return Path(base) / "remotefs"


class CredentialStore:
    """Named credential records in one private JSON file."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else config_dir() / "credentials.json"

    def __repr__(self) -> str:
        return f"CredentialStore({str(self.path)!r})"

    def get(self, name: str) -> Record | None:
        """The record stored under ``name``, or None."""
        with self._locked(exclusive=False):
            return self._read().get(name)

    def names(self) -> list[str]:
        """Every record name, sorted."""
        with self._locked(exclusive=False):
            return sorted(self._read())

    def put(self, name: str, record: Record) -> None:
        """Store ``record`` under ``name``, replacing what was there."""
        self.update(name, lambda _old: record)

    def delete(self, name: str) -> bool:
        """Remove a record; True if it existed."""
        with self._locked(exclusive=True):
            data = self._read()
            existed = data.pop(name, None) is not None
            if existed:
                self._write(data)
            return existed

    def update(self, name: str, change: Callable[[Record | None], Record]) -> Record:
        """Read, change and write one record atomically with respect to other processes."""
        with self._locked(exclusive=True):
            data = self._read()
            data[name] = change(data.get(name))
            self._write(data)
            return data[name]

    @contextlib.contextmanager
    def _locked(self, *, exclusive: bool) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    def _read(self) -> dict[str, Record]:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return {}
        with os.fdopen(fd, "r", encoding="utf-8") as fh:
            mode = os.fstat(fh.fileno()).st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise PermissionError(
                    f"refusing to use {self.path}: it is readable by other users "
                    f"(mode {stat.S_IMODE(mode):o}); run 'chmod 600 {self.path}' and log in again"
                )
            text = fh.read()
        if not text.strip():
            return {}
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ValueError(
                f"{self.path} is not valid JSON ({exc}); remove it and log in again"
            ) from None
        return data if isinstance(data, dict) else {}

    def _write(self, data: dict[str, Record]) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=2, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
