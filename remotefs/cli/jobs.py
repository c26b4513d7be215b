"""``remotefs jobs``: a service's processes, and jobs submitted, followed and collected.

The actions are the same for every job service; :mod:`remotefs.cli.job_services` makes the
service's backend and finds a job by id. Waiting shows the Job API's progress line when stderr
is a terminal and nothing otherwise; a job that fails or is dismissed exits 1 with the
service's message, one that runs out of time exits 7 (:data:`remotefs.cli.EXIT_TIMEOUT`).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from remotefs.cli import EXIT_OK
from remotefs.cli.job_services import find_job, make_backend
from remotefs.cli.progress import format_size

if TYPE_CHECKING:
    from remotefs.jobs import CopiedFile, Job, JobRecord, JobState, ProcessInfo

# -- actions -------------------------------------------------------------------------------------


def command(args: argparse.Namespace) -> int:
    """Run ``remotefs jobs ACTION``."""
    return ACTIONS[args.action](args)


def processes(args: argparse.Namespace) -> int:
    """The processes a service offers."""
    with make_backend(args) as backend:
        found = backend.processes()
    if args.json:
        _print_json([_process_summary(p) for p in found])
    else:
        _table(["ID", "TITLE", "VERSION"], [[p.id, p.title or "", p.version or ""] for p in found])
    return EXIT_OK


def describe(args: argparse.Namespace) -> int:
    """One process: its inputs (type, required) and its outputs."""
    with make_backend(args) as backend:
        info = backend.describe(args.process)
    inputs = _inputs_of(info)
    outputs = [
        {"name": str(name), "type": _type_of(_schema(d)), "title": _title(d)}
        for name, d in info.outputs.items()
    ]
    if args.json:
        _print_json(
            {**_process_summary(info), "inputs": inputs, "outputs": outputs, "schema": info.schema}
        )
        return EXIT_OK
    for key, value in _process_summary(info).items():
        if value:
            print(f"{key}: {value}")
    rows = [
        [i["name"], i["type"], "required" if i["required"] else "optional", i["title"]]
        for i in inputs
    ]
    print()
    _table(["INPUT", "TYPE", "REQUIRED", "TITLE"], rows)
    print()
    _table(["OUTPUT", "TYPE", "TITLE"], [[o["name"], o["type"], o["title"]] for o in outputs])
    return EXIT_OK


def submit(args: argparse.Namespace) -> int:
    """Check the inputs, stage files, run; print the job id, then wait and collect if asked."""
    inputs = _read_inputs(args)
    with make_backend(args) as backend:
        job = backend.submit(args.process, inputs, stage=dict(args.stage) or None)
        print(job.id, flush=True)
        for copied in job.staged:
            verb = "already staged" if copied.skipped else "staged"
            _note(f"{verb} {copied.source} -> {copied.target} ({format_size(copied.size)})")
        if args.wait or args.download:
            _finish(job, args)
            _print_results(job.results(), as_json=False)
            if args.download:
                _print_copied(job.download(args.download), args.download, as_json=False)
    return EXIT_OK


def status(args: argparse.Namespace) -> int:
    """The job's status, progress and message, asked of the service now."""
    job = find_job(args)
    with job.backend:
        state = job.refresh()
    row = _state_row(state, job.submitted or _created(state))
    if args.json:
        _print_json(row)
        return EXIT_OK
    shown = {
        "job": row["job_id"],
        "process": row["process_id"],
        "status": _status_text(row),
        "progress": f"{row['progress']:.0f}%" if row["progress"] is not None else None,
        "message": row["message"],
        "submitted": row["submitted"],
    }
    for key, value in shown.items():
        if value:
            print(f"{key}: {value}")
    return EXIT_OK


def wait(args: argparse.Namespace) -> int:
    """Wait until the job ends: exit 0 if it succeeded; an error if it failed or timed out."""
    job = find_job(args)
    with job.backend:
        _finish(job, args)
    return EXIT_OK


def logs(args: argparse.Namespace) -> int:
    """The job's log text."""
    job = find_job(args)
    with job.backend:
        try:
            text = job.logs(from_start=True)
        except io.UnsupportedOperation:
            raise ValueError(f"the {args.service} service has no logs endpoint") from None
    sys.stdout.write(text)
    return EXIT_OK


def results(args: argparse.Namespace) -> int:
    """The job's results: output id and value or URL."""
    job = find_job(args)
    with job.backend:
        found = job.results()
    _print_results(found, as_json=args.json)
    return EXIT_OK


def download(args: argparse.Namespace) -> int:
    """Every output of a successful job, as files below DIR."""
    job = find_job(args)
    with job.backend:
        copied = job.download(args.dest)
    _print_copied(copied, args.dest, as_json=args.json)
    return EXIT_OK


def cancel(args: argparse.Namespace) -> int:
    """Dismiss the job."""
    job = find_job(args)
    with job.backend:
        state = job.cancel()
    print(f"{job.id}: {state.word or state.status.value}")
    return EXIT_OK


def list_jobs(args: argparse.Namespace) -> int:
    """The service's jobs, or with ``--local`` the jobs recorded here; newest first."""
    if args.local:
        from remotefs.jobs import JobRecords

        records = reversed(JobRecords().all())
        rows = [_record_row(r) for r in records if r.service == args.service]
    else:
        filters = {"status": [args.status]} if args.status else {}
        with make_backend(args) as backend:
            states = backend.list_jobs(limit=args.limit, **filters)
        rows = [_state_row(state, _created(state)) for state in states]
    rows = [row for row in rows if not args.status or row["status"] == args.status][: args.limit]
    if args.json:
        _print_json(rows)
    elif rows:
        cells = [
            [r["job_id"], _status_text(r), r["process_id"] or "", r["submitted"] or ""]
            for r in rows
        ]
        _table(["JOB ID", "STATUS", "PROCESS", "SUBMITTED"], cells)
    else:
        _note("no jobs")
    return EXIT_OK


