"""``remotefs demo``: the main job end to end on emulated services on loopback.

It starts the Agave emulator and the EDITO stack (Keycloak, STS, S3, process API) in this
process on free ports, then does what a scientist does: log in, make a folder, upload a table,
list it, read it with pandas straight from ``agave://``, download it and check the copy; copy
it from ``agave://`` to ``edito://`` (remote to remote), write a Parquet summary there with
self-renewing STS credentials; then stage the table for an EDITO process, run it, wait with
progress and download its outputs. Each step says what it does.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import math
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

Say = Callable[[str], None]


class _Steps:
    """Numbers and announces the demo's steps."""

    def __init__(self, say: Say) -> None:
        self.say = say
        self.number = 0

    def __call__(self, text: str) -> None:
        self.number += 1
        self.say(f"\n[{self.number}] {text}")


def _write_table(path: str, rows: int) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["station", "hour", "temperature_c", "salinity_psu"])
        for i in range(rows):
            temperature = round(12 + 4 * math.sin(i / 9), 3)
            writer.writerow([f"S{i % 7}", i % 24, temperature, round(35 + (i % 5) / 10, 2)])


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def command(args: argparse.Namespace) -> int:
    """``remotefs demo``: run the demo; exit code 0 when every step worked."""
    run_demo(rows=args.rows)
    return 0


def run_demo(rows: int = 1000, say: Say = print) -> None:
    """Run the demo, reporting each step through ``say``; raises if any step goes wrong."""
    from remotefs.testing.agave import AgaveEmulator
    from remotefs.testing.edito import EditoEmulator
    from remotefs.testing.server import ServerThread

    started = time.monotonic()
    step = _Steps(say)
    with tempfile.TemporaryDirectory(prefix="remotefs-demo-") as work:
        agave = AgaveEmulator(data_dir=os.path.join(work, "agave"), staging_delay=0.2)
        edito = EditoEmulator(job_step_seconds=0.3)
        with ServerThread(agave.make_app()) as server, edito:
            say(f"remotefs demo: Agave v2 emulated at {server.url}, EDITO at {edito.s3_url}")
            agave_options: dict[str, Any] = {
                "base_url": server.url,
                "username": "demo",
                "password": "demo",
                "credential_store": os.path.join(work, "credentials.json"),
            }
            remote = _agave_part(step, say, work, rows, agave_options)
            edito_options = {
                "token_url": edito.token_url,
                "endpoint_url": edito.s3_url,
                "username": "demo",
                "password": "demo",
            }
            _edito_part(step, say, rows, remote, agave_options, edito_options)
            _jobs_part(step, say, work, rows, edito.processes_url, edito_options)
    say(
        f"\nDone in {time.monotonic() - started:.1f} s: login, mkdir, upload, list, pandas, "
        "download and compare on agave://; remote-to-remote copy, Parquet and STS on edito://; "
        "an EDITO process run on a staged input, its outputs downloaded."
    )


def _agave_part(step: _Steps, say: Say, work: str, rows: int, options: dict[str, Any]) -> str:
    """The Agave half; returns the uploaded table's path."""
    import pandas as pd

    from remotefs.agave import AgaveFileSystem

    step("agave:// log in: create an OAuth client, get a token, read the profile")
    fs = AgaveFileSystem(skip_instance_cache=True, **options)
    token = fs.tokens.current()
    profile = fs.account.whoami(token.access_token)
    say(
        f"    logged in as {profile['username']} <{profile['email']}>, "
        f"token valid for {token.remaining() / 3600:.1f} h"
    )

    folder = "cic.storage/demo/remotefs-demo"
    step(f"Make a folder: agave://{folder}")
    fs.makedirs(folder, exist_ok=True)

    local = os.path.join(work, "measurements.csv")
    _write_table(local, rows)
    remote = f"{folder}/measurements.csv"
    step(f"Upload a {os.path.getsize(local):,}-byte table to agave://{remote}")
    say("    (the service queues uploads; remotefs waits until staging completes)")
    fs.put_file(local, remote)

    step(f"List agave://{folder}")
    for entry in fs.ls(folder):
        say(f"    {entry['type']:<9} {entry['size']:>10,}  {entry['name']}")

    step("Read it with pandas, straight from agave://")
    frame = pd.read_csv(f"agave://{remote}", storage_options=options)
    if len(frame) != rows:
        raise RuntimeError(f"pandas read {len(frame)} rows, expected {rows}")
    means = frame.groupby("station")["temperature_c"].mean().round(2)
    say(f"    {len(frame)} rows; mean temperature by station: {means.to_dict()}")

    back = os.path.join(work, "downloaded.csv")
    step(f"Download it again to {back} and compare")
    fs.get_file(remote, back)
    if _sha256(back) != _sha256(local):
        raise RuntimeError("the downloaded copy differs from the uploaded file")
    say(f"    identical: sha256 {_sha256(back)[:16]}...")
    return remote


