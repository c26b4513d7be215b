"""The exceptions remotefs raises: builtin OSError subclasses that carry what went wrong.

Every HTTP failure becomes one of these in one place (:mod:`remotefs.http`), so callers can
catch ``FileNotFoundError`` or ``PermissionError`` as for local files, and still read the HTTP
``status``, the service's ``message``, the ``path`` and whether a retry could help. They pickle
(for Dask and process pools) and never hold credentials.
"""

from __future__ import annotations

import errno
from typing import Any


class RemoteError(OSError):
    """A remote service refused or failed a request."""

    default_errno: int = errno.EIO

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        path: str | None = None,
        retriable: bool = False,
    ) -> None:
        super().__init__(self.default_errno, message)
        self.message = message
        self.status = status
        self.path = path
        self.retriable = retriable
        if path is not None:
            self.filename = path

    def __str__(self) -> str:
        where = f" [{self.path}]" if self.path else ""
        code = f" (HTTP {self.status})" if self.status else ""
        return f"{self.message}{where}{code}"

    def __reduce__(self) -> tuple[Any, ...]:
        kwargs = {"status": self.status, "path": self.path, "retriable": self.retriable}
        return (_rebuild, (type(self), self.message, kwargs))


def _rebuild(cls: type[RemoteError], message: str, kwargs: dict[str, Any]) -> RemoteError:
    return cls(message, **kwargs)


class RemoteFileNotFoundError(RemoteError, FileNotFoundError):
    """The path or resource does not exist on the service (HTTP 404)."""

    default_errno = errno.ENOENT


class RemotePermissionError(RemoteError, PermissionError):
    """The service refused access (HTTP 403, or a 401 that survived a token refresh)."""

    default_errno = errno.EACCES


class RemoteFileExistsError(RemoteError, FileExistsError):
    """The target already exists and the operation does not overwrite."""

    default_errno = errno.EEXIST


class RemoteIsADirectoryError(RemoteError, IsADirectoryError):
    """A file operation was asked of a directory."""

    default_errno = errno.EISDIR


class RemoteNotADirectoryError(RemoteError, NotADirectoryError):
    """A directory operation was asked of a file."""

    default_errno = errno.ENOTDIR


class RemoteTimeoutError(RemoteError, TimeoutError):
    """The service did not answer, or did not finish, in time."""

    default_errno = errno.ETIMEDOUT


class RemoteConnectionError(RemoteError, ConnectionError):
    """The service could not be reached, or the connection broke, after all retries."""

    default_errno = errno.ECONNRESET


class AuthenticationError(RemotePermissionError):
    """Logging in or refreshing a token failed; the message says what to do."""


class TransferError(RemoteError):
    """A transfer finished but its result is wrong (size mismatch, failed staging)."""
