"""EDITO: the ``edito://`` filesystem (MinIO S3 with Keycloak + STS) and S3 credentials.

``EditoFileSystem`` needs the ``edito`` extra (s3fs, boto3) and is loaded on first use, so
``remotefs.edito.s3_credentials`` and the STS helpers import quickly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from remotefs.edito.credentials import (
    DEFAULT_ENDPOINT,
    DEFAULT_REGION,
    EditoCredentials,
    EditoSettings,
)
from remotefs.edito.sts import StsCredentials, assume_role_with_web_identity

if TYPE_CHECKING:
    from remotefs.edito.filesystem import EditoFileSystem

__all__ = [
    "DEFAULT_ENDPOINT",
    "DEFAULT_REGION",
    "EditoFileSystem",
    "StsCredentials",
    "assume_role_with_web_identity",
    "s3_credentials",
]


def s3_credentials(
    username: str | None = None,
    password: str | None = None,
    *,
    refresh_token: str | None = None,
    settings: EditoSettings | None = None,
    **setting_overrides: Any,
) -> StsCredentials:
    """Current EDITO S3 credentials for a user (``for_process_api()``, ``as_environ()``).

    Logs in to Keycloak as client ``onyxia-minio`` (or uses ``refresh_token``) and exchanges
    the token at MinIO's STS. ``setting_overrides`` are :class:`EditoSettings` fields.
    """
    from remotefs.auth.tokens import Token

    chosen = settings or EditoSettings(**setting_overrides)
    token = Token("", refresh_token, expires_at=0.0) if refresh_token else None
    return EditoCredentials(chosen, username=username, password=password, token=token).fetch()


def __getattr__(name: str) -> Any:
    if name == "EditoFileSystem":
        from remotefs.edito.filesystem import EditoFileSystem

        return EditoFileSystem
    raise AttributeError(name)
