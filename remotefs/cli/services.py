"""The services the command logs in to and runs jobs on, by name, and the code that knows each.

A service module offers ``SETTINGS`` (setting name -> environment variable), ``login``
(password -> tokens in the credential store) and ``whoami`` (identity and expiries). The
service's name is also its fsspec protocol, whose filesystems read the same profiles.

A job service's name is its backend's kind (a key of ``remotefs.jobs.BACKENDS``, the
``service`` of its job records); its entry names the function that turns the parsed command
line and a job record's URLs into the backend's keywords. Modules load only when a command
needs them, so the command starts fast.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

SERVICES = {
    "agave": "remotefs.agave.login",
    "edito": "remotefs.edito.login",
}
JOB_SERVICES = {
    "edito": "remotefs.cli.job_services:edito_options",
    "ogc": "remotefs.cli.job_services:ogc_options",
}
JobOptions = Callable[[Any, Mapping[str, str]], dict[str, Any]]


def service_module(name: str) -> ModuleType:
    """The module that logs in to service ``name``."""
    if name not in SERVICES:
        raise ValueError(f"unknown service {name!r}: choose one of {', '.join(SERVICES)}")
    return importlib.import_module(SERVICES[name])


def job_options(name: str) -> JobOptions:
    """The function making the keywords of job service ``name``'s backend."""
    if name not in JOB_SERVICES:
        raise ValueError(f"unknown job service {name!r}: choose one of {', '.join(JOB_SERVICES)}")
    module, _, function = JOB_SERVICES[name].partition(":")
    made: JobOptions = getattr(importlib.import_module(module), function)
    return made
