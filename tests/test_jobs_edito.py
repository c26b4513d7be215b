"""The EDITO job backend against the EDITO emulator: Keycloak, STS, S3 and the process API.

Assertions look at the server's side too: the body the process API received, the jobs it ran,
the objects in the bucket, the requests it saw.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from remotefs.jobs import (
    EditoBackend,
    InputError,
    JobFailedError,
    JobRecords,
    JobState,
    JobStatus,
    JobTimeoutError,
    PollPolicy,
)
from remotefs.testing.edito import EditoEmulator
from remotefs.testing.edito.catalog import CSV_SUMMARY_ID, HELLO_ID

FAST = PollPolicy(initial=0.02, factor=1.5, maximum=0.1)
TABLE = b"station,temperature\nS1,12.5\nS2,13.5\nS1,14.0\n"


@pytest.fixture(scope="module")
def emu() -> Iterator[EditoEmulator]:
    """One emulator for the module (users demo and carol), short job steps."""
    with EditoEmulator(users={"demo": "demo", "carol": "carol"}, job_step_seconds=0.05) as e:
        yield e


def make_backend(emu: EditoEmulator, **kwargs: Any) -> EditoBackend:
    """A backend logged in as demo, with its own filesystem and fast polling."""
    options: dict[str, Any] = {
        "token_url": emu.token_url,
        "endpoint_url": emu.s3_url,
        "username": "demo",
        "password": "demo",
        "storage_options": {"skip_instance_cache": True},
        "poll": FAST,
    }
    options.update(kwargs)
    return EditoBackend(emu.processes_url, **options)


@pytest.fixture
def backend(emu: EditoEmulator) -> Iterator[EditoBackend]:
    with make_backend(emu) as made:
        yield made


def executions(emu: EditoEmulator) -> list[tuple[str, str, str]]:
    return [r for r in emu.requests if r[0] == "processes" and r[2].endswith("/execution")]


def test_listing_is_public_and_describe_gives_the_schema(
    emu: EditoEmulator, backend: EditoBackend
) -> None:
    anonymous = EditoBackend(emu.processes_url, token_url=emu.token_url, endpoint_url=emu.s3_url)
    assert [p.id for p in anonymous.processes()] == [HELLO_ID, CSV_SUMMARY_ID]
    anonymous.close()
    backend.page_size = 1
    before = len(emu.requests)
    listed = backend.processes()
    assert [p.title for p in listed] == ["ILIAD hello world", "CSV summary"]
    pages = [r[2] for r in emu.requests[before:]]
    assert pages == [f"/processes/processes?limit=1&page={n}" for n in (1, 2, 3)]
    assert [p.id for p in backend.processes(limit=1)] == [HELLO_ID]
    info = backend.describe(HELLO_ID)
    assert info.version == "0.0.21" and info.schema is not None
    assert info.schema["required"] == ["name"] and set(info.inputs) == {"name"}


def test_hello_world_end_to_end_with_edito_body(
    emu: EditoEmulator, backend: EditoBackend, tmp_path: Path
) -> None:
    seen: list[JobState] = []
    job = backend.submit(HELLO_ID, {"name": "ILIAD"}, friendly_name="greeting", project="demo")
    final = job.wait(progress=seen.append)
    assert final.status is JobStatus.SUCCESSFUL and final.word == "successful"
    assert seen[0].status in (JobStatus.ACCEPTED, JobStatus.RUNNING)
    assert [s.progress for s in seen] == sorted(s.progress or 0 for s in seen)
    assert job.results() == {"greeting": "Hello ILIAD!"}
    copied = job.download(str(tmp_path / "out"))
    assert json.loads((tmp_path / "out" / "greeting.json").read_text()) == "Hello ILIAD!"
    assert [c.target.rsplit("/", 1)[-1] for c in copied] == ["greeting.json"]

    ran = emu.processes.jobs[job.id]
    assert ran.owner == "demo" and ran.inputs == {"name": "ILIAD"}
    assert ran.body["metadata"] == {"project": "demo"}
    sent = ran.body["processInputs"]
    assert sorted(sent) == ["inputs", "onyxia", "resources", "s3"]
    assert sent["onyxia"] == {"friendlyName": "greeting", "share": False}
    assert sent["resources"] == {
        "limits": {"cpu": "7200m", "memory": "28Gi"},
        "requests": {"cpu": "1000m", "memory": "16Gi"},
    }
    assert ran.s3 is not None and ran.s3["endpoint"] == emu.s3_url.removeprefix("http://")
    assert ran.s3["enabled"] is True and ran.s3["defaultRegion"] == "waw3-1"
    issued = emu.credentials.get(ran.s3["accessKeyId"])
    assert issued is not None and issued.user == "demo"
    assert ran.s3["sessionToken"] == issued.session_token


def test_stage_run_and_download_through_edito(
    emu: EditoEmulator, backend: EditoBackend, tmp_path: Path
) -> None:
    local = tmp_path / "table.csv"
    local.write_bytes(TABLE)
    target = "edito://oidc-demo/jobs-test/table.csv"
    job = backend.submit(CSV_SUMMARY_ID, {"input": target}, stage={str(local): target})
    assert [(c.size, c.skipped) for c in job.staged] == [(len(TABLE), False)]
    assert emu.processes.jobs[job.id].inputs == {"input": "s3://oidc-demo/jobs-test/table.csv"}
    job.wait()
    copied = job.download(str(tmp_path / "out"))
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["result.csv", "rows.json", "summary.json"]
    assert (out / "result.csv").read_text() == (
        "column,count,min,mean,max\ntemperature,3,12.5,13.333333,14.0\n"
    )
    assert json.loads((out / "summary.json").read_text())["rows"] == 3
    admin = emu.s3_client()
    stored = admin.get_object(Bucket="oidc-demo", Key=f"outputs/{job.id}/result.csv")
    assert stored["Body"].read() == (out / "result.csv").read_bytes()
    assert {c.size for c in copied if c.target.endswith("result.csv")} == {
        (out / "result.csv").stat().st_size
    }

    puts = len([r for r in emu.requests if r[1] == "PUT" and "jobs-test/table.csv" in r[2]])
    again = backend.submit(CSV_SUMMARY_ID, {"input": target}, stage={str(local): target})
    assert [c.skipped for c in again.staged] == [True]
    assert len([r for r in emu.requests if r[1] == "PUT" and "jobs-test/table.csv" in r[2]]) == puts
    again.cancel()


def test_inputs_are_checked_before_anything_is_sent(
    emu: EditoEmulator, backend: EditoBackend
) -> None:
    before = len(executions(emu))
    with pytest.raises(InputError) as caught:
        backend.submit(HELLO_ID, {"name": 7, "colour": "red"})
    assert caught.value.problems == {
        "colour": "not an input of this process",
        "name": "7 is not of type 'string'",
    }
    with pytest.raises(InputError, match="name: required"):
        backend.submit(HELLO_ID, {}, stage={"/nonexistent/file": "edito://oidc-demo/x"})
    assert len(executions(emu)) == before


def test_a_failing_job_surfaces_the_service_message(
    emu: EditoEmulator, backend: EditoBackend
) -> None:
    job = backend.submit(CSV_SUMMARY_ID, {"input": "edito://oidc-demo/no/such.csv"})
    with pytest.raises(JobFailedError) as caught:
        job.wait()
    assert "cannot read s3://oidc-demo/no/such.csv: NoSuchKey" in str(caught.value)
    assert caught.value.job_id == job.id and job.status is JobStatus.FAILED
    with pytest.raises(JobFailedError, match="NoSuchKey"):
        job.results()


def test_cancel_and_timeout(emu: EditoEmulator, backend: EditoBackend) -> None:
    emu.processes.step_seconds = 0.3
    try:
        job = backend.submit(HELLO_ID, {"name": "slow"})
        state = job.cancel()
        assert (
            state.status is JobStatus.DISMISSED and emu.processes.jobs[job.id].status == "dismissed"
        )
        assert job.wait().status is JobStatus.DISMISSED

        job = backend.submit(HELLO_ID, {"name": "slower"})
        started = time.monotonic()
        with pytest.raises(JobTimeoutError, match="within 0.2 s; it was cancelled"):
            job.wait(timeout=0.2, cancel_on_timeout=True)
        assert time.monotonic() - started < 1.5
        assert emu.processes.jobs[job.id].status == "dismissed"

        job = backend.submit(HELLO_ID, {"name": "kept"})
        with pytest.raises(JobTimeoutError):
            job.wait(timeout=0.1)
        assert emu.processes.jobs[job.id].status in ("accepted", "running")
        job.cancel()
    finally:
        emu.processes.step_seconds = 0.05


def test_a_token_rejected_during_wait_is_renewed(emu: EditoEmulator, backend: EditoBackend) -> None:
    emu.processes.step_seconds = 0.15
    try:
        job = backend.submit(HELLO_ID, {"name": "renewed"})
        logins: list[int] = []

        def expire_once(state: JobState) -> None:
            if state.status is JobStatus.RUNNING and not logins:
                logins.append(len([r for r in emu.requests if r[0] == "auth"]))
                emu.expire_tokens()

        assert job.wait(progress=expire_once).status is JobStatus.SUCCESSFUL
    finally:
        emu.processes.step_seconds = 0.05
    assert logins, "the job never showed as running"
    assert len([r for r in emu.requests if r[0] == "auth"]) == logins[0] + 1


def test_a_token_expiring_during_a_long_wait_is_renewed() -> None:
    with EditoEmulator(users={"demo": "demo"}, token_lifetime=1, job_step_seconds=0.4) as emu:
        backend = make_backend(emu, poll=PollPolicy(initial=0.2, maximum=0.2))
        job = backend.submit(HELLO_ID, {"name": "patient"})
        first = backend.tokens.current().access_token
        started = time.monotonic()
        assert job.wait().status is JobStatus.SUCCESSFUL
        assert time.monotonic() - started > 1.5
        assert backend.tokens.current().access_token != first
        backend.close()
        logins = [r for r in emu.requests if r[0] == "auth"]
        polls = [r for r in emu.requests if r[2] == f"/processes/jobs/{job.id}"]
    assert len(logins) >= 3 and len(polls) >= 6


def test_jobs_listing_and_reattaching(emu: EditoEmulator, backend: EditoBackend) -> None:
    job = backend.submit(HELLO_ID, {"name": "listed"})
    job.wait()
    backend.page_size = 2
    listed = backend.jobs(process_id=HELLO_ID, status=[JobStatus.SUCCESSFUL])
    assert job.id in [j.id for j in listed]
    assert all(j.status is JobStatus.SUCCESSFUL and j.process_id == HELLO_ID for j in listed)
    assert len(backend.jobs(limit=1)) == 1
    again = backend.job(job.id)
    assert again.submitted == job.submitted and again.status is JobStatus.SUCCESSFUL
    with pytest.raises(FileNotFoundError, match="no job"):
        backend.job("no-such-job")
    other = make_backend(emu, username="carol", password="carol")
    with pytest.raises(FileNotFoundError):
        other.job(job.id)
    other.close()


def test_a_second_process_resumes_the_wait_from_the_record(
    emu: EditoEmulator, backend: EditoBackend, tmp_path: Path
) -> None:
    emu.processes.step_seconds = 0.2
    try:
        job = backend.submit(HELLO_ID, {"name": "resumed"})
        record = JobRecords().path("edito", job.id)
        assert json.loads(record.read_text())["status"] == "accepted"
        assert "demo" not in record.read_text().replace(emu.token_url, "")
        script = (
            "import json, sys\n"
            "from remotefs.jobs import PollPolicy, load\n"
            "job = load(sys.argv[1], username='demo', password='demo',\n"
            "           poll=PollPolicy(initial=0.05, maximum=0.2))\n"
            "state = job.wait()\n"
            "copied = job.download(sys.argv[2])\n"
            "print(json.dumps([state.status.value, job.process_id, len(copied)]))\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", script, job.id, str(tmp_path / "out")],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ},
        )
    finally:
        emu.processes.step_seconds = 0.05
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ["successful", HELLO_ID, 1]
    assert json.loads((tmp_path / "out" / "greeting.json").read_text()) == "Hello resumed!"
    saved = json.loads(record.read_text())
    assert saved["status"] == "successful" and saved["word"] == "successful"
    assert saved["urls"] == {
        "processes_url": emu.processes_url,
        "token_url": emu.token_url,
        "endpoint_url": emu.s3_url,
        "region": "waw3-1",
    }
