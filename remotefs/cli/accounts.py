"""``login``, ``logout``, ``whoami`` and ``profiles``: accounts of the services in the registry.

``login`` asks for the password without echo (or reads one line from stdin with
``--password-stdin``), lets the service obtain tokens, keeps them in the credential store
(never the password) and writes the profile's plain settings to ``config.toml``. Settings come
from the flags, else the service's environment variables, else the profile.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import sys
import time
from typing import Any

from remotefs.auth.store import CredentialStore
from remotefs.cli import EXIT_OK
from remotefs.cli.progress import format_duration
from remotefs.cli.services import SERVICES, service_module
from remotefs.config import load_config, login_record, profile_name, resolve, save_profile

FLAGS = (
    "username",
    "base_url",
    "client_name",
    "token_url",
    "endpoint_url",
    "region",
    "processes_url",
)
LABELS = {
    "token_expires": "token expires",
    "refresh_expires": "refresh token expires",
    "s3_expires": "S3 keys expire",
}


def login(args: argparse.Namespace) -> int:
    """Log in to a service and remember the login under a profile."""
    module = service_module(args.service)
    known: dict[str, str] = module.SETTINGS
    given = {name: getattr(args, name) for name in FLAGS if getattr(args, name) is not None}
    for name in given:
        if name not in known:
            flag = "--" + name.replace("_", "-")
            raise ValueError(f"{flag} does not apply to {args.service}")
    profile = profile_name(args.profile)
    settings = resolve(args.service, {k: given.get(k) for k in known}, known, profile)
    if not settings.get("username"):
        settings["username"] = _ask_username(args)
    password = _password(args, settings["username"])
    store = CredentialStore()
    identity = module.login(settings, password, store, login_record(args.service, profile))
    save_profile(args.service, profile, settings)
    expires = _when(identity.get("token_expires"))
    print(
        f"logged in to {args.service} as {identity.get('username') or settings['username']} "
        f"(profile {profile}); token valid until {expires}"
    )
    return EXIT_OK


def logout(args: argparse.Namespace) -> int:
    """Forget the tokens of a profile (its settings stay in config.toml)."""
    profile = profile_name(args.profile)
    if CredentialStore().delete(login_record(args.service, profile)):
        print(f"logged out of {args.service} (profile {profile})")
    else:
        print(f"not logged in to {args.service} (profile {profile})")
    return EXIT_OK


def whoami(args: argparse.Namespace) -> int:
    """Who the stored login is, and when its tokens expire."""
    profile = profile_name(args.profile)
    module = service_module(args.service)
    identity = {
        "profile": profile,
        **module.whoami(CredentialStore(), login_record(args.service, profile)),
    }
    if args.json:
        print(json.dumps(identity))
        return EXIT_OK
    for key, value in identity.items():
        if value is None:
            continue
        shown = _when(value) if key.endswith("_expires") else value
        print(f"{LABELS.get(key, key.replace('_', ' '))}: {shown}")
    return EXIT_OK


def profiles(args: argparse.Namespace) -> int:
    """Every profile in config.toml and every login in the store."""
    config = load_config()
    logins = set()
    for name in CredentialStore().names():
        kind, _, rest = name.partition(" ")
        service, _, profile = rest.partition(" ")
        if kind == "login" and service in SERVICES:
            logins.add((service, profile))
    found = {(s, p) for s, profs in config.items() if s in SERVICES for p in profs} | logins
    rows = [
        {
            "service": service,
            "profile": profile,
            "logged_in": (service, profile) in logins,
            "settings": config.get(service, {}).get(profile, {}),
        }
        for service, profile in sorted(found)
    ]
    if args.json:
        print(json.dumps(rows))
        return EXIT_OK
    if not rows:
        print("no profiles yet: run `remotefs login SERVICE`")
    for service, profile in sorted(found):
        table = config.get(service, {}).get(profile, {})
        settings = " ".join(f"{k}={v}" for k, v in sorted(table.items()))
        state = "logged in" if (service, profile) in logins else "logged out"
        print(f"{service:<8} {profile:<12} {state:<11} {settings}".rstrip())
    return EXIT_OK


def _ask_username(args: argparse.Namespace) -> str:
    if args.password_stdin or not sys.stdin.isatty():
        raise ValueError(f"logging in to {args.service} needs a username: give --username")
    name = input(f"{args.service} username: ").strip()
    if not name:
        raise ValueError("no username given")
    return name


def _password(args: argparse.Namespace, username: str) -> str:
    """The password, from stdin's first line or asked on the terminal without echo."""
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass(f"{args.service} password for {username}: ")
    else:
        raise ValueError("no terminal to ask for the password on: use --password-stdin")
    if not password:
        raise ValueError("empty password")
    return password


def _when(value: Any) -> str:
    """An expiry (epoch seconds) as UTC time and time left."""
    if not isinstance(value, (int, float)):
        return "unknown"
    moment = dt.datetime.fromtimestamp(value, tz=dt.timezone.utc)
    left = value - time.time()
    span = f"in {format_duration(left)}" if left >= 0 else f"{format_duration(-left)} ago"
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC ({span})"
