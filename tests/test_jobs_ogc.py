"""The OGC API - Processes backend against a real pygeoapi server on loopback.

pygeoapi runs in a subprocess (its Flask app, one process, no reloader) with its built-in
``hello-world`` process and the test plugins of ``pygeoapi_plugins.py``: synchronous and
asynchronous execution, the job id read from ``Location`` (pygeoapi's async body is ``null``),
status, failure messages, dismissal, paged job listings and unsafe result names.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from remotefs.errors import RemoteError
from remotefs.jobs import (
    InputError,
    JobFailedError,
    JobRecords,
    JobState,
    JobStatus,
    JobTimeoutError,
    OgcBackend,
    PollPolicy,
    UnsafeOutputError,
)
from remotefs.jobs.transport import Reply

CONFIG = """
server:
  bind: {{host: 127.0.0.1, port: {port}}}
  url: http://127.0.0.1:{port}
  mimetype: application/json; charset=UTF-8
  encoding: utf-8
  languages: [en-US]
  limits: {{default_items: 10, max_items: 50}}
  map: {{url: 'https://tile.openstreetmap.org/{{z}}/{{x}}/{{y}}.png', attribution: 'OSM'}}
  manager:
    name: pygeoapi_plugins.RunningTinyDBManager
    connection: {work}/jobs.db
    output_dir: {work}/out
logging: {{level: ERROR}}
metadata:
  identification: {{title: test, description: test, keywords: [test], keywords_type: theme,
                   terms_of_service: 'https://example.org/tos', url: 'http://example.org'}}
  license: {{name: CC-BY 4.0, url: 'https://creativecommons.org/licenses/by/4.0/'}}
  provider: {{name: test, url: 'https://example.org'}}
  contact: {{name: test, email: 'x@example.org', url: 'https://example.org'}}
resources:
  hello-world: {{type: process, processor: {{name: HelloWorld}}}}
  sleeper: {{type: process, processor: {{name: pygeoapi_plugins.SleepProcessor}}}}
  escape: {{type: process, processor: {{name: pygeoapi_plugins.EscapeProcessor}}}}
