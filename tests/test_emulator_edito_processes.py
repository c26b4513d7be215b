"""The EDITO emulator's process API, over real loopback sockets.

The first test runs the seed notebook's code cells unchanged, one after the other (only the
endpoint, user and password variables of its configuration cell are pointed at the emulator,
and its ``!pip3 install requests`` line, an IPython command, is left out);
the others pin docs/jobs.md's emulator section with plain requests and assert on the server's
side (its job table, the objects in the bucket).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from edito_seed import SEED_CELLS, run_seed

from remotefs.testing.edito import EditoEmulator
from remotefs.testing.edito.catalog import CSV_SUMMARY_ID, HELLO_ID

USERS = {"demo": "demo", "other": "other-pw"}
STEP = 0.05


@pytest.fixture(scope="module")
def emu() -> Iterator[EditoEmulator]:
    """One emulator for the module, with short job steps."""
    with EditoEmulator(users=USERS, job_step_seconds=STEP) as emulator:
        yield emulator


def bearer(emu: EditoEmulator, user: str = "demo", client_id: str = "onyxia") -> dict[str, str]:
    """Authorization header with a fresh token of ``client_id``."""
    form = {"client_id": client_id, "grant_type": "password", "username": user}
    rsp = requests.post(emu.token_url, data={**form, "password": USERS[user], "scope": "openid"})
    assert rsp.status_code == 200, rsp.text
    return {"Authorization": f"Bearer {rsp.json()['access_token']}"}


def s3_block(emu: EditoEmulator, user: str = "demo") -> dict[str, Any]:
    """The ``s3`` block with fresh STS keys of ``user``."""
    from remotefs.edito import s3_credentials

    keys = s3_credentials(user, USERS[user], token_url=emu.token_url, endpoint_url=emu.s3_url)
    return keys.for_process_api(emu.s3_url, "waw3-1")


def execute(
    emu: EditoEmulator, process: str, inputs: dict[str, Any], *, user: str = "demo", **extra: Any
) -> requests.Response:
    """POST an execution with EDITO's body."""
    body = {"processInputs": {"inputs": inputs, **extra}, "metadata": {}}
    url = f"{emu.processes_url}/processes/{process}/execution"
    return requests.post(url, json=body, headers=bearer(emu, user))


def follow(emu: EditoEmulator, job_id: str, user: str = "demo") -> list[dict[str, Any]]:
    """Every statusInfo until the job ends."""
    headers = bearer(emu, user)
    seen = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        info = requests.get(f"{emu.processes_url}/jobs/{job_id}", headers=headers).json()
        seen.append(info)
        if info["status"] in ("successful", "failed", "dismissed"):
            return seen
        time.sleep(STEP / 3)
    raise AssertionError(f"job {job_id} did not end: {seen[-1]}")


