"""The services the command logs in to, by name, and the module that knows each one.

A service module offers ``SETTINGS`` (setting name -> environment variable), ``login``
(password -> tokens in the credential store) and ``whoami`` (identity and expiries). The
service's name is also its fsspec protocol, whose filesystems read the same profiles. Modules
load only when a command needs them, so the command starts fast.
"""

from __future__ import annotations

import importlib
from types import ModuleType

SERVICES = {
    "agave": "remotefs.agave.login",
    "edito": "remotefs.edito.login",
}


def service_module(name: str) -> ModuleType:
    """The module that logs in to service ``name``."""
    if name not in SERVICES:
        raise ValueError(f"unknown service {name!r}: choose one of {', '.join(SERVICES)}")
    return importlib.import_module(SERVICES[name])
