"""remotefs jobs: processes, submit with staging, status, wait, results, download, cancel, list.

Against the session's EDITO emulator after ``remotefs login edito`` (jobs run in steps of
0.05 s, polled every 0.05 s with ``--poll``), and a pygeoapi server for the ``ogc`` service.
Assertions look at the printed output, the exit code, and the server's side: the jobs the
process API ran, the objects in the bucket, the requests it saw.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run_cli
from test_jobs_ogc import server  # noqa: F401  (the pygeoapi fixture)

from remotefs.cli import (
    EXIT_ERROR,
    EXIT_NOT_FOUND,
    EXIT_PERMISSION,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    exit_code_for,
    main,
)
from remotefs.cli.parser import JOB_STATUSES
from remotefs.edito.filesystem import EditoFileSystem
from remotefs.jobs import JobRecords, JobStatus, JobTimeoutError, UnsafeOutputError
from remotefs.testing.edito import EditoEmulator
from remotefs.testing.edito.catalog import CSV_SUMMARY_ID, HELLO_ID

POLL = ["--poll", "0.05"]
TABLE = b"station,temperature\nS1,12.5\nS2,13.5\nS1,14.0\n"
STATS = b"column,count,min,mean,max\ntemperature,3,12.5,13.333333,14.0\n"


@pytest.fixture(autouse=True)
def fresh_instances() -> Iterator[None]:
    """Filesystems the backends make must not come from another test's cache."""
    EditoFileSystem.clear_instance_cache()
    yield
    EditoFileSystem.clear_instance_cache()


@pytest.fixture
def emu(edito_emulator: EditoEmulator) -> Iterator[EditoEmulator]:
    """The session's emulator with short job steps (restored afterwards)."""
    before = edito_emulator.processes.step_seconds
    edito_emulator.processes.step_seconds = 0.05
    yield edito_emulator
    edito_emulator.processes.step_seconds = before