def test_seed_notebook_runs_unchanged(
    emu: EditoEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    namespace = run_seed(
        SEED_CELLS,
        username="demo",
        password="demo",
        processes_endpoint=emu.processes_url,
        minio_endpoint=emu.s3_url,
        token_endpoint=emu.token_url,
    )
    out = capsys.readouterr().out
    assert "Authenticated as demo.\nRefreshed access token.\nprocesses:\n" in out
    assert f"- title: ILIAD hello world\n  name: {HELLO_ID}\n" in out
    assert f"  name: {CSV_SUMMARY_ID}\n" in out
    assert f'"id": "{HELLO_ID}"' in out and '"minOccurs": 1' in out
    job_id = namespace["job_id"]
    assert namespace["status"] == "successful"
    assert namespace["results_tmp"] == {"greeting": "Hello ILIAD!"}
    job = emu.processes.jobs[job_id]
    assert job.owner == "demo" and job.inputs == {"name": "ILIAD"}
    assert (
        job.s3 is not None and job.s3["accessKeyId"] == namespace["s3_credentials"]["access_key_id"]
    )
    assert json.dumps({"greeting": "Hello ILIAD!"}, indent=2) in out


# -- lifecycle -------------------------------------------------------------------------------------


def test_csv_summary_reads_and_writes_the_bucket_with_the_given_keys(emu: EditoEmulator) -> None:
    admin = emu.s3_client()
    admin.put_object(Bucket="oidc-demo", Key="in/t.csv", Body=b"x,y,name\n1,10,a\n2,20,b\n6,30,c\n")
    rsp = execute(emu, CSV_SUMMARY_ID, {"input": "s3://oidc-demo/in/t.csv"}, s3=s3_block(emu))
    assert rsp.status_code == 201 and "Location" not in rsp.headers
    created = rsp.json()
    assert created["status"] == "accepted" and created["type"] == "process"
    assert created["processID"] == CSV_SUMMARY_ID and created["progress"] == 0
    states = follow(emu, created["jobID"])
    words = [s["status"] for s in states]
    assert words[-1] == "successful" and "running" in words
    progress = [s["progress"] for s in states]
    assert progress == sorted(progress) and progress[-1] == 100
    assert any(0 < p < 100 for p in progress)
    final = states[-1]
    assert final["finished"] >= final["started"] >= final["created"]
    assert any(link["rel"].endswith("/results") for link in final["links"])

    url = f"{emu.processes_url}/jobs/{created['jobID']}/results"
    results = requests.get(url, headers=bearer(emu)).json()
    prefix = f"outputs/{created['jobID']}"
    assert results == {
        "result": {"href": f"s3://oidc-demo/{prefix}/result.csv", "type": "text/csv"},
        "summary": {"href": f"s3://oidc-demo/{prefix}/summary.json", "type": "application/json"},
        "rows": 3,
    }
    table = admin.get_object(Bucket="oidc-demo", Key=f"{prefix}/result.csv")["Body"].read()
    assert table == b"column,count,min,mean,max\nx,3,1.0,3.0,6.0\ny,3,10.0,20.0,30.0\n"
    summary = json.loads(
        admin.get_object(Bucket="oidc-demo", Key=f"{prefix}/summary.json")["Body"].read()
    )
    assert summary["rows"] == 3 and summary["columns"] == ["x", "y", "name"]
    puts = [r for r in emu.requests if r[0] == "s3" and r[1] == "PUT" and prefix in r[2]]
    assert len(puts) == 2


@pytest.mark.parametrize(
    ("inputs", "keys", "message"),
    [
        (
            {"input": "in/missing.csv"},
            "valid",
            "cannot read s3://oidc-demo/in/missing.csv: NoSuchKey",
        ),
        (
            {"input": "s3://oidc-other/x.csv"},
            "valid",
            "cannot read s3://oidc-other/x.csv: AccessDenied",
        ),
        ({"input": "in/t.csv"}, "expired", "ExpiredToken"),
        ({"input": "in/t.csv"}, None, "processInputs.s3 is not enabled"),
    ],
)
def test_failing_jobs_carry_the_process_message(
    emu: EditoEmulator, inputs: dict[str, str], keys: str | None, message: str
) -> None:
    emu.s3_client().put_object(Bucket="oidc-demo", Key="in/t.csv", Body=b"a\n1\n")
    extra = {"s3": s3_block(emu)} if keys else {}
    if keys == "expired":
        emu.expire_credentials()
    rsp = execute(emu, CSV_SUMMARY_ID, inputs, **extra)
    assert rsp.status_code == 201
    final = follow(emu, rsp.json()["jobID"])[-1]
    assert final["status"] == "failed" and message in final["message"]
    results = requests.get(
        f"{emu.processes_url}/jobs/{final['jobID']}/results", headers=bearer(emu)
    )
    assert results.status_code == 400 and message in results.json()["detail"]


def test_dismiss_cancels_a_running_job(emu: EditoEmulator) -> None:
    rsp = execute(emu, HELLO_ID, {"name": "slow"})
    job_id = rsp.json()["jobID"]
    deleted = requests.delete(f"{emu.processes_url}/jobs/{job_id}", headers=bearer(emu))
    assert deleted.status_code == 200
    assert deleted.json()["status"] == "dismissed" and deleted.json()["message"] == "Job dismissed"
    time.sleep(STEP * 8)
    job = emu.processes.jobs[job_id]
    assert job.status == "dismissed" and job.task is not None and job.task.cancelled()
    again = requests.get(f"{emu.processes_url}/jobs/{job_id}/results", headers=bearer(emu))
    assert again.status_code == 404 and "dismissed" in again.json()["detail"]


# -- refusals --------------------------------------------------------------------------------------


def test_bearer_tokens_are_checked(emu: EditoEmulator) -> None:
    describe = f"{emu.processes_url}/processes/{HELLO_ID}"
    assert requests.get(f"{emu.processes_url}/processes").status_code == 200
    missing = requests.get(describe)
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert missing.json()["title"] == "Unauthorized"
    minio = requests.get(describe, headers=bearer(emu, client_id="onyxia-minio"))
    assert minio.status_code == 401 and "MinIO" in minio.json()["detail"]
    headers = bearer(emu)
    assert requests.get(describe, headers=headers).status_code == 200
    emu.expire_tokens()
    expired = requests.get(f"{emu.processes_url}/jobs", headers=headers)
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]
    forged = {"Authorization": "Bearer " + headers["Authorization"].split()[1][:-4] + "AAAA"}
    assert requests.get(describe, headers=forged).status_code == 401


