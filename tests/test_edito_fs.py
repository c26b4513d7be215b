"""edito:// against the emulated EDITO stack (Keycloak, MinIO-like STS, moto S3) on loopback."""

from __future__ import annotations

import logging
import os
import pickle
import time

import fsspec
import pytest
from conftest import CAROL_PASSWORD, edito_options, make_edito_fs

from remotefs.edito import s3_credentials
from remotefs.edito.sts import assume_role_with_web_identity
from remotefs.errors import AuthenticationError, RemoteError
from remotefs.testing.server import ServerThread


def _sts_calls(emu) -> int:
    return sum(1 for service, _, _ in emu.requests if service == "sts")


def test_basic_operations(edito_fs, edito_prefix, edito_emulator):
    fs, p = edito_fs, edito_prefix
    fs.pipe_file(f"{p}/a.txt", b"hello edito")
    assert fs.cat_file(f"{p}/a.txt") == b"hello edito"
    assert fs.cat_file(f"{p}/a.txt", start=6, end=11) == b"edito"
    assert fs.info(f"{p}/a.txt")["size"] == 11
    assert fs.ls(p, detail=False) == [f"{p}/a.txt"]
    with fs.open(f"{p}/a.txt", "rb") as fh:
        fh.seek(6)
        assert fh.read() == b"edito"
    # the bytes really are in the user's bucket behind the front
    obj = edito_emulator.s3_client().get_object(Bucket="oidc-demo", Key=f"{p[10:]}/a.txt")
    assert obj["Body"].read() == b"hello edito"
    fs.rm(f"{p}/a.txt")
    assert not fs.exists(f"{p}/a.txt")
    with pytest.raises(FileNotFoundError):
        fs.cat_file(f"{p}/missing")


