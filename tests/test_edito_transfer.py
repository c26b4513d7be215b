"""edito://'s streaming transfers (remotefs.edito.transfer) against the emulated EDITO stack."""

from __future__ import annotations

import asyncio
import os
import pickle
import re

import pytest
from botocore.exceptions import ConnectionClosedError
from conftest import make_edito_fs
from fsspec.callbacks import Callback

from remotefs.edito import transfer

MIB = 1 << 20


class Totals(Callback):
    """Records the announced size and the sum of the updates."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int | None] = []
        self.total = 0

    def set_size(self, size: int | None) -> None:
        self.sizes.append(size)

    def relative_update(self, inc: int = 1) -> None:
        self.total += inc


def _key(prefix: str, name: str) -> str:
    """The key of ``prefix/name`` in demo's bucket (prefix starts with ``oidc-demo/``)."""
    return f"{prefix.split('/', 1)[1]}/{name}"


def _s3_calls(emu, key: str, since: int = 0) -> list[str]:
    """Method and query parameter names of the S3 requests for ``key`` from ``since`` on."""
    calls = []
    for service, method, path in emu.requests[since:]:
        target, _, query = path.partition("?")
        if service == "s3" and target.endswith(f"/{key}"):
            names = sorted(part.split("=")[0] for part in query.split("&") if part)
            calls.append(" ".join([method, "&".join(names)]).strip())
    return calls


def _server_bytes(emu, key: str) -> bytes:
    return emu.s3_client().get_object(Bucket="oidc-demo", Key=key)["Body"].read()


class Scripted:
    """Stands in for the fault injector's random generator: these draws, then no faults."""

    def __init__(self, *draws: float) -> None:
        self.draws = list(draws)

    def random(self) -> float:
        return self.draws.pop(0) if self.draws else 0.999


# -- downloads ----------------------------------------------------------------------------------


def test_get_file_one_get_to_a_temporary_name(edito_emulator, edito_fs, edito_prefix, tmp_path):
    data = os.urandom(3 * MIB + 7)
    key = _key(edito_prefix, "obj.bin")
    edito_emulator.s3_client().put_object(Bucket="oidc-demo", Key=key, Body=data)
    target = tmp_path / "obj.bin"
    target.write_bytes(b"old content")
    renames: list[tuple[str, str]] = []
    real_replace = os.replace

    def replace(src: str, dst: str) -> None:
        renames.append((src, dst))
        assert open(src, "rb").read() == data  # complete before it takes the target's name
        assert target.read_bytes() == b"old content"
        real_replace(src, dst)

    before = len(edito_emulator.requests)
    callback = Totals()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(transfer.os, "replace", replace)
        edito_fs.get_file(f"{edito_prefix}/obj.bin", str(target), callback=callback)
    assert target.read_bytes() == data
    [(partial, final)] = renames
    assert final == str(target)
    assert re.fullmatch(re.escape(str(target)) + r"\.[0-9a-f]{8}\.part", partial)
    assert sorted(os.listdir(tmp_path)) == ["obj.bin"]
    assert callback.sizes == [len(data)] and callback.total == len(data)
    assert _s3_calls(edito_emulator, key, before) == ["GET"]  # no HEAD, no ranged GETs


def test_get_file_resumes_a_cut_stream(edito_emulator, edito_fs, edito_prefix, tmp_path):
    data = os.urandom(3 * MIB)
    key = _key(edito_prefix, "cut.bin")
    edito_emulator.s3_client().put_object(Bucket="oidc-demo", Key=key, Body=data)
    faults = edito_emulator.fault_injector
    callback = Totals()
    before = len(edito_emulator.requests)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(faults, "fail_rate", 0.5)
        mp.setattr(faults, "_rng", Scripted(0.0, 0.0))  # the first GET is cut half-way
        edito_fs.get_file(f"{edito_prefix}/cut.bin", str(tmp_path / "cut.bin"), callback=callback)
    assert (tmp_path / "cut.bin").read_bytes() == data
    assert callback.total == len(data)
    assert _s3_calls(edito_emulator, key, before) == ["GET", "GET"]
    assert os.listdir(tmp_path) == ["cut.bin"]


def test_get_file_never_mixes_versions(edito_emulator, edito_fs, edito_prefix, tmp_path):
    key = _key(edito_prefix, "changing.bin")
    s3 = edito_emulator.s3_client()
    s3.put_object(Bucket="oidc-demo", Key=key, Body=os.urandom(3 * MIB))

    class Overwrite(Totals):
        def relative_update(self, inc: int = 1) -> None:
            if not self.total:  # while the first GET streams, the object changes
                s3.put_object(Bucket="oidc-demo", Key=key, Body=os.urandom(3 * MIB))
            super().relative_update(inc)

    faults = edito_emulator.fault_injector
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(faults, "fail_rate", 0.5)
        mp.setattr(faults, "_rng", Scripted(0.0, 0.0))
        with pytest.raises(OSError, match="pre-condition"):  # If-Match: the ETag changed
            edito_fs.get_file(
                f"{edito_prefix}/changing.bin", str(tmp_path / "c.bin"), callback=Overwrite()
            )
    assert os.listdir(tmp_path) == []