"""
FAST = PollPolicy(initial=0.05, factor=1.5, maximum=0.2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A pygeoapi server with hello-world, sleeper and escape; its base URL."""
    pytest.importorskip("pygeoapi", reason="the OGC server tests need pygeoapi (extra 'test')")
    work = tmp_path_factory.mktemp("pygeoapi")
    (work / "out").mkdir()
    port = free_port()
    config, openapi = work / "config.yml", work / "openapi.yml"
    config.write_text(CONFIG.format(port=port, work=work))
    path = os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))
    env = {
        **os.environ,
        "PYGEOAPI_CONFIG": str(config),
        "PYGEOAPI_OPENAPI": str(openapi),
        "PYTHONPATH": path,
    }
    generate = "from pygeoapi import cli; cli()"
    subprocess.run(
        [sys.executable, "-c", generate, "openapi", "generate", str(config), "-of", str(openapi)],
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    log = (work / "server.log").open("wb")
    command = ["flask", "--app", "pygeoapi.flask_app", "run", "--no-reload"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(
        [sys.executable, "-m", *command], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{url}/processes", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((work / "server.log").read_text())
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


@pytest.fixture
def backend(server: str) -> Iterator[OgcBackend]:
    with OgcBackend(server, poll=FAST) as made:
        yield made  # type: ignore[misc]


def test_status_words_and_job_ids_of_every_dialect() -> None:
    ogc = OgcBackend("http://127.0.0.1:9")
    for word, status in [
        ("accepted", JobStatus.ACCEPTED),
        ("running", JobStatus.RUNNING),
        ("successful", JobStatus.SUCCESSFUL),
        ("succeeded", JobStatus.SUCCESSFUL),
        ("failed", JobStatus.FAILED),
        ("dismissed", JobStatus.DISMISSED),
        ("queued", JobStatus.ACCEPTED),
        ("finished", JobStatus.SUCCESSFUL),
        ("error", JobStatus.FAILED),
        ("canceled", JobStatus.DISMISSED),
        ("paused", JobStatus.UNKNOWN),
    ]:
        seen = ogc._state({"status": word, "id": "j", "progress": 5, "processId": "p"}, "x")
        assert (seen.status, seen.word, seen.job_id, seen.process_id) == (status, word, "j", "p")
    assert not JobStatus.UNKNOWN.terminal and JobStatus.DISMISSED.terminal
    assert ogc._job_id({"jobID": "a"}, None) == "a"
    assert ogc._job_id({"jobId": "b"}, "http://h/jobs/z") == "b"
    assert ogc._job_id(None, "http://h/api/jobs/c?f=json") == "c"
    assert ogc._job_id(None, "http://h/processes/c") is None


def test_result_documents_of_every_shape() -> None:
    ogc = OgcBackend("http://127.0.0.1:9", protocol_options={"memory": {"auto_mkdir": True}})
    fs, path = ogc.filesystem("memory://bucket/key")
    assert path == "/bucket/key" and fs.storage_options == {"auto_mkdir": True}
    assert ogc.filesystem("relative/file.csv")[1].endswith("/relative/file.csv")

    def reply(body: bytes, kind: str = "application/json") -> Reply:
        return Reply(200, {"Content-Type": kind}, body)

    listed = b'{"outputs": [{"id": "a", "value": 1}, {"id": "b", "href": "s3://x/y", "type": "t"}]}'
    assert ogc._results(reply(listed), None) == {"a": 1, "b": {"href": "s3://x/y", "type": "t"}}
    assert ogc._results(reply(b'{"a": 1}'), None) == {"a": 1}
    assert ogc._results(reply(b"[1, 2]"), None) == {"result": [1, 2]}
    assert ogc._results(reply(b"x,y\n", "text/csv"), None) == {"result.csv": b"x,y\n"}
    assert ogc._results(reply(b""), None) == {}
    outputs = ogc.outputs({"result.csv": b"x", "b": {"href": "s3://x/y.nc"}, "c": "s3://x/z"})
    assert [(o.name, o.url) for o in outputs] == [
        ("result.csv", None),
        ("y.nc", "s3://x/y.nc"),
        ("c.json", None),
    ]


def test_hello_world_synchronously(backend: OgcBackend, tmp_path: Path) -> None:
    job = backend.submit("hello-world", {"name": "EDITO", "message": "hi"}, prefer_async=False)
    assert job.status is JobStatus.SUCCESSFUL
    assert job.results() == {"echo": {"id": "echo", "value": "Hello EDITO! hi"}}
    assert backend.status(job.id).word == "successful"
    job.download(str(tmp_path))
    assert json.loads((tmp_path / "echo.json").read_text())["value"] == "Hello EDITO! hi"


def test_hello_world_asynchronously(backend: OgcBackend, server: str) -> None:
    job = backend.submit("hello-world", {"name": "async"})
    assert len(job.id) == 36 and job.state is not None
    assert job.state.status is JobStatus.ACCEPTED
    assert job.wait().status is JobStatus.SUCCESSFUL
    assert job.results() == {"echo": {"id": "echo", "value": "Hello async!"}}
    assert JobRecords().load(job.id, "ogc").urls == {"url": server}
    served = requests.get(f"{server}/jobs/{job.id}", headers={"Accept": "application/json"})
    assert served.json()["status"] == "successful"


def test_running_state_progress_and_listing(backend: OgcBackend) -> None:
    job = backend.submit("sleeper", {"seconds": 0.6})
    seen: list[JobState] = []
    assert job.wait(progress=seen.append).status is JobStatus.SUCCESSFUL
    assert (JobStatus.RUNNING, 10.0) in [(s.status, s.progress) for s in seen]
    assert seen[-1].progress == 100 and seen[-1].process_id == "sleeper"
    assert job.results() == {"slept": 0.6}
    backend.page_size = 2
    listed = backend.jobs()
    everything = requests.get(f"{backend.api.base_url}/jobs?limit=50&f=json").json()["jobs"]
    assert len(listed) == len(everything) >= 3
    assert job.id in [j.id for j in listed]
    assert len(backend.jobs(limit=3)) == 3


def test_failures_carry_the_server_message(backend: OgcBackend) -> None:
    job = backend.submit("sleeper", {"fail": True})
    with pytest.raises(JobFailedError, match="Error executing process: asked to fail"):
        job.wait()
    with pytest.raises(JobFailedError, match="asked to fail"):
        backend.results(job.id)
    with pytest.raises(RemoteError, match="Error executing process: asked to fail") as caught:
        backend.submit("sleeper", {"fail": True}, prefer_async=False)
    assert caught.value.status == 400
    with pytest.raises(FileNotFoundError, match="(?i)identifier not found"):
        backend.describe("no-such-process")
    with pytest.raises(FileNotFoundError):
        backend.job("no-such-job")


def test_inputs_are_checked_against_the_description(backend: OgcBackend) -> None:
    assert {"hello-world", "sleeper", "escape"} <= {p.id for p in backend.processes()}
    info = backend.describe("hello-world")
    assert info.title == "Hello World" and set(info.outputs) == {"echo"}
    with pytest.raises(InputError) as caught:
        backend.submit("hello-world", {"nmae": "typo", "message": 3})
    assert set(caught.value.problems) == {"name", "nmae", "message"}


def test_dismiss_timeout_and_no_logs(backend: OgcBackend) -> None:
    job = backend.submit("sleeper", {"seconds": 0.5})
    assert job.cancel().status is JobStatus.DISMISSED
    with pytest.raises(FileNotFoundError):
        backend.status(job.id)
    slow = backend.submit("sleeper", {"seconds": 0.5})
    with pytest.raises(JobTimeoutError):
        slow.wait(timeout=0.1)
    with pytest.raises(io.UnsupportedOperation, match="no job logs"):
        slow.logs()
    assert slow.wait().status is JobStatus.SUCCESSFUL


def test_result_names_leaving_the_destination_are_refused(
    backend: OgcBackend, tmp_path: Path
) -> None:
    job = backend.submit("escape", {})
    job.wait()
    assert job.results() == {"a": "fine", "../../escaped": "gotcha"}
    dest = tmp_path / "a" / "b" / "dest"
    with pytest.raises(UnsafeOutputError, match="'../../escaped.json'"):
        job.download(str(dest))
    assert list(tmp_path.rglob("*")) == []