def test_bad_executions_are_refused(emu: EditoEmulator) -> None:
    url = f"{emu.processes_url}/processes/{HELLO_ID}/execution"
    ogc = requests.post(url, json={"inputs": {"name": "x"}}, headers=bearer(emu))
    assert ogc.status_code == 400 and "processInputs" in ogc.json()["detail"]
    missing = execute(emu, HELLO_ID, {})
    assert (
        missing.status_code == 400 and missing.json()["detail"] == "missing required input 'name'"
    )
    assert missing.json()["type"].endswith("/invalid-parameter-value")
    unknown = execute(emu, HELLO_ID, {"name": "x", "colour": "red"})
    assert unknown.status_code == 400 and "colour" in unknown.json()["detail"]
    wrong = execute(emu, HELLO_ID, {"name": 3})
    assert wrong.status_code == 400 and "non-empty string" in wrong.json()["detail"]
    nothing = execute(emu, "no-such-process-1.0", {})
    assert nothing.status_code == 404 and nothing.json()["type"].endswith("/no-such-process")


def test_jobs_belong_to_their_owner_and_list_newest_first(emu: EditoEmulator) -> None:
    first = execute(emu, HELLO_ID, {"name": "one"}).json()["jobID"]
    second = execute(emu, HELLO_ID, {"name": "two"}).json()["jobID"]
    foreign = requests.get(f"{emu.processes_url}/jobs/{first}", headers=bearer(emu, "other"))
    assert foreign.status_code == 404 and foreign.json()["type"].endswith("/no-such-job")
    theirs = requests.get(f"{emu.processes_url}/jobs", headers=bearer(emu, "other")).json()
    assert theirs == {"jobs": []}
    follow(emu, second)
    headers = bearer(emu)
    page = requests.get(
        f"{emu.processes_url}/jobs", params={"limit": 1, "processID": HELLO_ID}, headers=headers
    ).json()["jobs"]
    assert [j["jobID"] for j in page] == [second]
    page2 = requests.get(
        f"{emu.processes_url}/jobs",
        params={"limit": 1, "page": 2, "processID": HELLO_ID},
        headers=headers,
    ).json()["jobs"]
    assert [j["jobID"] for j in page2] == [first]
    done = requests.get(
        f"{emu.processes_url}/jobs", params={"status": "successful"}, headers=headers
    ).json()["jobs"]
    assert second in [j["jobID"] for j in done] and all(j["status"] == "successful" for j in done)
    processes = requests.get(f"{emu.processes_url}/processes", params={"limit": 1, "page": 2})
    assert [p["id"] for p in processes.json()["processes"]] == [CSV_SUMMARY_ID]
    assert requests.get(f"{emu.processes_url}/processes", params={"page": 0}).status_code == 400