def test_put_get_multipart(edito_emulator, edito_prefix, tmp_path):
    fs = make_edito_fs(edito_emulator, default_block_size=5 * 2**20)
    data = os.urandom(12 * 2**20 + 5)
    local = tmp_path / "big.bin"
    local.write_bytes(data)
    fs.put_file(str(local), f"{edito_prefix}/big.bin")
    with fs.open(f"{edito_prefix}/w.bin", "wb", block_size=5 * 2**20) as fh:
        fh.write(data)
    fs.get_file(f"{edito_prefix}/w.bin", str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == data
    assert (
        fs.cat_file(f"{edito_prefix}/big.bin", start=2**20, end=2**20 + 10)
        == data[2**20 : 2**20 + 10]
    )


def test_other_users_bucket_is_refused(edito_fs):
    with pytest.raises(PermissionError):
        edito_fs.ls("oidc-carol")


def test_fsspec_open_through_entry_point(edito_emulator, edito_prefix):
    options = edito_options(edito_emulator)
    with fsspec.open(f"edito://{edito_prefix}/t.txt", "wt", **options) as fh:
        fh.write("through fsspec")
    with fsspec.open(f"edito://{edito_prefix}/t.txt", "rt", **options) as fh:
        assert fh.read() == "through fsspec"


def test_pandas_parquet_round_trip(edito_emulator, edito_prefix):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    options = edito_options(edito_emulator)
    frame = pd.DataFrame({"depth": [0.5, 10.0, 50.0], "temp": [18.2, 14.1, 9.7]})
    frame.to_parquet(f"edito://{edito_prefix}/casts.parquet", storage_options=options)
    back = pd.read_parquet(f"edito://{edito_prefix}/casts.parquet", storage_options=options)
    assert back.equals(frame)


def test_xarray_zarr_round_trip(edito_emulator, edito_prefix):
    xr = pytest.importorskip("xarray")
    np = pytest.importorskip("numpy")
    pytest.importorskip("zarr")
    options = edito_options(edito_emulator)
    cube = xr.Dataset(
        {
            "thetao": (
                ("time", "lat", "lon"),
                np.arange(2 * 3 * 4, dtype="float32").reshape(2, 3, 4),
            )
        },
        coords={"time": [0, 1], "lat": [40.0, 41.0, 42.0], "lon": [1.0, 2.0, 3.0, 4.0]},
    )
    url = f"edito://{edito_prefix}/cube.zarr"
    cube.to_zarr(url, storage_options=options, mode="w")
    back = xr.open_zarr(url, storage_options=options)
    assert back["thetao"].values.tolist() == cube["thetao"].values.tolist()


def test_credentials_renew_during_a_long_operation():
    from remotefs.testing.edito import EditoEmulator

    with EditoEmulator(token_lifetime=3, credential_max=2) as emu:
        fs = make_edito_fs(emu)
        before = _sts_calls(emu)
        written = {}
        deadline = time.monotonic() + 5
        i = 0
        while time.monotonic() < deadline:
            written[f"oidc-demo/long/{i}.bin"] = os.urandom(1000 + i)
            fs.pipe_file(f"oidc-demo/long/{i}.bin", written[f"oidc-demo/long/{i}.bin"])
            time.sleep(0.25)
            i += 1
        for path, data in written.items():
            assert fs.cat_file(path) == data
        assert _sts_calls(emu) - before >= 3, "credentials must have been renewed several times"


def test_server_side_expiry_is_renewed_reactively(edito_emulator, edito_fs, edito_prefix):
    edito_fs.pipe_file(f"{edito_prefix}/r.txt", b"before")
    before = _sts_calls(edito_emulator)
    edito_emulator.expire_credentials()
    assert edito_fs.cat_file(f"{edito_prefix}/r.txt") == b"before"
    assert _sts_calls(edito_emulator) == before + 1


def test_bad_password_is_a_clear_permission_error(edito_emulator):
    fs = make_edito_fs(edito_emulator, password="wrong-pass-42")
    with pytest.raises(PermissionError, match="Invalid user credentials") as info:
        fs.ls("oidc-demo")
    assert "wrong-pass-42" not in str(info.value)


def test_expired_refresh_token_says_log_in_again(edito_emulator):
    fs = make_edito_fs(edito_emulator, username=None, password=None, refresh_token="stale-refresh")
    with pytest.raises(PermissionError, match="log in again") as info:
        fs.ls("oidc-demo")
    assert "stale-refresh" not in str(info.value)


def test_sts_refusal_is_a_clear_error(edito_emulator):
    from remotefs.auth.keycloak import KeycloakLogin

    # a token of the process-API client is not one MinIO accepts
    token = KeycloakLogin(edito_emulator.token_url, "onyxia", username="demo", password="demo")(
        None
    )
    with pytest.raises(AuthenticationError, match="STS refused"):
        assume_role_with_web_identity(edito_emulator.s3_url, token.access_token, region="waw3-1")


def test_a_reply_that_is_not_sts_is_refused():
    from aiohttp import web

    async def list_buckets(request):
        body = (
            '<?xml version="1.0"?><ListAllMyBucketsResult '
            'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Buckets/></ListAllMyBucketsResult>'
        )
        return web.Response(text=body, content_type="application/xml")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", list_buckets)
    with ServerThread(app) as server:
        with pytest.raises(RemoteError, match="AssumeRoleWithWebIdentityResponse"):
            assume_role_with_web_identity(server.url, "x" * 40, region="waw3-1")


def test_s3_credentials_shapes(edito_emulator):
    creds = s3_credentials(
        "demo", "demo", token_url=edito_emulator.token_url, endpoint_url=edito_emulator.s3_url
    )
    assert creds.remaining() > 3000
    block = creds.for_process_api(edito_emulator.s3_url, "waw3-1")
    assert block["endpoint"] == edito_emulator.s3_url.split("://")[1]
    assert set(block) == {
        "enabled",
        "endpoint",
        "defaultRegion",
        "accessKeyId",
        "secretAccessKey",
        "sessionToken",
    }
    env = creds.as_environ(edito_emulator.s3_url, "waw3-1")
    assert env["AWS_ACCESS_KEY_ID"] == creds.access_key_id
    assert "://" not in env["AWS_S3_ENDPOINT"]


def test_pod_environment_variables(edito_emulator, edito_prefix, monkeypatch):
    creds = s3_credentials(
        "demo", "demo", token_url=edito_emulator.token_url, endpoint_url=edito_emulator.s3_url
    )
    for name, value in creds.as_environ(edito_emulator.s3_url, "waw3-1").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_S3_ENDPOINT", edito_emulator.s3_url)  # http on loopback
    fs = fsspec.filesystem("edito", skip_instance_cache=True)
    fs.pipe_file(f"{edito_prefix}/pod.txt", b"from a pod")
    assert fs.cat_file(f"{edito_prefix}/pod.txt") == b"from a pod"


def test_secrets_absent_from_reprs_logs_and_pickles(edito_emulator, caplog):
    caplog.set_level(logging.DEBUG)
    fs = make_edito_fs(edito_emulator, username="carol", password=CAROL_PASSWORD)
    fs.pipe_file("oidc-carol/secret-test.txt", b"x")
    creds = fs.credentials.current
    token = fs.credentials.tokens.token
    secrets = [
        CAROL_PASSWORD,
        creds.secret_access_key,
        creds.session_token,
        token.access_token,
        token.refresh_token,
    ]
    texts = [repr(fs), repr(fs.credentials), repr(creds), str(fs.storage_options), caplog.text]
    for text in texts:
        for secret in secrets:
            assert secret not in text
    assert CAROL_PASSWORD.encode() not in pickle.dumps(fs)


def test_pickle_round_trip(edito_fs, edito_prefix):
    edito_fs.pipe_file(f"{edito_prefix}/p.txt", b"pickled")
    clone = pickle.loads(pickle.dumps(edito_fs))
    assert clone is not edito_fs and clone.credentials.password is None
    assert clone.cat_file(f"{edito_prefix}/p.txt") == b"pickled"


@pytest.mark.slow
def test_dask_process_workers_read_edito(edito_emulator, edito_fs, edito_prefix):
    dd = pytest.importorskip("dask.dataframe")
    distributed = pytest.importorskip("distributed")
    for part in range(3):
        rows = "\n".join(f"{part},{i}" for i in range(20))
        edito_fs.pipe_file(f"{edito_prefix}/part-{part}.csv", ("part,i\n" + rows + "\n").encode())
    options = edito_options(edito_emulator)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        frame = dd.read_csv(f"edito://{edito_prefix}/part-*.csv", storage_options=options)
        assert int(frame["i"].sum().compute()) == 3 * sum(range(20))