@pytest.fixture
def login(emu: EditoEmulator, edito_login: EditoEmulator, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """Logged in to the emulator as demo; the process API named by $EDITO_PROCESSES_URL."""
    monkeypatch.setenv("EDITO_PROCESSES_URL", emu.processes_url)
    return emu


def jobs(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``remotefs jobs ARGV`` in this process: exit code, stdout, stderr."""
    code = main(["jobs", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def executions(emu: EditoEmulator) -> int:
    return len([r for r in emu.requests if r[0] == "processes" and r[2].endswith("/execution")])


def test_processes_and_describe(login: EditoEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = jobs(capsys, "processes", "edito")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "TITLE", "VERSION"]
    assert lines[1].split() == [HELLO_ID, "ILIAD", "hello", "world", "0.0.21"]
    assert lines[2].split() == [CSV_SUMMARY_ID, "CSV", "summary", "0.1.0"]
    code, out, _ = jobs(capsys, "processes", "edito", "--json")
    listed = json.loads(out)
    assert [(p["id"], p["version"]) for p in listed] == [
        (HELLO_ID, "0.0.21"),
        (CSV_SUMMARY_ID, "0.1.0"),
    ]

    code, out, _ = jobs(capsys, "describe", "edito", HELLO_ID)
    assert code == 0
    assert f"id: {HELLO_ID}" in out and "version: 0.0.21" in out
    assert "name   string  required  Name" in out
    assert "greeting  string  Greeting" in out
    code, out, _ = jobs(capsys, "describe", "edito", CSV_SUMMARY_ID, "--json")
    info = json.loads(out)
    assert info["inputs"] == [
        {"name": "input", "type": "string", "required": True, "title": "Input table"}
    ]
    assert [(o["name"], o["type"]) for o in info["outputs"]] == [
        ("result", "string"),
        ("summary", "object"),
        ("rows", "integer"),
    ]
    assert info["schema"]["required"] == ["input"]
    code, _, err = jobs(capsys, "describe", "edito", "no-such-process")
    assert code == EXIT_NOT_FOUND and "no process no-such-process" in err


def test_submit_hello_world_and_wait_prints_the_greeting(
    login: EditoEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = jobs(
        capsys, "submit", "edito", HELLO_ID, "--input", "name=ILIAD", "--wait", *POLL
    )
    assert code == 0, err
    job_id, greeting = out.splitlines()
    assert greeting == "greeting: Hello ILIAD!"
    assert err == ""  # not a terminal: no progress line
    ran = login.processes.jobs[job_id]
    assert ran.owner == "demo" and ran.inputs == {"name": "ILIAD"} and ran.status == "successful"
    assert ran.s3 is not None and ran.s3["accessKeyId"]
    assert JobRecords().load(job_id, "edito").status == "successful"


def test_submit_stages_runs_and_downloads(
    login: EditoEmulator, capsys: pytest.CaptureFixture[str], edito_prefix: str, tmp_path: Path
) -> None:
    local = tmp_path / "local.csv"
    local.write_bytes(TABLE)
    url = f"edito://{edito_prefix}/in/table.csv"
    dest = tmp_path / "out"
    code, out, err = jobs(
        capsys, "submit", "edito", CSV_SUMMARY_ID, "--stage", f"{local}={url}",
        "--input", f"input={url}", "--wait", "--download", str(dest), *POLL,
    )  # fmt: skip
    assert code == 0, err
    lines = out.splitlines()
    job_id = lines[0]
    bucket, _, prefix = edito_prefix.partition("/")
    admin = login.s3_client()
    staged = admin.get_object(Bucket=bucket, Key=f"{prefix}/in/table.csv")["Body"].read()
    assert staged == TABLE
    assert login.processes.jobs[job_id].inputs == {"input": f"s3://{edito_prefix}/in/table.csv"}
    assert f"result: s3://{bucket}/outputs/{job_id}/result.csv" in lines
    assert "rows: 3" in lines
    assert sorted(p.name for p in dest.iterdir()) == ["result.csv", "rows.json", "summary.json"]
    assert sorted(lines[-3:]) == sorted(str(p) for p in dest.iterdir())
    assert (dest / "result.csv").read_bytes() == STATS
    stored = admin.get_object(Bucket=bucket, Key=f"outputs/{job_id}/summary.json")["Body"].read()
    assert (dest / "summary.json").read_bytes() == stored
    assert json.loads((dest / "rows.json").read_text()) == 3


def test_a_submitted_job_through_every_command(
    login: EditoEmulator, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = jobs(capsys, "submit", "edito", HELLO_ID, "--input", "name=Ada")
    job_id = out.strip()
    assert code == 0 and login.processes.jobs[job_id].inputs == {"name": "Ada"}
    code, out, _ = jobs(capsys, "status", "edito", job_id)
    assert code == 0
    assert f"job: {job_id}" in out and f"process: {HELLO_ID}" in out and "status: " in out

    code, out, err = jobs(capsys, "wait", "edito", job_id, *POLL)
    assert (code, out, err) == (0, "", "")
    code, out, _ = jobs(capsys, "status", "edito", job_id, "--json")
    shown = json.loads(out)
    assert shown["status"] == "successful" and shown["progress"] == 100
    assert shown["message"] == "Job finished" and shown["submitted"]
    code, out, _ = jobs(capsys, "results", "edito", job_id, "--json")
    assert json.loads(out) == {"greeting": "Hello Ada!"}
    code, out, _ = jobs(capsys, "download", "edito", job_id, str(tmp_path / "d"))
    assert code == 0 and out.splitlines() == [str(tmp_path / "d" / "greeting.json")]
    assert json.loads((tmp_path / "d" / "greeting.json").read_text()) == "Hello Ada!"
    code, _, err = jobs(capsys, "logs", "edito", job_id)
    assert code == EXIT_USAGE
    assert err == "remotefs: error: the edito service has no logs endpoint\n"

    code, out, _ = jobs(capsys, "list", "edito", "--limit", "5")
    row = next(line for line in out.splitlines() if line.startswith(job_id))
    assert row.split()[1:3] == ["successful", HELLO_ID]
    code, out, _ = jobs(capsys, "list", "edito", "--status", "failed", "--json")
    assert job_id not in [r["job_id"] for r in json.loads(out)]
    assert all(r["status"] == "failed" for r in json.loads(out))
    code, out, _ = jobs(capsys, "list", "edito", "--local", "--json")
    assert [(r["job_id"], r["status"]) for r in json.loads(out)] == [(job_id, "successful")]

    # Without a local record the service is asked; the record's URLs need no setting.
    JobRecords().remove("edito", job_id)
    code, out, _ = jobs(capsys, "results", "edito", job_id)
    assert (code, out) == (0, "greeting: Hello Ada!\n")

    login.processes.step_seconds = 1.0
    code, out, _ = jobs(capsys, "submit", "edito", HELLO_ID, "--input", "name=Bob")
    other = out.strip()
    code, out, _ = jobs(capsys, "cancel", "edito", other)
    assert (code, out) == (0, f"{other}: dismissed\n")
    assert login.processes.jobs[other].status == "dismissed"
    code, _, err = jobs(capsys, "wait", "edito", other, *POLL)
    assert code == EXIT_ERROR and f"job {other} was dismissed: Job dismissed" in err
    code, _, err = jobs(capsys, "download", "edito", other, str(tmp_path / "none"))
    assert code == EXIT_ERROR and "no outputs to download" in err
    assert not (tmp_path / "none").exists()


def test_a_recorded_job_is_found_at_its_records_urls(
    login: EditoEmulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = jobs(capsys, "submit", "edito", HELLO_ID, "--input", "name=Rec", "--wait", *POLL)
    job_id = out.splitlines()[0]
    monkeypatch.setenv("EDITO_PROCESSES_URL", "http://127.0.0.1:9/nowhere")
    code, out, err = jobs(capsys, "status", "edito", job_id, "--json")
    assert code == 0, err
    assert json.loads(out)["status"] == "successful"


def test_a_failing_job_exits_1_with_the_service_message(
    login: EditoEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = "edito://oidc-demo/no/such.csv"
    code, out, err = jobs(
        capsys, "submit", "edito", CSV_SUMMARY_ID, "--input", f"input={missing}", "--wait", *POLL
    )
    assert code == EXIT_ERROR
    job_id = out.strip()
    assert login.processes.jobs[job_id].status == "failed"
    assert err.startswith(f"remotefs: error: job {job_id} of {CSV_SUMMARY_ID} failed: ")
    assert "cannot read s3://oidc-demo/no/such.csv: NoSuchKey" in err
    assert len(err.splitlines()) == 1
    for action in ("wait", "results"):
        code, _, err = jobs(capsys, action, "edito", job_id, *(POLL if action == "wait" else []))
        assert code == EXIT_ERROR and "NoSuchKey" in err


def test_bad_inputs_exit_2_naming_every_field(
    login: EditoEmulator, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    before = executions(login)
    code, out, err = jobs(
        capsys, "submit", "edito", HELLO_ID, "--input", "name=7", "--input", "colour=red"
    )
    assert (code, out) == (EXIT_USAGE, "")
    assert err == (
        f"remotefs: error: invalid inputs for process '{HELLO_ID}': "
        "colour: not an input of this process; name: 7 is not of type 'string'\n"
    )
    code, _, err = jobs(capsys, "submit", "edito", HELLO_ID)
    assert code == EXIT_USAGE and "name: required, but missing" in err
    given = tmp_path / "inputs.json"
    given.write_text('["not", "an", "object"]')
    code, _, err = jobs(capsys, "submit", "edito", HELLO_ID, "--inputs-json", str(given))
    assert code == EXIT_USAGE and "expected a JSON object of inputs" in err
    with pytest.raises(SystemExit) as caught:
        main(["jobs", "submit", "edito", HELLO_ID, "--input", "name"])
    assert caught.value.code == EXIT_USAGE
    assert "expected NAME=VALUE" in capsys.readouterr().err
    assert executions(login) == before


def test_wait_timeout_exits_7_and_can_cancel(
    login: EditoEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    login.processes.step_seconds = 1.0
    code, out, _ = jobs(capsys, "submit", "edito", HELLO_ID, "--input", "name=slow")
    job_id = out.strip()
    code, out, err = jobs(capsys, "wait", "edito", job_id, "--timeout", "0.5", *POLL)
    assert code == EXIT_TIMEOUT
    assert err == f"remotefs: error: the job did not finish within 0.5 s [{job_id}]\n"
    assert login.processes.jobs[job_id].status in ("accepted", "running")
    code, _, err = jobs(
        capsys, "wait", "edito", job_id, "--timeout", "0.5", "--cancel-on-timeout", *POLL
    )
    assert code == EXIT_TIMEOUT and "within 0.5 s; it was cancelled" in err
    assert login.processes.jobs[job_id].status == "dismissed"
    assert JobRecords().load(job_id, "edito").status == "dismissed"


def test_unknown_job_exits_3(login: EditoEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    for action in ("status", "wait", "results", "cancel"):
        code, _, err = jobs(capsys, action, "edito", "no-such-job")
        assert code == EXIT_NOT_FOUND, action
        assert err.startswith("remotefs: error: no job no-such-job")


def test_not_logged_in_exits_4(
    emu: EditoEmulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDITO_TOKEN_URL", emu.token_url)
    monkeypatch.setenv("EDITO_S3_ENDPOINT", emu.s3_url)
    monkeypatch.setenv("EDITO_PROCESSES_URL", emu.processes_url)
    before = executions(emu)
    code, out, _ = jobs(capsys, "processes", "edito")  # the list is public
    assert code == 0 and HELLO_ID in out
    for argv in (["list", "edito"], ["submit", "edito", HELLO_ID, "--input", "name=x"]):
        code, _, err = jobs(capsys, *argv)
        assert code == EXIT_PERMISSION
        assert err == "remotefs: error: not logged in: run `remotefs login edito`\n"
    assert executions(emu) == before


def test_settings_of_another_service_are_refused(
    login: EditoEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = jobs(capsys, "list", "edito", "--url", "http://x")
    assert code == EXIT_USAGE and "--url does not apply to edito" in err
    code, _, err = jobs(capsys, "processes", "ogc")
    assert code == EXIT_USAGE and "the ogc service needs --url URL" in err
    code, _, err = jobs(capsys, "processes", "ogc", "--url", "http://x", "--profile", "p")
    assert code == EXIT_USAGE and "--profile does not apply to ogc" in err


def test_login_keeps_the_process_url_and_subprocess_runs(
    emu: EditoEmulator, tmp_path: Path
) -> None:
    login = run_cli(
        "login", "edito", "--token-url", emu.token_url, "--endpoint-url", emu.s3_url,
        "--processes-url", emu.processes_url, "--username", "demo", "--password-stdin",
        stdin="demo\n",
    )  # fmt: skip
    assert login.returncode == 0, login.stderr
    done = run_cli(
        "jobs", "submit", "edito", HELLO_ID, "--inputs-json", "-", "--input", 'name="007"',
        "--download", str(tmp_path), *POLL,
        stdin='{"name": "ignored"}',
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    job_id, greeting, path = done.stdout.splitlines()
    assert (greeting, done.stderr) == ("greeting: Hello 007!", "")
    assert path == str(tmp_path / "greeting.json")
    assert emu.processes.jobs[job_id].inputs == {"name": "007"}
    listed = run_cli("jobs", "list", "edito", "--local")
    assert listed.returncode == 0 and job_id in listed.stdout


def test_ogc_service_on_pygeoapi(
    server: str,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    code, out, _ = jobs(capsys, "processes", "ogc", "--url", server, "--json")
    assert {"hello-world", "sleeper", "escape"} <= {p["id"] for p in json.loads(out)}
    argv = ["submit", "ogc", "--url", server, "hello-world", "--input", "name=OGC", "--wait"]
    code, out, err = jobs(capsys, *argv, *POLL)
    assert code == 0, err
    job_id, echo = out.splitlines()
    assert json.loads(echo.removeprefix("echo: ")) == {"id": "echo", "value": "Hello OGC!"}
    code, out, _ = jobs(capsys, "status", "ogc", job_id, "--json")  # --url from the record
    assert json.loads(out)["status"] == "successful"
    code, out, err = jobs(capsys, "submit", "ogc", "--url", server, "escape", "--wait", *POLL)
    escaped = out.splitlines()[0]
    code, _, err = jobs(capsys, "download", "ogc", escaped, str(tmp_path / "dest"))
    assert code == EXIT_ERROR and "refusing the output name '../../escaped.json'" in err
    assert not (tmp_path / "dest").exists()


def test_exit_codes_and_help() -> None:
    assert exit_code_for(JobTimeoutError("slow", path="j")) == EXIT_TIMEOUT == 7
    assert exit_code_for(UnsafeOutputError("../x", path="j")) == EXIT_ERROR
    assert list(JOB_STATUSES) == [s.value for s in JobStatus if s is not JobStatus.UNKNOWN]
    code = (
        "import sys\n"
        "from remotefs.cli import main\n"
        "for argv in (['--help'], ['jobs', '--help'], ['jobs', 'submit', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print([m for m in ('remotefs.jobs', 'fsspec', 'aiohttp') if m in sys.modules])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.splitlines()[-1] == "[]"
    assert "\n  7  a job did not finish in time\n" in result.stdout
    for action in ("processes", "describe", "submit", "status", "wait", "logs", "results",
                   "download", "cancel", "list"):  # fmt: skip
        assert f"    {action}" in result.stdout
    assert "--inputs-json FILE" in result.stdout and "--cancel-on-timeout" in result.stdout
