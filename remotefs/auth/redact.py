"""Keep secrets out of log output, including what third-party libraries log at DEBUG.

Policy: remotefs never logs a secret itself; libraries it drives do (botocore logs request
bodies with the web identity token and STS replies with secret keys). A filter on those
loggers rewrites every record, replacing the values of secret-bearing fields (XML elements,
form fields, dict entries, headers) by ``***`` before any handler sees them.
"""

from __future__ import annotations

import logging
import re

SECRET_FIELDS = (
    "SecretAccessKey|SessionToken|WebIdentityToken|X-Amz-Security-Token|x-amz-security-token|"
    "aws_secret_access_key|aws_session_token|access_token|refresh_token|id_token|password|"
    "client_secret|consumerSecret|Authorization|authorization"
)
_XML = re.compile(rf"<({SECRET_FIELDS})>[^<]*</\1>")
_PAIR = re.compile(
    rf"""(\b(?:{SECRET_FIELDS})\b['"]?\s*[:=]\s*b?['"]?)([^'"&\s,}}<]+(?: [^'"&\s,}}<]+)?)"""
)

THIRD_PARTY_LOGGERS = (
    "botocore.endpoint",
    "botocore.parsers",
    "botocore.auth",
    "botocore.hooks",
    "botocore.httpsession",
    "botocore.credentials",
    "aiobotocore.endpoint",
    "aiobotocore.httpsession",
    "urllib3.connectionpool",
    "s3fs",
)


def redact(text: str) -> str:
    """``text`` with the values of secret-bearing fields replaced by ``***``."""
    text = _XML.sub(lambda m: f"<{m.group(1)}>***</{m.group(1)}>", text)
    return _PAIR.sub(lambda m: m.group(1) + "***", text)


class RedactSecrets(logging.Filter):
    """A logging filter that redacts secrets in each record's final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def protect_loggers(names: tuple[str, ...] = THIRD_PARTY_LOGGERS) -> None:
    """Attach the redacting filter to ``names`` (once each)."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
