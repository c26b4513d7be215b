"""MinIO's STS: AssumeRoleWithWebIdentity turns a Keycloak token into temporary S3 keys.

Sent with boto3's unsigned STS client, parameters in a form body (MinIO accepts it, moto needs
it). boto3 insists on ``RoleArn`` and ``RoleSessionName``: MinIO in claim mode ignores them.
The expiry is read from the reply, never computed. Anything but an
``AssumeRoleWithWebIdentityResponse`` with credentials is an error that says what to do.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from remotefs.auth.redact import protect_loggers
from remotefs.errors import AuthenticationError, RemoteError, RemotePermissionError

DEFAULT_DURATION = 86400
MIN_DURATION = 900
DEFAULT_ROLE_ARN = "arn:aws:iam::000000000000:role/remotefs"
TOKEN_PROBLEMS = {"ExpiredToken", "InvalidIdentityToken", "InvalidClientGrantsToken"}


@dataclass(frozen=True)
class StsCredentials:
    """Temporary S3 credentials and when they expire."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration: dt.datetime

    def remaining(self) -> float:
        """Seconds until expiry."""
        return (self.expiration - dt.datetime.now(dt.timezone.utc)).total_seconds()

    def for_process_api(self, endpoint_url: str, region: str) -> dict[str, Any]:
        """The ``s3`` block EDITO's process API takes (endpoint without scheme)."""
        return {
            "enabled": True,
            "endpoint": urlsplit(endpoint_url).netloc or endpoint_url,
            "defaultRegion": region,
            "accessKeyId": self.access_key_id,
            "secretAccessKey": self.secret_access_key,
            "sessionToken": self.session_token,
        }

    def as_environ(self, endpoint_url: str, region: str) -> dict[str, str]:
        """The ``AWS_*`` variables EDITO's own pods get."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_SESSION_TOKEN": self.session_token,
            "AWS_S3_ENDPOINT": urlsplit(endpoint_url).netloc or endpoint_url,
            "AWS_DEFAULT_REGION": region,
        }

    def as_botocore_metadata(self) -> dict[str, str]:
        """The dict botocore's refreshable credentials are made from."""
        return {
            "access_key": self.access_key_id,
            "secret_key": self.secret_access_key,
            "token": self.session_token,
            "expiry_time": self.expiration.isoformat(),
        }


def assume_role_with_web_identity(
    endpoint_url: str,
    web_identity_token: str,
    *,
    duration: int = DEFAULT_DURATION,
    region: str = "us-east-1",
    role_arn: str = DEFAULT_ROLE_ARN,
    role_session_name: str = "remotefs",
    verify: bool = True,
) -> StsCredentials:
    """Exchange a web identity token for S3 credentials valid ``duration`` seconds (>= 900)."""
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    if duration < MIN_DURATION:
        raise ValueError(f"STS credentials last at least {MIN_DURATION} s; got {duration}")
    sts = boto3.client(
        "sts",
        endpoint_url=endpoint_url,
        region_name=region,
        verify=verify,
        config=Config(signature_version=UNSIGNED, retries={"mode": "standard"}),
    )
    protect_loggers()
    try:
        reply = sts.assume_role_with_web_identity(
            RoleArn=role_arn,
            RoleSessionName=role_session_name,
            WebIdentityToken=web_identity_token,
            DurationSeconds=duration,
        )
    except ClientError as exc:
        raise _sts_error(exc) from None
    except BotoCoreError as exc:
        raise RemoteError(f"STS at {endpoint_url} failed: {exc}", retriable=True) from None
    except (KeyError, TypeError, ValueError):
        reply = {}  # botocore could not read the reply as an STS answer
    creds = reply.get("Credentials")
    if not isinstance(creds, dict) or not {"AccessKeyId", "Expiration"} <= set(creds):
        raise RemoteError(
            f"{endpoint_url} did not answer with an AssumeRoleWithWebIdentityResponse: is it "
            "an S3 endpoint with STS (MinIO)?"
        )
    expiration = creds["Expiration"]
    if expiration.tzinfo is None:
        expiration = expiration.replace(tzinfo=dt.timezone.utc)
    return StsCredentials(
        access_key_id=creds["AccessKeyId"],
        secret_access_key=creds["SecretAccessKey"],
        session_token=creds["SessionToken"],
        expiration=expiration,
    )


def _sts_error(exc: Any) -> RemoteError:
    error = exc.response.get("Error", {})
    code, message = error.get("Code", "Unknown"), error.get("Message", "")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code in TOKEN_PROBLEMS:
        return AuthenticationError(
            f"STS refused the login token ({code}: {message}); log in again", status=status
        )
    if code == "AccessDenied":
        return RemotePermissionError(f"STS denied S3 access ({message})", status=status)
    return RemoteError(f"STS failed ({code}: {message})", status=status)