ACTIONS: dict[str, Callable[[argparse.Namespace], int]] = {
    "processes": processes,
    "describe": describe,
    "submit": submit,
    "status": status,
    "wait": wait,
    "logs": logs,
    "results": results,
    "download": download,
    "cancel": cancel,
    "list": list_jobs,
}


# -- helpers -------------------------------------------------------------------------------------


def _finish(job: Job, args: argparse.Namespace) -> None:
    """Wait for the job (a progress line on a terminal); an error unless it succeeded."""
    from remotefs.jobs import JobError, JobStatus

    state = job.wait(timeout=args.timeout, cancel_on_timeout=args.cancel_on_timeout)
    if state.status is not JobStatus.SUCCESSFUL:
        detail = f": {state.message}" if state.message else ""
        raise JobError(f"job {job.id} was {state.word or state.status.value}{detail}")


def _read_inputs(args: argparse.Namespace) -> dict[str, Any]:
    """``--inputs-json`` overlaid with each ``--input``, whose values are JSON if they parse."""
    inputs: dict[str, Any] = {}
    if args.inputs_json:
        source = args.inputs_json
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"--inputs-json {source}: not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ValueError(f"--inputs-json {source}: expected a JSON object of inputs")
        inputs.update(data)
    for name, text in args.inputs:
        try:
            inputs[name] = json.loads(text)
        except ValueError:
            inputs[name] = text
    return inputs


def _process_summary(info: ProcessInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "title": info.title,
        "version": info.version,
        "description": info.description,
    }


def _inputs_of(info: ProcessInfo) -> list[dict[str, Any]]:
    """Each input's name, JSON type, whether it is required, and its title."""
    schema = info.schema or {}
    properties = schema.get("properties") or {}
    required = set(schema.get("required") or ())
    names = list(info.inputs) or list(properties)
    return [
        {
            "name": str(name),
            "type": _type_of(properties.get(name) or _schema(info.inputs.get(name))),
            "required": name in required,
            "title": _title(info.inputs.get(name)),
        }
        for name in names
    ]


def _schema(description: Any) -> Any:
    """The JSON Schema in an OGC description, or the (Onyxia-style) declaration itself."""
    if isinstance(description, Mapping) and isinstance(description.get("schema"), Mapping):
        return description["schema"]
    return description


def _type_of(schema: Any) -> str:
    """A schema's JSON type for people: ``string``, ``string|array``, or ``any``."""
    if not isinstance(schema, Mapping):
        return "any"
    kind = schema.get("type")
    if isinstance(kind, str):
        return kind
    if isinstance(kind, list):
        return "|".join(str(k) for k in kind)
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            return "|".join(dict.fromkeys(_type_of(option) for option in options))
    return "any"


def _title(description: Any) -> str:
    if not isinstance(description, Mapping):
        return ""
    for key in ("title", "description"):
        if isinstance(description.get(key), str):
            return str(description[key])
    return ""


def _state_row(state: JobState, submitted: str | None) -> dict[str, Any]:
    return {
        "job_id": state.job_id,
        "process_id": state.process_id,
        "status": state.status.value,
        "word": state.word,
        "progress": state.progress,
        "message": state.message,
        "submitted": submitted,
    }


def _record_row(record: JobRecord) -> dict[str, Any]:
    return {
        "job_id": record.job_id,
        "process_id": record.process_id,
        "status": record.status,
        "word": record.word,
        "progress": None,
        "message": record.message,
        "submitted": record.submitted,
    }


def _created(state: JobState) -> str | None:
    created = state.raw.get("created")
    return str(created) if created else None


def _status_text(row: Mapping[str, Any]) -> str:
    """The status, and the service's own word when it says something else."""
    word = row["word"]
    return f"{row['status']} ({word})" if word and word.lower() != row["status"] else row["status"]


def _print_results(found: Mapping[str, Any], *, as_json: bool) -> None:
    if as_json:
        _print_json(found)
        return
    for name, value in found.items():
        print(f"{name}: {_shown(value)}")


def _shown(value: Any) -> str:
    """A result on one line: text as it is, a reference as its URL, anything else as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return f"({format_size(len(value))} of data: use download)"
    if isinstance(value, Mapping) and isinstance(value.get("href"), str):
        return str(value["href"])
    return json.dumps(value, ensure_ascii=False)


def _print_copied(copied: list[CopiedFile], dest: str, *, as_json: bool) -> None:
    if as_json:
        _print_json([{"source": c.source, "target": c.target, "size": c.size} for c in copied])
        return
    for item in copied:
        print(item.target.removeprefix("file://"))
    total = format_size(sum(c.size for c in copied))
    _note(f"downloaded {len(copied)} files ({total}) to {dest}")


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, default=_bytes_as_text))


def _bytes_as_text(value: Any) -> str:
    """Raw result bytes in JSON output (``download`` keeps them exactly)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _table(headers: list[str], rows: list[list[str]]) -> None:
    """Left-aligned columns, two spaces apart, under upper-case headers."""
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(headers)]
    for line in (headers, *rows):
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        )


def _note(text: str) -> None:
    """A remark for people: on stderr when it is a terminal, else nothing."""
    if sys.stderr.isatty():
        print(text, file=sys.stderr)
