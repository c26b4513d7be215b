"""Profiles: named, non-secret settings per service in ``config.toml``.

Policy: one TOML file in remotefs's configuration directory (``$REMOTEFS_CONFIG_DIR``, else
``~/.config/remotefs``) holds a table per service and profile (``[agave.default]``,
``[edito.work]``) of plain settings: base URLs, the username, defaults. A setting comes from
the value the caller gives, else its environment variable, else the profile, else the
service's default. ``REMOTEFS_PROFILE`` selects the profile (``default`` otherwise). Secrets
never go here: they live in the credential store, under :func:`login_record` names. Writes
replace the file atomically with one created writable by its owner only (whoever could edit
it could point the next login at their own server).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from remotefs.auth.store import config_dir

DEFAULT_PROFILE = "default"
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
Scalar = str | int | float | bool


def config_path() -> Path:
    """Where the profiles live."""
    return config_dir() / "config.toml"


def profile_name(profile: str | None = None) -> str:
    """The profile to use: the one given, else ``$REMOTEFS_PROFILE``, else ``default``."""
    name = profile or os.environ.get("REMOTEFS_PROFILE") or DEFAULT_PROFILE
    if not _NAME.match(name):
        raise ValueError(f"invalid profile name {name!r}: use letters, digits, '-' and '_'")
    return name


def login_record(service: str, profile: str) -> str:
    """The credential store's name for the login of ``service`` in ``profile``."""
    return f"login {service} {profile}"


def load_config(path: Path | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    """Every service's profiles: ``{service: {profile: {setting: value}}}``."""
    path = path or config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path} is not valid TOML: {exc}") from None
    return {
        service: {name: dict(table) for name, table in profiles.items() if isinstance(table, dict)}
        for service, profiles in data.items()
        if isinstance(profiles, dict)
    }


def profile_settings(service: str, profile: str | None = None) -> dict[str, Any]:
    """The settings of one profile of ``service`` (empty when it is not configured)."""
    return dict(load_config().get(service, {}).get(profile_name(profile), {}))


def resolve(
    service: str,
    given: Mapping[str, Any],
    env: Mapping[str, str],
    profile: str | None = None,
) -> dict[str, Any]:
    """Settings by precedence: ``given`` (not None), the ``env`` variable, the profile."""
    stored = profile_settings(service, profile)
    resolved: dict[str, Any] = {}
    for name, value in given.items():
        if value is None and name in env:
            value = os.environ.get(env[name]) or None
        if value is None:
            value = stored.get(name)
        resolved[name] = value
    return resolved


def save_profile(service: str, profile: str, settings: Mapping[str, Scalar | None]) -> Path:
    """Write one profile's settings (None values are left out), keeping every other table."""
    for name in (service, profile, *settings):
        if not _NAME.match(name):
            raise ValueError(f"invalid name {name!r} for the configuration file")
    path = config_path()
    data = load_config(path)
    data.setdefault(service, {})[profile] = {k: v for k, v in settings.items() if v is not None}
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(dump_toml(data))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def dump_toml(data: Mapping[str, Mapping[str, Mapping[str, Scalar]]]) -> str:
    """TOML for two levels of tables of scalars (all the configuration file holds)."""
    lines = ["# remotefs profiles: written by `remotefs login`, safe to edit.", ""]
    for service, profiles in sorted(data.items()):
        for name, table in sorted(profiles.items()):
            lines.append(f"[{service}.{name}]")
            lines += [f"{key} = {_toml_value(value)}" for key, value in sorted(table.items())]
            lines.append("")
    return "\n".join(lines)


def _toml_value(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    # A JSON string is a TOML basic string, except that TOML also escapes DEL.
    return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")