def _edito_part(
    step: _Steps,
    say: Say,
    rows: int,
    agave_path: str,
    agave_options: dict[str, Any],
    options: dict[str, Any],
) -> None:
    """The EDITO half: STS credentials, a remote-to-remote copy, Parquet on edito://."""
    import fsspec
    import pandas as pd

    from remotefs.edito.filesystem import EditoFileSystem

    step("edito:// log in to Keycloak (client onyxia-minio) and get S3 keys from MinIO's STS")
    fs = EditoFileSystem(skip_instance_cache=True, **options)
    if fs.credentials is None:
        raise RuntimeError("the EDITO filesystem was not set up for a Keycloak login")
    creds = fs.credentials.valid()
    say(
        f"    S3 key {creds.access_key_id[:4]}... valid for {creds.remaining() / 3600:.1f} h "
        "(renewed automatically before it expires)"
    )

    target = "oidc-demo/remotefs-demo/measurements.csv"
    step(f"Copy agave://{agave_path} to edito://{target} (remote to remote, streamed)")
    with fsspec.open(f"agave://{agave_path}", "rb", **agave_options) as src:
        with fs.open(target, "wb") as dst:
            for block in iter(lambda: src.read(1 << 20), b""):
                dst.write(block)
    say(f"    {fs.info(target)['size']:,} bytes in edito://{target}")

    summary = "oidc-demo/remotefs-demo/summary.parquet"
    step(f"Summarise with pandas and write Parquet to edito://{summary}")
    frame = pd.read_csv(f"edito://{target}", storage_options=options)
    table = frame.groupby("station").agg(mean_t=("temperature_c", "mean"), n=("hour", "size"))
    table.to_parquet(f"edito://{summary}", storage_options=options)
    back = pd.read_parquet(f"edito://{summary}", storage_options=options)
    if int(back["n"].sum()) != rows:
        raise RuntimeError("the Parquet summary read back does not count every row")
    say(f"    read back {len(back)} stations covering {int(back['n'].sum())} rows")

    step("List edito://oidc-demo/remotefs-demo")
    for entry in fs.ls("oidc-demo/remotefs-demo", detail=True):
        say(f"    {entry['type']:<9} {entry['size']:>10,}  {entry['name']}")


def _jobs_part(
    step: _Steps, say: Say, work: str, rows: int, processes_url: str, options: dict[str, Any]
) -> None:
    """The jobs half: stage an input to edito://, run a process, wait, download its outputs."""
    import json

    from remotefs.jobs import EditoBackend, JobRecords

    process = "process-playground-csv-summary-0.1.0"
    local = os.path.join(work, "measurements.csv")
    staged = "edito://oidc-demo/remotefs-demo/inputs/measurements.csv"
    backend = EditoBackend(
        processes_url,
        token_url=options["token_url"],
        endpoint_url=options["endpoint_url"],
        username=options["username"],
        password=options["password"],
        records=JobRecords(os.path.join(work, "jobs")),
    )
    with backend:
        step(f"Run the EDITO process {process}: stage the table to {staged}, submit")
        job = backend.submit(process, {"input": staged}, stage={local: staged})
        say(f"    job {job.id} accepted; input staged ({job.staged[0].size:,} bytes)")

        step("Wait for it (polling with backoff; tokens renew themselves)")
        seen: list[str] = []

        def show(state: Any) -> None:
            line = f"    {state.word or state.status.value}"
            if state.progress is not None:
                line += f" {state.progress:.0f}%"
            if line not in seen:
                seen.append(line)
                say(line + (f"  {state.message}" if state.message else ""))

        job.wait(timeout=120, progress=show)

        target = os.path.join(work, "outputs")
        step(f"Download its outputs to {target}")
        for copied in job.download(target):
            say(f"    {copied.size:>8,} bytes  {copied.target.rsplit('/', 1)[-1]}")
    summary_path = next(
        os.path.join(folder, name)
        for folder, _, names in os.walk(target)
        for name in names
        if name == "summary.json"
    )
    with open(summary_path) as fh:
        summary = json.load(fh)
    if summary.get("rows") != rows:
        raise RuntimeError(f"the process summarised {summary.get('rows')} rows, expected {rows}")
    say(f"    the process read {summary['rows']} rows, columns {', '.join(summary['columns'])}")
