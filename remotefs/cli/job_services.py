"""The job services of ``remotefs jobs``: their backends made from the command line, jobs by id.

Each entry of :data:`remotefs.cli.services.JOB_SERVICES` names a function here that turns the
parsed arguments and a job record's URLs into its backend's keywords (a new service adds one
function and one entry). Settings come from the flag, else the job's local record (the job is
where it was submitted), else the environment and the profile, else the service's default. A
job id with a local record (``submit`` writes one) is reached through that record
(:func:`remotefs.jobs.load`); any other through the service, which must know it.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from remotefs.cli.services import job_options

if TYPE_CHECKING:
    from remotefs.jobs import Backend, Job

EDITO_URLS = ("processes_url", "token_url", "endpoint_url", "region")


def edito_options(args: argparse.Namespace, recorded: Mapping[str, str]) -> dict[str, Any]:
    """EditoBackend keywords; API tokens and S3 keys come from the profile's stored login."""
    from remotefs.auth.store import CredentialStore
    from remotefs.config import profile_name, resolve
    from remotefs.edito.login import SETTINGS, process_tokens, settings_from
    from remotefs.jobs.edito import EDITO_PROCESSES_URL

    _refuse(args, "url", "token")
    profile = profile_name(args.profile)
    given = {name: recorded.get(name) for name in EDITO_URLS}
    if args.processes_url:
        given["processes_url"] = args.processes_url
    settings = resolve("edito", given, SETTINGS, profile)
    chosen = settings_from(settings)
    return {
        "processes_url": settings["processes_url"] or EDITO_PROCESSES_URL,
        "token_url": chosen.token_url,
        "endpoint_url": chosen.endpoint_url,
        "region": chosen.region,
        "tokens": process_tokens(CredentialStore(), profile, chosen),
        "storage_options": {"profile": profile},
    }


def ogc_options(args: argparse.Namespace, recorded: Mapping[str, str]) -> dict[str, Any]:
    """OgcBackend keywords: ``--url`` (else the job's record's) and an optional bearer token."""
    _refuse(args, "profile", "processes_url")
    url = args.url or recorded.get("url")
    if not url:
        raise ValueError("the ogc service needs --url URL (the server's root)")
    options: dict[str, Any] = {"url": url}
    if args.token:
        from remotefs.auth.tokens import Token, TokenAuth, TokenProvider

        options["auth"] = TokenAuth(TokenProvider(Token(args.token), None))
    return options


def _refuse(args: argparse.Namespace, *names: str) -> None:
    """A setting of another service is a mistake worth saying."""
    for name in names:
        if getattr(args, name, None) is not None:
            raise ValueError(f"--{name.replace('_', '-')} does not apply to {args.service}")


def backend_options(args: argparse.Namespace, recorded: Mapping[str, str]) -> dict[str, Any]:
    """The service's backend keywords, with the polling policy of ``--poll`` if given."""
    from remotefs.jobs import PollPolicy

    options = job_options(args.service)(args, recorded)
    poll = getattr(args, "poll", None)
    if poll is not None:
        options["poll"] = PollPolicy(initial=min(1.0, poll), maximum=poll)
    return options


def make_backend(args: argparse.Namespace) -> Backend:
    """The backend of ``args.service`` (a context manager: closed after the command)."""
    from remotefs.jobs import backend_class

    return backend_class(args.service)(**backend_options(args, {}))


def find_job(args: argparse.Namespace) -> Job:
    """The job ``args.job_id``: through its local record when there is one, else the service."""
    from remotefs.jobs import JobRecords, backend_class, load

    records = JobRecords()
    record = records.find(args.job_id, args.service)
    if record is not None:
        options = backend_options(args, record.urls)
        return load(args.job_id, service=args.service, records=records, **options)
    made = backend_class(args.service)(**backend_options(args, {}), records=records)
    try:
        return made.job(args.job_id)
    except BaseException:
        made.close()
        raise