def test_get_file_missing_object_creates_nothing(edito_fs, edito_prefix, tmp_path):
    with pytest.raises(FileNotFoundError):
        edito_fs.get_file(f"{edito_prefix}/missing.bin", str(tmp_path / "m.bin"))
    assert os.listdir(tmp_path) == []


def test_get_tree_keeps_files_in_flight_to_batch_size(edito_emulator, edito_prefix, tmp_path):
    fs = make_edito_fs(edito_emulator)
    assert fs.batch_size == 8
    for i in range(20):
        fs.pipe_file(f"{edito_prefix}/tree/f{i:02d}", bytes([i]) * (1000 + i))
    active, peak = 0, 0
    real = fs._get_file

    async def counting(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        try:
            await asyncio.sleep(0.01)
            return await real(*args, **kwargs)
        finally:
            active -= 1

    fs._get_file = counting
    fs.get(f"{edito_prefix}/tree/", str(tmp_path) + "/", recursive=True)
    assert sorted(os.listdir(tmp_path)) == [f"f{i:02d}" for i in range(20)]
    assert (tmp_path / "f07").read_bytes() == bytes([7]) * 1007
    assert peak == 8
    fs3 = make_edito_fs(edito_emulator, batch_size=3)
    assert fs3.batch_size == 3 and pickle.loads(pickle.dumps(fs3)).batch_size == 3


# -- uploads ------------------------------------------------------------------------------------


def test_put_file_small_is_one_put(edito_emulator, edito_fs, edito_prefix, tmp_path):
    local = tmp_path / "small.json"
    local.write_bytes(b'{"a": 1}')
    callback = Totals()
    before = len(edito_emulator.requests)
    edito_fs.put_file(str(local), f"{edito_prefix}/small.json", callback=callback)
    key = _key(edito_prefix, "small.json")
    assert _server_bytes(edito_emulator, key) == b'{"a": 1}'
    head = edito_emulator.s3_client().head_object(Bucket="oidc-demo", Key=key)
    assert head["ContentType"] == "application/json"
    assert _s3_calls(edito_emulator, key, before) == ["PUT"]
    assert callback.sizes == [8] and callback.total == 8


def test_put_file_streams_one_put_below_two_parts(edito_emulator, edito_fs, edito_prefix, tmp_path):
    data = os.urandom(3 * MIB + 1)
    local = tmp_path / "mid.bin"
    local.write_bytes(data)
    before = len(edito_emulator.requests)
    callback = Totals()
    edito_fs.put_file(str(local), f"{edito_prefix}/mid.bin", callback=callback)
    key = _key(edito_prefix, "mid.bin")
    assert _server_bytes(edito_emulator, key) == data
    assert _s3_calls(edito_emulator, key, before) == ["PUT"]
    assert callback.total == len(data)


def test_put_file_multipart_bounded_concurrency(edito_emulator, edito_prefix, tmp_path):
    fs = make_edito_fs(edito_emulator)
    data = os.urandom(17 * MIB + 5)
    local = tmp_path / "big.bin"
    local.write_bytes(data)
    active, peak, bodies = 0, 0, []
    real = fs._call_s3

    async def watching(method, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        nonlocal active, peak
        if method != "upload_part":
            return await real(method, *args, **kwargs)
        bodies.append(kwargs["Body"])
        active += 1
        peak = max(peak, active)
        try:
            return await real(method, *args, **kwargs)
        finally:
            active -= 1

    fs._call_s3 = watching
    callback = Totals()
    before = len(edito_emulator.requests)
    fs.put_file(
        str(local), f"{edito_prefix}/big.bin", callback=callback, chunksize=5 * MIB,
        max_concurrency=2,
    )  # fmt: skip
    key = _key(edito_prefix, "big.bin")
    assert _server_bytes(edito_emulator, key) == data
    assert _s3_calls(edito_emulator, key, before) == [
        "POST uploads", *["PUT partNumber&uploadId"] * 4, "POST uploadId",
    ]  # fmt: skip
    assert peak == 2
    assert all(isinstance(b, transfer.FileRange) for b in bodies)  # read as sent, not held
    assert sorted(len(b) for b in bodies) == [2 * MIB + 5, 5 * MIB, 5 * MIB, 5 * MIB]
    assert callback.sizes == [len(data)] and callback.total == len(data)


def test_put_file_renews_keys_mid_upload(edito_emulator, edito_prefix, tmp_path):
    fs = make_edito_fs(edito_emulator)
    data = os.urandom(12 * MIB)
    local = tmp_path / "renew.bin"
    local.write_bytes(data)

    class ExpireAfterFirstPart(Totals):
        def relative_update(self, inc: int = 1) -> None:
            if not self.total:
                edito_emulator.expire_credentials()
            super().relative_update(inc)

    fs.put_file(
        str(local), f"{edito_prefix}/renew.bin", callback=ExpireAfterFirstPart(),
        chunksize=5 * MIB, max_concurrency=1,
    )  # fmt: skip
    assert _server_bytes(edito_emulator, _key(edito_prefix, "renew.bin")) == data


@pytest.mark.parametrize(("method", "size"), [("put_object", 3 * MIB), ("upload_part", 11 * MIB)])
def test_put_file_retry_sends_the_body_from_its_start(
    edito_emulator, edito_prefix, tmp_path, method, size
):
    """s3fs repeats a call that broke mid-body with the same body object: it must rewind."""
    fs = make_edito_fs(edito_emulator)
    fs.connect()
    data = os.urandom(size)
    local = tmp_path / "retry.bin"
    local.write_bytes(data)
    real = getattr(fs.s3, method)
    broken: list[int] = []

    async def breaks_once(**kwargs):  # noqa: ANN003, ANN202
        if not broken:
            broken.append(len(kwargs["Body"].read()))  # sent, then the connection dropped
            raise ConnectionClosedError(endpoint_url=edito_emulator.s3_url)
        return await real(**kwargs)

    breaks_once.__name__ = method  # s3fs looks the operation up by the method's name
    before = len(edito_emulator.requests)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fs.s3, method, breaks_once)
        fs.put_file(str(local), f"{edito_prefix}/retry.bin", chunksize=5 * MIB)
    assert broken and broken[0] > 0
    key = _key(edito_prefix, "retry.bin")
    assert _server_bytes(edito_emulator, key) == data
    # each body went out once, whole: no request stalled on a body sent from its end
    sends = [c for c in _s3_calls(edito_emulator, key, before) if c.startswith("PUT")]
    assert len(sends) == -(-size // (5 * MIB))


def test_put_file_create_mode_refuses_existing(edito_emulator, edito_fs, edito_prefix, tmp_path):
    small, big = tmp_path / "s.bin", tmp_path / "b.bin"
    small.write_bytes(b"new")
    big.write_bytes(os.urandom(11 * MIB))
    for local in (small, big):
        edito_fs.pipe_file(f"{edito_prefix}/{local.name}", b"first")
        with pytest.raises(FileExistsError):
            edito_fs.put_file(
                str(local), f"{edito_prefix}/{local.name}", mode="create", chunksize=5 * MIB
            )
        assert _server_bytes(edito_emulator, _key(edito_prefix, local.name)) == b"first"
    edito_fs.put_file(str(small), f"{edito_prefix}/fresh.bin", mode="create")
    assert edito_fs.cat_file(f"{edito_prefix}/fresh.bin") == b"new"
    uploads = edito_emulator.s3_client().list_multipart_uploads(Bucket="oidc-demo")
    assert not uploads.get("Uploads")


def test_put_file_failed_part_aborts_the_upload(edito_emulator, edito_prefix, tmp_path):
    fs = make_edito_fs(edito_emulator)
    local = tmp_path / "fail.bin"
    local.write_bytes(os.urandom(11 * MIB))
    real = fs._call_s3

    async def failing(method, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if method == "upload_part" and kwargs["PartNumber"] == 2:
            raise PermissionError("refused")
        return await real(method, *args, **kwargs)

    fs._call_s3 = failing
    with pytest.raises(PermissionError):
        fs.put_file(str(local), f"{edito_prefix}/fail.bin", chunksize=5 * MIB)
    assert not fs.exists(f"{edito_prefix}/fail.bin")
    uploads = edito_emulator.s3_client().list_multipart_uploads(Bucket="oidc-demo")
    assert not uploads.get("Uploads")


def test_put_tree_round_trip(edito_emulator, edito_fs, edito_prefix, tmp_path):
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    files = {"a.bin": os.urandom(100), "sub/b.bin": os.urandom(2 * MIB), "sub/c.txt": b""}
    for name, content in files.items():
        (source / name).write_bytes(content)
    edito_fs.put(str(source) + "/", f"{edito_prefix}/tree/", recursive=True)
    for name, content in files.items():
        assert _server_bytes(edito_emulator, _key(edito_prefix, f"tree/{name}")) == content
    edito_fs.get(f"{edito_prefix}/tree/", str(tmp_path / "back") + "/", recursive=True)
    for name, content in files.items():
        assert (tmp_path / "back" / name).read_bytes() == content
