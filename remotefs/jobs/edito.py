"""EDITO's process API: OGC paths, Onyxia's execute body, Keycloak bearer, outputs on S3.

What differs from plain OGC API - Processes (see the reference's process-API section):

* Bearer tokens of Keycloak's public client ``onyxia`` (scope ``openid``), renewed before they
  expire and once more after a 401 (the seed's polling loop meant to, but passed no refresh
  token). The process list is public and is read without logging in.
* The execute body is ``{"processInputs": {onyxia, inputs, resources, s3}, "metadata": {}}``.
  The ``s3`` block carries current STS keys of the user's ``edito://`` filesystem, endpoint
  without scheme, so the job reads and writes the user's bucket. No ``Prefer`` header (the
  seed sends none). ``edito://`` URLs among the inputs are passed as ``s3://`` URLs.
* Listings are paged with ``limit`` and ``page`` (1-based). Results are mostly S3 objects:
  ``s3://`` and ``edito://`` values and hrefs are downloaded through ``edito://`` with the same
  credentials.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from remotefs.auth.keycloak import EDITO_TOKEN_URL, KeycloakLogin
from remotefs.auth.tokens import Token, TokenAuth, TokenProvider
from remotefs.edito.credentials import DEFAULT_ENDPOINT, DEFAULT_REGION
from remotefs.edito.sts import StsCredentials
from remotefs.http import RetryPolicy, Timeouts
from remotefs.jobs.ogc import OgcBackend
from remotefs.jobs.records import JobRecords
from remotefs.jobs.waiting import PollPolicy

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

EDITO_PROCESSES_URL = "https://api.dive.edito.eu/processes"
API_CLIENT_ID = "onyxia"
DEFAULT_RESOURCES: dict[str, Any] = {
    "limits": {"cpu": "7200m", "memory": "28Gi"},
    "requests": {"cpu": "1000m", "memory": "16Gi"},
}
NO_EXPIRY = dt.datetime.max.replace(tzinfo=dt.timezone.utc)
EXECUTE_OPTIONS = frozenset({"resources", "project", "friendly_name", "share", "metadata", "s3"})


class EditoBackend(OgcBackend):
    """EDITO's process API for one user; inputs and outputs live in the user's S3 bucket.

    Credentials: ``username``/``password``, or a Keycloak ``token``/``refresh_token`` of client
    ``onyxia`` for the API, or a ready ``tokens`` provider (a stored login's). The ``edito://``
    filesystem is made from ``token_url``, ``endpoint_url``, ``region``, the username and
    password, and ``storage_options`` (e.g. its own ``refresh_token`` or ``profile``), unless a
    ready ``filesystem`` is given.
    """

    service: ClassVar[str] = "edito"
    url_schemes: ClassVar[tuple[str, ...]] = ("s3", "edito")
    public_listing: ClassVar[bool] = True
    page_parameter: ClassVar[str | None] = "page"

    def __init__(
        self,
        processes_url: str = EDITO_PROCESSES_URL,
        *,
        token_url: str = EDITO_TOKEN_URL,
        endpoint_url: str = DEFAULT_ENDPOINT,
        region: str = DEFAULT_REGION,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        refresh_token: str | None = None,
        tokens: TokenProvider | None = None,
        storage_options: Mapping[str, Any] | None = None,
        filesystem: AbstractFileSystem | None = None,
        resources: Mapping[str, Any] | None = None,
        verify: bool = True,
        retry: RetryPolicy = RetryPolicy(),
        timeouts: Timeouts = Timeouts(),
        poll: PollPolicy = PollPolicy(),
        records: JobRecords | None = None,
    ) -> None:
        login = KeycloakLogin(
            token_url=token_url,
            client_id=API_CLIENT_ID,
            scope="openid",
            username=username,
            password=password,
            verify=verify,
            timeouts=timeouts,
        )
        held = None
        if token or refresh_token:
            held = Token(token or "", refresh_token, expires_at=None if token else 0.0)
        self.tokens = tokens if tokens is not None else TokenProvider(held, login, margin=60.0)
        super().__init__(
            processes_url,
            auth=TokenAuth(self.tokens),
            prefer_async=False,
            retry=retry,
            timeouts=timeouts,
            verify=verify,
            poll=poll,
            records=records,
        )
        self.token_url = token_url
        self.endpoint_url = endpoint_url.rstrip("/")
        self.region = region
        self.resources = copy.deepcopy(
            dict(resources if resources is not None else DEFAULT_RESOURCES)
        )
        self._fs_options: dict[str, Any] = {
            "token_url": token_url,
            "endpoint_url": self.endpoint_url,
            "region": region,
            "username": username,
            "password": password,
            "verify": verify,
            **(storage_options or {}),
        }
        self._filesystem = filesystem

    def urls(self) -> dict[str, str]:
        """The process API, Keycloak token endpoint, S3 endpoint and region."""
        return {
            "processes_url": self.api.base_url,
            "token_url": self.token_url,
            "endpoint_url": self.endpoint_url,
            "region": self.region,
        }

    # -- storage ---------------------------------------------------------------------------------

    @property
    def storage(self) -> AbstractFileSystem:
        """The user's ``edito://`` filesystem (made on first use)."""
        if self._filesystem is None:
            from remotefs.edito.filesystem import EditoFileSystem

            self._filesystem = EditoFileSystem(**self._fs_options)
        return self._filesystem

    def filesystem(self, url: str) -> tuple[AbstractFileSystem, str]:
        """``edito://``, ``s3://`` and ``https://<S3 endpoint>/`` URLs go to :attr:`storage`."""
        parts = urlsplit(url)
        if parts.scheme in ("edito", "s3"):
            return self.storage, f"{parts.netloc}{parts.path}"
        if parts.scheme in ("http", "https") and parts.netloc == urlsplit(self.endpoint_url).netloc:
            return self.storage, parts.path.lstrip("/")
        return super().filesystem(url)

    def s3_block(self) -> dict[str, Any]:
        """The ``s3`` block for the job: the storage's keys now (renewed first if due)."""
        fs: Any = self.storage
        credentials = getattr(fs, "credentials", None)
        if credentials is not None:
            keys: StsCredentials = credentials.valid()
        elif getattr(fs, "key", None) and getattr(fs, "secret", None):
            # Ready keys (an EDITO pod's AWS_* variables) are handed over as they are.
            keys = StsCredentials(fs.key, fs.secret, fs.token or "", NO_EXPIRY)
        else:
            raise PermissionError(
                "no S3 credentials to hand to the job: give a username and password, or keys"
            )
        return keys.for_process_api(self.endpoint_url, self.region)

    # -- execution -------------------------------------------------------------------------------

    def execution_body(
        self, process_id: str, inputs: Mapping[str, Any], options: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Onyxia's ``processInputs`` with the user's S3 keys, and ``metadata`` (project)."""
        unknown = set(options) - EXECUTE_OPTIONS
        if unknown:
            raise TypeError(f"unknown execution options for edito: {sorted(unknown)}")
        process_inputs: dict[str, Any] = {
            "onyxia": {
                "friendlyName": options.get("friendly_name") or process_id,
                "share": bool(options.get("share", False)),
            },
            "inputs": {name: _s3_url(value) for name, value in inputs.items()},
            "resources": copy.deepcopy(dict(options.get("resources") or self.resources)),
        }
        if options.get("s3", True):
            process_inputs["s3"] = self.s3_block()
        metadata = dict(options.get("metadata") or {})
        if options.get("project"):
            metadata["project"] = options["project"]
        return {"processInputs": process_inputs, "metadata": metadata}


def _s3_url(value: Any) -> Any:
    """``edito://bucket/key`` as the ``s3://bucket/key`` a process inside EDITO understands."""
    if isinstance(value, str) and value.startswith("edito://"):
        return "s3://" + value[len("edito://") :]
    return value
