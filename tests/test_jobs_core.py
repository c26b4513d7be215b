"""The service-neutral Job API: waiting, progress, logs, schema checks, staging, downloads, records.

A scripted in-memory backend stands in for a service (the real ones are tested against the
EDITO emulator and pygeoapi); files are real, on local disk and in fsspec's memory filesystem.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from fsspec.implementations.memory import MemoryFileSystem

from remotefs.errors import RemoteConnectionError, RemoteError, RemotePermissionError, TransferError
from remotefs.jobs import (
    Backend,
    InputError,
    Job,
    JobError,
    JobFailedError,
    JobRecord,
    JobRecords,
    JobState,
    JobStatus,
    JobTimeoutError,
    PollPolicy,
    ProcessInfo,
    Submission,
    TerminalProgress,
    UnsafeOutputError,
)
from remotefs.jobs.records import data_dir
from remotefs.jobs.schema import check_inputs, declared_inputs_schema, ogc_inputs_schema

FAST = PollPolicy(initial=0.005, factor=2.0, maximum=0.02, transient_errors=3)


def state(word: str, progress: float | None = None, message: str | None = None) -> JobState:
    """A state of job ``j1`` whose status is the word itself."""
    return JobState("j1", JobStatus(word), word.upper(), message, progress, "proc")


class ShortReads(MemoryFileSystem):
    """A memory filesystem that announces one byte more than it holds (a cut-off transfer)."""

    protocol = "short"

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        found: dict[str, Any] = super().info(path, **kwargs)
        return {**found, "size": found["size"] + 1} if found["type"] == "file" else found


class ScriptedBackend(Backend):
    """Answers status requests from a script of states and exceptions; records what it was asked."""

    service = "scripted"
    url_schemes = ("memory",)

    def __init__(
        self,
        script: list[JobState | Exception] | None = None,
        *,
        results: dict[str, Any] | None = None,
        log_text: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(poll=kwargs.pop("poll", FAST), **kwargs)
        self.script = list(script or [])
        self.result_map = results if results is not None else {}
        self.log_text = log_text
        self.calls: list[str] = []
        self.executed: list[tuple[str, dict[str, Any]]] = []
        self.short = ShortReads(skip_instance_cache=True)

    def processes(self, *, limit: int | None = None) -> list[ProcessInfo]:
        return [self.describe("proc")]

    def describe(self, process_id: str) -> ProcessInfo:
        self.calls.append("describe")
        inputs = {"name": {"schema": {"type": "string"}}, "count": {"schema": {"type": "integer"}}}
        inputs["count"]["minOccurs"] = 0
        return ProcessInfo(process_id, inputs=inputs, schema=ogc_inputs_schema(inputs))

    def execute(self, process_id: str, inputs: Mapping[str, Any], **options: Any) -> Submission:
        self.executed.append((process_id, dict(inputs)))
        return Submission("j1", state("accepted"))

    def status(self, job_id: str) -> JobState:
        self.calls.append("status")
        item = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(item, Exception):
            raise item
        return item

    def dismiss(self, job_id: str) -> JobState:
        self.calls.append("dismiss")
        self.script = [state("dismissed")]
        return state("dismissed")

    def results(self, job_id: str, process_id: str | None = None) -> dict[str, Any]:
        self.calls.append("results")
        return dict(self.result_map)

    def list_jobs(self, *, limit: int | None = None, **filters: Any) -> list[JobState]:
        return [state("running")]

    def urls(self) -> dict[str, str]:
        return {}

    def logs(self, job_id: str, offset: int = 0) -> tuple[str, int]:
        return self.log_text[offset:], len(self.log_text)

    def filesystem(self, url: str) -> tuple[Any, str]:
        if url.startswith("short://"):
            return self.short, url[len("short://") :]
        return super().filesystem(url)


@pytest.fixture
def memory() -> Iterator[tuple[MemoryFileSystem, str]]:
    """The shared memory filesystem and a fresh directory in it for this test."""
    fs = MemoryFileSystem()
    root = f"/t{time.monotonic_ns()}"
    fs.mkdir(root)
    yield fs, root
    fs.rm(root, recursive=True)


# -- waiting ---------------------------------------------------------------------------------------


def test_poll_pauses_grow_from_one_second_to_thirty() -> None:
    pauses = PollPolicy().pauses()
    seen = [pauses() for _ in range(12)]
    assert seen[0] == 1.0 and seen[1] == 1.5 and seen[-1] == 30.0
    assert seen == sorted(seen) and max(seen) == 30.0


def test_wait_reports_each_change_once_and_returns_the_final_state() -> None:
    script: list[JobState | Exception] = [
        state("accepted"),
        state("running", 10),
        state("running", 10),
        state("running", 60, "half way"),
        state("successful", 100),
    ]
    backend = ScriptedBackend(script)
    job = Job(backend, "j1", process_id="proc")
    seen: list[JobState] = []
    final = job.wait(progress=seen.append)
    assert final.status is JobStatus.SUCCESSFUL and final.word == "SUCCESSFUL"
    assert [(s.status.value, s.progress) for s in seen] == [
        ("accepted", None),
        ("running", 10),
        ("running", 60),
        ("successful", 100),
    ]
    assert backend.calls.count("status") == 5
    assert job.status is JobStatus.SUCCESSFUL and job.progress == 100


def test_wait_tolerates_a_few_transient_errors_but_not_more() -> None:
    flaky = RemoteConnectionError("connection reset", retriable=True)
    busy = RemoteError("Service Unavailable", status=503, retriable=True)
    script: list[JobState | Exception] = [flaky, busy, flaky, state("successful")]
    assert Job(ScriptedBackend(script), "j1").wait().status is JobStatus.SUCCESSFUL

    script = [flaky, flaky, flaky, flaky, state("successful")]
    with pytest.raises(RemoteConnectionError):
        Job(ScriptedBackend(script), "j1").wait()

    refused = RemotePermissionError("no access", status=403)
    backend = ScriptedBackend([refused, state("successful")])
    with pytest.raises(PermissionError):
        Job(backend, "j1").wait()
    assert backend.calls.count("status") == 1


def test_a_failed_job_raises_the_service_message_unless_unchecked() -> None:
    backend = ScriptedBackend([state("running"), state("failed", None, "disk quota exceeded")])
    job = Job(backend, "j1", process_id="proc")
    with pytest.raises(JobFailedError, match="disk quota exceeded") as caught:
        job.wait()
    assert caught.value.job_id == "j1"
    again = pickle.loads(pickle.dumps(caught.value))
    assert isinstance(again, JobFailedError) and again.job_id == "j1"
    assert Job(backend, "j1").wait(check=False).status is JobStatus.FAILED


def test_timeout_raises_and_cancels_on_request() -> None:
    backend = ScriptedBackend([state("running")])
    started = time.monotonic()
    with pytest.raises(JobTimeoutError, match="within 0.1 s") as caught:
        Job(backend, "j1").wait(timeout=0.1)
    assert 0.1 <= time.monotonic() - started < 1.0
    assert isinstance(caught.value, TimeoutError) and "dismiss" not in backend.calls

    with pytest.raises(JobTimeoutError, match="cancelled"):
        Job(backend, "j1").wait(timeout=0.05, cancel_on_timeout=True)
    assert backend.calls[-1] == "dismiss"


def test_a_failed_cancel_still_reports_the_timeout() -> None:
    class Stubborn(ScriptedBackend):
        def dismiss(self, job_id: str) -> JobState:
            raise RemotePermissionError("not yours", status=403)

    with pytest.raises(JobTimeoutError, match="cancelling it failed: not yours"):
        Job(Stubborn([state("running")]), "j1").wait(timeout=0.02, cancel_on_timeout=True)


def test_terminal_progress_rewrites_one_line() -> None:
    out = io.StringIO()
    show = TerminalProgress(out, width=10)
    show(state("running", 50, "step 2"))
    show(state("successful", 100))
    text = out.getvalue()
    assert "\rj1: RUNNING [#####.....]  50% step 2" in text.replace("\x1b[K", "")
    assert text.endswith("100%\n")


def test_progress_is_shown_only_on_a_terminal_by_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    Job(ScriptedBackend([state("running"), state("successful")]), "j1").wait()
    assert capsys.readouterr().err == ""
    Job(ScriptedBackend([state("successful")]), "j1").wait(progress=True)
    assert "j1: SUCCESSFUL" in capsys.readouterr().err


def test_logs_are_incremental() -> None:
    backend = ScriptedBackend([state("running")], log_text="line 1\n")
    job = Job(backend, "j1")
    assert job.logs() == "line 1\n"
    backend.log_text += "line 2\n"
    assert job.logs() == "line 2\n"
    assert job.logs() == ""
    assert job.logs(from_start=True) == "line 1\nline 2\n"


# -- inputs ----------------------------------------------------------------------------------------


def test_every_wrong_input_is_named() -> None:
    inputs = {
        "name": {"schema": {"type": "string"}},
        "count": {"schema": {"type": "integer", "minimum": 1}, "minOccurs": 0},
        "bbox": {"schema": {"type": "number"}, "maxOccurs": 4, "minOccurs": 0},
        "area": {
            "schema": {"type": "object", "required": ["type"], "properties": {"type": {}}},
            "minOccurs": 0,
        },
    }
    schema = ogc_inputs_schema(inputs)
    check_inputs("p", schema, {"name": "x", "bbox": [1, 2, 3], "count": {"value": 3}})
    check_inputs("p", schema, {"name": {"href": "s3://b/k", "type": "text/csv"}, "bbox": 1.5})
    with pytest.raises(InputError) as caught:
        check_inputs("p", schema, {"count": 0, "colour": "red", "area": {}, "bbox": "x"})
    problems = caught.value.problems
    assert set(problems) == {"name", "count", "colour", "area/type", "bbox"}
    assert problems["name"] == "required, but missing"
    assert problems["colour"] == "not an input of this process"
    assert "minimum" in problems["count"] or "less than" in problems["count"]
    assert "'p'" in str(caught.value) and "colour: not an input" in str(caught.value)
    again = pickle.loads(pickle.dumps(caught.value))
    assert again.problems == problems and isinstance(again, ValueError)


def test_declared_inputs_become_a_schema() -> None:
    schema = declared_inputs_schema(
        [{"name": "a", "type": "integer", "required": True}, {"name": "b", "type": "weird"}]
    )
    check_inputs("p", schema, {"a": 1, "b": [1]})
    with pytest.raises(InputError, match="a: 'x' is not of type 'integer'"):
        check_inputs("p", schema, {"a": "x"})


def test_an_invalid_service_schema_is_not_enforced(caplog: pytest.LogCaptureFixture) -> None:
    check_inputs("p", {"type": "object", "properties": {"a": {"type": 12}}}, {"a": 1})
    assert "invalid input schema" in caplog.text


def test_submit_checks_inputs_before_executing() -> None:
    backend = ScriptedBackend([state("accepted")])
    with pytest.raises(InputError, match="name: required"):
        backend.submit("proc", {"count": 2})
    assert backend.executed == []
    job = backend.submit("proc", {"name": "x"})
    assert backend.executed == [("proc", {"name": "x"})]
    assert job.id == "j1" and job.status is JobStatus.ACCEPTED and job.submitted
    backend.submit("proc", {"whatever": 1}, validate=False)
    assert backend.executed[-1] == ("proc", {"whatever": 1})


# -- staging ---------------------------------------------------------------------------------------


def test_staging_copies_files_and_directories_and_skips_unchanged(
    tmp_path: Path, memory: tuple[MemoryFileSystem, str]
) -> None:
    memfs, root = memory
    (tmp_path / "in.csv").write_text("a,b\n1,2\n")
    (tmp_path / "dir" / "sub").mkdir(parents=True)
    (tmp_path / "dir" / "x.txt").write_text("x")
    (tmp_path / "dir" / "sub" / "y.txt").write_text("yy")
    backend = ScriptedBackend([state("accepted")])
    stage = {
        str(tmp_path / "in.csv"): f"memory://{root}/inputs/",
        str(tmp_path / "dir"): f"memory://{root}/tree",
    }
    job = backend.submit("proc", {"name": f"memory://{root}/inputs/in.csv"}, stage=stage)
    assert memfs.cat(f"{root}/inputs/in.csv") == b"a,b\n1,2\n"
    assert memfs.cat(f"{root}/tree/sub/y.txt") == b"yy"
    assert [(c.size, c.skipped) for c in job.staged] == [(8, False), (2, False), (1, False)]

    again = backend.submit("proc", {"name": "x"}, stage=stage)
    assert [c.skipped for c in again.staged] == [True, True, True]

    (tmp_path / "dir" / "x.txt").write_text("changed")
    third = backend.submit("proc", {"name": "x"}, stage=stage)
    assert [(c.target.rsplit("/", 1)[-1], c.skipped) for c in third.staged] == [
        ("in.csv", True),
        ("y.txt", True),
        ("x.txt", False),
    ]
    assert memfs.cat(f"{root}/tree/x.txt") == b"changed"


# -- downloads -------------------------------------------------------------------------------------


def test_download_pulls_references_directories_and_inline_values(
    tmp_path: Path, memory: tuple[MemoryFileSystem, str]
) -> None:
    memfs, root = memory
    memfs.pipe(f"{root}/out/result.csv", b"a,b\n")
    memfs.pipe(f"{root}/out/plots/one.png", b"\x89PNG")
    memfs.pipe(f"{root}/other/result.csv", b"other")
    results = {
        "result": {"href": f"memory://{root}/out/result.csv", "type": "text/csv"},
        "same_name": f"memory://{root}/other/result.csv",
        "plots": {"href": f"memory://{root}/out/plots/"},
        "rows": 2,
        "stats": {"mean": 1.5},
    }
    backend = ScriptedBackend([state("successful")], results=results)
    job = Job(backend, "j1")
    copied = job.download(str(tmp_path / "dest"))
    dest = tmp_path / "dest"
    assert (dest / "result.csv").read_bytes() == b"a,b\n"
    assert (dest / "same_name-result.csv").read_bytes() == b"other"
    assert (dest / "plots" / "one.png").read_bytes() == b"\x89PNG"
    assert json.loads((dest / "rows.json").read_text()) == 2
    assert json.loads((dest / "stats.json").read_text()) == {"mean": 1.5}
    assert sorted(c.size for c in copied) == sorted(
        [4, 5, 4, len((dest / "rows.json").read_bytes()), len((dest / "stats.json").read_bytes())]
    )
    assert not [p for p in dest.rglob("*") if ".part" in p.name]
    assert backend.calls.count("results") == 1
    job.download(f"memory://{root}/copy")
    assert memfs.cat(f"{root}/copy/plots/one.png") == b"\x89PNG"
    assert backend.calls.count("results") == 1


@pytest.mark.parametrize(
    "results",
    [
        {"../../escaped": 1},
        {"/etc/passwd": 1},
        {"ok": 1, "sub/../../up": {"href": "memory://somewhere/dir/"}},
        {"win": {"href": "memory://x/"}, "C:\\evil": 2},
    ],
)
def test_names_that_leave_the_destination_are_refused(
    tmp_path: Path, results: dict[str, Any]
) -> None:
    backend = ScriptedBackend([state("successful")], results=results)
    dest = tmp_path / "box" / "dest"
    with pytest.raises(UnsafeOutputError, match="refusing the output name") as caught:
        Job(backend, "j1").download(str(dest))
    assert isinstance(caught.value, PermissionError)
    assert list(tmp_path.iterdir()) == []


def test_directory_members_that_climb_out_are_refused(
    tmp_path: Path, memory: tuple[MemoryFileSystem, str]
) -> None:
    memfs, root = memory
    memfs.pipe(f"{root}/out/fine.txt", b"fine")
    memfs.store[f"{root}/out/../../escaped.txt"] = memfs.store[f"{root}/out/fine.txt"]
    backend = ScriptedBackend(
        [state("successful")], results={"all": {"href": f"memory://{root}/out/"}}
    )
    with pytest.raises(UnsafeOutputError, match="escaped"):
        Job(backend, "j1").download(str(tmp_path / "dest"))
    assert list(tmp_path.iterdir()) == []


def test_a_short_transfer_leaves_no_file(tmp_path: Path) -> None:
    backend = ScriptedBackend([state("successful")], results={"r": {"href": "short://x/data.bin"}})
    backend.short.pipe("/x/data.bin", b"12345")
    with pytest.raises(TransferError, match="copied 5 bytes of 6"):
        Job(backend, "j1").download(str(tmp_path / "dest"))
    assert list((tmp_path / "dest").iterdir()) == []


def test_no_download_before_success() -> None:
    backend = ScriptedBackend([state("failed", None, "bad input")])
    with pytest.raises(JobError, match="FAILED; no outputs to download: bad input"):
        Job(backend, "j1").download("unused")
    assert "results" not in backend.calls


# -- records ---------------------------------------------------------------------------------------


def test_records_live_in_the_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REMOTEFS_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert data_dir() == tmp_path / "xdg" / "remotefs"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_dir() == tmp_path / "home" / ".local" / "share" / "remotefs"
    monkeypatch.setenv("REMOTEFS_DATA_DIR", str(tmp_path / "data"))
    assert JobRecords().directory == tmp_path / "data" / "jobs"


def test_a_submitted_job_is_recorded_and_kept_up_to_date(tmp_path: Path) -> None:
    records = JobRecords(tmp_path)
    backend = ScriptedBackend([state("running", 5), state("successful", 100)], records=records)
    job = backend.submit("proc", {"name": "x"})
    path = tmp_path / "scripted-j1.json"
    saved = json.loads(path.read_text())
    assert saved["status"] == "accepted" and saved["process_id"] == "proc"
    assert saved["submitted"] == job.submitted
    assert not {"password", "token", "secret"} & set(json.dumps(saved).lower().split('"'))
    job.wait()
    assert records.load("j1").status == "successful"
    assert records.load("j1", "scripted").word == "SUCCESSFUL"

    again = Job.from_record(backend, records.load("j1"))
    assert again.status is JobStatus.SUCCESSFUL and again.process_id == "proc"
    attached = backend.job("j1")
    assert attached.submitted == job.submitted and attached.process_id == "proc"


def test_record_lookup_by_id_alone(tmp_path: Path) -> None:
    records = JobRecords(tmp_path)
    with pytest.raises(FileNotFoundError, match="no local record of job 'nope'"):
        records.load("nope")
    records.save(JobRecord("a", "same/id", submitted="2026-01-01T00:00:00Z"))
    assert records.load("same/id").service == "a"
    assert (tmp_path / "a-same%2Fid.json").exists()
    records.save(JobRecord("b", "same/id", submitted="2026-01-02T00:00:00Z"))
    with pytest.raises(LookupError, match="several services"):
        records.find("same/id")
    assert [r.service for r in records.all()] == ["a", "b"]
    records.remove("a", "same/id")
    assert records.load("same/id").service == "b"
    (tmp_path / "garbage.json").write_text("{not json")
    assert len(records.all()) == 1
    assert os.stat(tmp_path / "b-same%2Fid.json").st_size > 0
