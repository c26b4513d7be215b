"""The EDITO emulator (Keycloak, MinIO-like STS, S3 front over moto), over real loopback sockets.

The first test runs the seed notebook's own ``login``, ``refresh_token`` and ``auth_s3`` functions,
pasted unchanged (only the endpoint globals point at the emulator); the others pin the protocol
details of docs/emulators.md and the reference with boto3, s3fs, PyJWT and plain requests.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import boto3
import jwt
import psutil
import pytest
import requests
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from edito_seed import SEED_CELLS, run_seed

from remotefs.testing.edito import EditoEmulator

STS_NS = "{https://sts.amazonaws.com/doc/2011-06-15/}"
S3_CONFIG = {
    "s3": {"addressing_style": "path"},
    "request_checksum_calculation": "when_required",
    "response_checksum_validation": "when_required",
}
USERS = {"demo": "demo", "other": "other-pw"}


@pytest.fixture(scope="module")
def emu() -> Iterator[EditoEmulator]:
    """One emulator for the module (users demo and other)."""
    with EditoEmulator(users=USERS, seed=7) as emulator:
        yield emulator


def token(emu: EditoEmulator, client_id: str = "onyxia-minio", user: str = "demo") -> str:
    """A fresh access token of `client_id`."""
    data = {"client_id": client_id, "grant_type": "password", "username": user}
    rsp = requests.post(emu.token_url, data={**data, "password": USERS.get(user, user)})
    assert rsp.status_code == 200, rsp.text
    return str(rsp.json()["access_token"])


def sts_form(emu: EditoEmulator, **params: str) -> requests.Response:
    """An STS call with the parameters in a form body (boto3's form)."""
    form = {"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15", **params}
    return requests.post(emu.s3_url, data=form)


def credentials(emu: EditoEmulator, user: str = "demo", **params: str) -> dict[str, str]:
    """STS keys of `user` as boto3 keyword arguments."""
    rsp = sts_form(emu, WebIdentityToken=token(emu, user=user), **params)
    assert rsp.status_code == 200, rsp.text
    creds = ElementTree.fromstring(rsp.content).find(f".//{STS_NS}Credentials")
    assert creds is not None

    def field(name: str) -> str:
        return str(creds.findtext(STS_NS + name))

    return {
        "aws_access_key_id": field("AccessKeyId"),
        "aws_secret_access_key": field("SecretAccessKey"),
        "aws_session_token": field("SessionToken"),
    }


def s3(emu: EditoEmulator, **keys: str) -> Any:
    """A boto3 S3 client on the front, as EDITO users configure it."""
    return boto3.client(
        "s3", endpoint_url=emu.s3_url, region_name="waw3-1", config=Config(**S3_CONFIG), **keys
    )


def error_code(call: Any) -> tuple[int, str]:
    """(HTTP status, error code) of a boto3 call that must fail."""
    with pytest.raises(ClientError) as info:
        call()
    response: dict[str, Any] = info.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


def sts_error(rsp: requests.Response) -> tuple[int, str]:
    """(HTTP status, code) of an STS ``ErrorResponse``, checking its shape."""
    root = ElementTree.fromstring(rsp.content)
    assert root.tag == f"{STS_NS}ErrorResponse"
    assert root.findtext(f"{STS_NS}Error/{STS_NS}Message")
    assert root.find(f"{STS_NS}Error/{STS_NS}Type") is not None
    assert root.findtext(f"{STS_NS}RequestId")
    return rsp.status_code, str(root.findtext(f"{STS_NS}Error/{STS_NS}Code"))


def expiration(rsp: requests.Response) -> dt.datetime:
    """The ``Expiration`` of an STS answer."""
    text = ElementTree.fromstring(rsp.content).findtext(f".//{STS_NS}Expiration")
    assert text is not None and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", text), text
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z")


def from_now(seconds: float) -> dt.datetime:
    """The UTC time `seconds` from now."""
    return dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds)


def test_seed_login_refresh_and_s3_credentials(emu: EditoEmulator) -> None:
    # the seed's import, configuration and authentication cells, pointed at the emulator
    seed = run_seed(SEED_CELLS[:3], minio_endpoint=emu.s3_url, token_endpoint=emu.token_url)
    login, refresh_token, auth_s3 = seed["login"], seed["refresh_token"], seed["auth_s3"]
    auth_data = login("demo", "demo")
    assert auth_data is not None
    assert auth_data["token_type"] == "Bearer" and auth_data["expires_in"] == 300
    first_refresh = auth_data["refresh_token"]
    auth_data = refresh_token(auth_data["refresh_token"])
    assert auth_data is not None and auth_data["refresh_token"] != first_refresh
    assert login("demo", "wrong") is None
    assert refresh_token("not-a-token") is None

    s3_credentials = auth_s3("demo", "demo")
    sts_calls = [r for r in emu.requests if r[0] == "sts"]
    assert sts_calls[-1][1] == "POST" and "Action=AssumeRoleWithWebIdentity" in sts_calls[-1][2]
    client = s3(
        emu,
        aws_access_key_id=s3_credentials["access_key_id"],
        aws_secret_access_key=s3_credentials["secret_access_key"],
        aws_session_token=s3_credentials["session_token"],
    )
    client.put_object(Bucket="oidc-demo", Key="seed/hello.txt", Body=b"hello EDITO")
    body = client.get_object(Bucket="oidc-demo", Key="seed/hello.txt")["Body"].read()
    assert body == b"hello EDITO"
    stored = emu.s3_client().get_object(Bucket="oidc-demo", Key="seed/hello.txt")
    assert stored["Body"].read() == b"hello EDITO"


# -- Keycloak --------------------------------------------------------------------------------------


def test_token_response_shape_and_errors(emu: EditoEmulator) -> None:
    form = {"client_id": "onyxia", "grant_type": "password", "username": "demo"}
    rsp = requests.post(emu.token_url, data={**form, "password": "demo", "scope": "openid"})
    assert rsp.status_code == 200 and rsp.headers["Cache-Control"] == "no-store"
    body = rsp.json()
    assert set(body) == {
        "access_token",
        "expires_in",
        "refresh_expires_in",
        "refresh_token",
        "token_type",
        "not-before-policy",
        "session_state",
        "scope",
        "id_token",
    }
    assert body["token_type"] == "Bearer" and body["not-before-policy"] == 0
    assert body["expires_in"] == 300 and body["refresh_expires_in"] == 1800
    assert body["scope"].split()[0] == "openid"
    no_openid = requests.post(emu.token_url, data={**form, "password": "demo"}).json()
    assert "id_token" not in no_openid

    refresh = {"client_id": "onyxia", "grant_type": "refresh_token"}
    again = {**refresh, "refresh_token": body["refresh_token"]}
    refreshed = requests.post(emu.token_url, data=again).json()
    assert refreshed["refresh_token"] != body["refresh_token"]
    assert refreshed["session_state"] == body["session_state"]
    assert requests.post(emu.token_url, data=again).status_code == 200  # old one still valid
    other_client = requests.post(emu.token_url, data={**again, "client_id": "edito"})
    assert other_client.status_code == 400 and other_client.json()["error"] == "invalid_grant"

    bad = requests.post(emu.token_url, data={**form, "password": "wrong"})
    assert bad.status_code == 401
    assert bad.json() == {"error": "invalid_grant", "error_description": "Invalid user credentials"}
    garbage = requests.post(emu.token_url, data={**again, "refresh_token": "garbage"})
    assert garbage.status_code == 400
    assert garbage.json() == {
        "error": "invalid_grant",
        "error_description": "Invalid refresh token",
    }
    unknown = requests.post(emu.token_url, data={**form, "password": "demo", "client_id": "x"})
    assert unknown.status_code == 401 and unknown.json() == {
        "error": "invalid_client",
        "error_description": "Invalid client or Invalid client credentials",
    }
    for grant in ({}, {"grant_type": "client_credentials"}):
        rsp = requests.post(emu.token_url, data={"client_id": "onyxia", **grant})
        assert rsp.status_code == 400 and rsp.json()["error"] == "unsupported_grant_type"
    wrong_realm = emu.token_url.replace("/datalab/", "/other/")
    assert requests.post(wrong_realm, data={**form, "password": "demo"}).status_code == 404


def test_offline_access_gives_a_refresh_token_that_does_not_expire(emu: EditoEmulator) -> None:
    form = {"client_id": "edito", "grant_type": "password", "username": "demo", "password": "demo"}
    body = requests.post(emu.token_url, data={**form, "scope": "openid offline_access"}).json()
    assert body["refresh_expires_in"] == 0
    claims = jwt.decode(body["refresh_token"], options={"verify_signature": False})
    assert claims["typ"] == "Offline" and "exp" not in claims


def test_access_token_verifies_against_the_jwks(emu: EditoEmulator) -> None:
    issuer = f"{emu.auth_url}/auth/realms/datalab"
    discovery = requests.get(f"{issuer}/.well-known/openid-configuration").json()
    assert discovery["issuer"] == issuer and discovery["jwks_uri"] == emu.jwks_url
    assert discovery["token_endpoint"] == emu.token_url
    assert {"password", "refresh_token"} <= set(discovery["grant_types_supported"])
    keys = requests.get(emu.jwks_url).json()["keys"]
    assert len(keys) == 1 and keys[0]["kty"] == "RSA" and "d" not in keys[0]

    access = token(emu)
    header = jwt.get_unverified_header(access)
    assert header["typ"] == "JWT" and header["alg"] == "RS256" and header["kid"] == keys[0]["kid"]
    key = jwt.PyJWKClient(emu.jwks_url).get_signing_key_from_jwt(access)
    claims = jwt.decode(access, key.key, algorithms=["RS256"], audience="minio", issuer=issuer)
    assert claims["azp"] == "onyxia-minio" and claims["policy"] == "stsonly"
    assert claims["preferred_username"] == "demo" and claims["typ"] == "Bearer"
    assert claims["exp"] - claims["iat"] in (300, 301)
    assert {"sub", "email", "scope", "jti"} <= set(claims)
    onyxia = token(emu, "onyxia")
    claims = jwt.decode(onyxia, key.key, algorithms=["RS256"], audience="account", issuer=issuer)
    assert claims["azp"] == "onyxia" and "policy" not in claims


# -- STS -------------------------------------------------------------------------------------------


def test_boto3_sts_and_the_xml_shape(emu: EditoEmulator) -> None:
    sts = boto3.client(
        "sts",
        endpoint_url=emu.s3_url,
        region_name="waw3-1",
        config=Config(signature_version=UNSIGNED),
    )
    reply = sts.assume_role_with_web_identity(
        RoleArn="arn:aws:iam::123456789012:role/any",
        RoleSessionName="remotefs",
        WebIdentityToken=token(emu),
        DurationSeconds=900,
    )
    creds = reply["Credentials"]
    assert re.fullmatch(r"[A-Z0-9]{20}", creds["AccessKeyId"])
    assert len(creds["SecretAccessKey"]) == 40 and len(creds["SessionToken"]) > 100
    assert abs((creds["Expiration"] - from_now(900)).total_seconds()) < 3

    rsp = sts_form(emu, WebIdentityToken=token(emu))  # no DurationSeconds: 3600
    assert rsp.status_code == 200 and rsp.headers["Content-Type"].startswith("text/xml")
    root = ElementTree.fromstring(rsp.content)
    assert root.tag == f"{STS_NS}AssumeRoleWithWebIdentityResponse"
    result = root.find(f"{STS_NS}AssumeRoleWithWebIdentityResult")
    assert result is not None and result.find(f"{STS_NS}AssumedRoleUser/{STS_NS}Arn") is not None
    fields = [e.tag.removeprefix(STS_NS) for e in result.find(f"{STS_NS}Credentials") or []]
    assert fields == ["AccessKeyId", "SecretAccessKey", "Expiration", "SessionToken"]
    assert root.find(f"{STS_NS}ResponseMetadata") is not None
    assert abs((expiration(rsp) - from_now(3600)).total_seconds()) < 3


def test_sts_errors(emu: EditoEmulator) -> None:
    assert sts_error(sts_form(emu, WebIdentityToken=token(emu, "onyxia"))) == (
        400,
        "InvalidClientGrantsToken",
    )
    assert sts_error(sts_form(emu, WebIdentityToken="not.a.jwt")) == (
        400,
        "InvalidClientGrantsToken",
    )
    forged = jwt.encode({"azp": "onyxia-minio", "aud": "minio"}, "k" * 32, algorithm="HS256")
    assert sts_error(sts_form(emu, WebIdentityToken=forged)) == (400, "InvalidClientGrantsToken")
    assert sts_error(sts_form(emu, WebIdentityToken=token(emu), DurationSeconds="100")) == (
        400,
        "InvalidParameterValue",
    )
    assert sts_error(sts_form(emu, WebIdentityToken=token(emu), DurationSeconds="99999999")) == (
        400,
        "InvalidParameterValue",
    )
    assert sts_error(sts_form(emu)) == (400, "MissingParameter")
    no_version = {"Action": "AssumeRoleWithWebIdentity", "WebIdentityToken": token(emu)}
    assert sts_error(requests.post(emu.s3_url, params=no_version)) == (400, "MissingParameter")
    assert sts_error(requests.post(emu.s3_url, data=no_version)) == (400, "MissingParameter")
    bad_policy = sts_form(emu, WebIdentityToken=token(emu), Policy="{not json")
    assert sts_error(bad_policy) == (400, "MalformedPolicyDocument")

    stale = token(emu)
    emu.expire_tokens()
    assert sts_error(sts_form(emu, WebIdentityToken=stale)) == (400, "ExpiredToken")
    assert sts_form(emu, WebIdentityToken=token(emu)).status_code == 200


def test_short_lifetimes_expire_for_real() -> None:
    with EditoEmulator(token_lifetime=1, refresh_lifetime=1, credential_max=2) as short:
        form = {"client_id": "onyxia", "grant_type": "password", "username": "demo"}
        tokens = requests.post(short.token_url, data={**form, "password": "demo"}).json()
        web_token = token(short)
        rsp = sts_form(short, WebIdentityToken=web_token, DurationSeconds="86400")
        assert rsp.status_code == 200
        assert abs((expiration(rsp) - from_now(2)).total_seconds()) < 2
        keys = credentials(short)
        client = s3(short, **keys)
        client.put_object(Bucket="oidc-demo", Key="k", Body=b"v")
        time.sleep(2.2)
        assert error_code(lambda: client.get_object(Bucket="oidc-demo", Key="k")) == (
            400,
            "ExpiredToken",
        )
        assert sts_error(sts_form(short, WebIdentityToken=web_token)) == (400, "ExpiredToken")
        refresh = {"client_id": "onyxia", "grant_type": "refresh_token"}
        rsp = requests.post(
            short.token_url, data={**refresh, "refresh_token": tokens["refresh_token"]}
        )
        assert rsp.status_code == 400
        assert rsp.json() == {"error": "invalid_grant", "error_description": "Token is not active"}


# -- S3 front --------------------------------------------------------------------------------------


def test_credentials_and_policy_are_enforced(emu: EditoEmulator) -> None:
    keys = credentials(emu)
    client = s3(emu, **keys)
    admin = emu.s3_client()
    admin.put_object(Bucket="oidc-other", Key="private.txt", Body=b"secret")
    admin.put_object(Bucket="oidc-other", Key="public/open.txt", Body=b"for all")
    assert emu.bucket("other") == "oidc-other"

    assert error_code(lambda: client.get_object(Bucket="oidc-other", Key="private.txt")) == (
        403,
        "AccessDenied",
    )
    assert error_code(lambda: client.put_object(Bucket="oidc-other", Key="x", Body=b"")) == (
        403,
        "AccessDenied",
    )
    assert [b["Name"] for b in client.list_buckets()["Buckets"]] == ["oidc-demo"]
    assert (
        client.get_object(Bucket="oidc-other", Key="public/open.txt")["Body"].read() == b"for all"
    )

    assert requests.get(f"{emu.s3_url}/oidc-other/public/open.txt").content == b"for all"
    assert requests.head(f"{emu.s3_url}/oidc-other/public/open.txt").status_code == 200
    anonymous = requests.get(f"{emu.s3_url}/oidc-other/private.txt")
    assert anonymous.status_code == 403 and "<Code>AccessDenied</Code>" in anonymous.text
    assert requests.put(f"{emu.s3_url}/oidc-other/public/new", data=b"x").status_code == 403

    wrong_secret = s3(emu, **{**keys, "aws_secret_access_key": "x" * 40})
    assert error_code(lambda: wrong_secret.list_objects_v2(Bucket="oidc-demo")) == (
        403,
        "SignatureDoesNotMatch",
    )
    unknown = s3(emu, **{**keys, "aws_access_key_id": "A" * 20})
    assert error_code(lambda: unknown.list_objects_v2(Bucket="oidc-demo")) == (
        403,
        "InvalidAccessKeyId",
    )
    other_token = s3(emu, **{**keys, "aws_session_token": credentials(emu)["aws_session_token"]})
    assert error_code(lambda: other_token.list_objects_v2(Bucket="oidc-demo")) == (
        403,
        "InvalidAccessKeyId",
    )

    client.put_object(Bucket="oidc-demo", Key="dir/a b+c.txt", Body=b"0123456789")
    url = client.generate_presigned_url(
        "get_object", Params={"Bucket": "oidc-demo", "Key": "dir/a b+c.txt"}
    )
    assert requests.get(url).content == b"0123456789"
    ranged = client.get_object(Bucket="oidc-demo", Key="dir/a b+c.txt", Range="bytes=2-5")
    assert ranged["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert ranged["ContentRange"] == "bytes 2-5/10" and ranged["Body"].read() == b"2345"
    head = client.head_object(Bucket="oidc-demo", Key="dir/a b+c.txt")
    assert head["ContentLength"] == 10 and head["ETag"].strip('"')
    assert error_code(lambda: client.head_object(Bucket="oidc-demo", Key="missing")) == (
        404,
        "404",
    )

    copy = {"Bucket": "oidc-demo", "Key": "copied"}
    client.copy_object(**copy, CopySource={"Bucket": "oidc-other", "Key": "public/open.txt"})
    stolen = {"Bucket": "oidc-other", "Key": "private.txt"}
    assert error_code(lambda: client.copy_object(**copy, CopySource=stolen)) == (
        403,
        "AccessDenied",
    )

    emu.expire_credentials()
    assert error_code(lambda: client.get_object(Bucket="oidc-demo", Key="dir/a b+c.txt")) == (
        400,
        "ExpiredToken",
    )
    assert requests.get(url).status_code == 400
    fresh = s3(emu, **credentials(emu))
    assert fresh.get_object(Bucket="oidc-demo", Key="dir/a b+c.txt")["Body"].read() == b"0123456789"


def test_presigned_urls_expire_and_only_sigv4_is_accepted(emu: EditoEmulator) -> None:
    client = s3(emu, **credentials(emu))
    client.put_object(Bucket="oidc-demo", Key="soon.txt", Body=b"soon")
    params = {"Bucket": "oidc-demo", "Key": "soon.txt"}
    url = client.generate_presigned_url("get_object", Params=params, ExpiresIn=1)
    signed_at = time.monotonic()
    assert requests.get(url).content == b"soon"
    sigv2 = requests.get(f"{emu.s3_url}/oidc-demo/soon.txt", headers={"Authorization": "AWS k:s"})
    assert sigv2.status_code == 400 and "<Code>InvalidRequest</Code>" in sigv2.text
    time.sleep(max(0.0, 2.1 - (time.monotonic() - signed_at)))
    late = requests.get(url)
    assert late.status_code == 403 and "Request has expired" in late.text


def test_moto_quirks_are_smoothed(emu: EditoEmulator) -> None:
    def multipart(client: Any, key: str) -> dict[str, str]:
        started = client.create_multipart_upload(Bucket="oidc-demo", Key=key)
        upload = {"Bucket": "oidc-demo", "Key": key, "UploadId": started["UploadId"]}
        part = client.upload_part(**upload, PartNumber=1, Body=b"part")
        parts = {"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]}
        done = client.complete_multipart_upload(**upload, MultipartUpload=parts)
        headers: dict[str, str] = done["ResponseMetadata"]["HTTPHeaders"]
        return headers

    assert multipart(emu.s3_client(), "direct")["x-amz-version-id"] == "null"
    through_front = multipart(s3(emu, **credentials(emu)), "front")
    assert "x-amz-version-id" not in through_front
    assert "," not in through_front["server"]  # one Server header, not moto's two

    default_checksums = boto3.client(
        "s3", endpoint_url=emu.s3_url, region_name="waw3-1", **credentials(emu)
    )
    default_checksums.put_object(Bucket="oidc-demo", Key="crc", Body=b"checked")
    assert default_checksums.get_object(Bucket="oidc-demo", Key="crc")["Body"].read() == b"checked"


def test_s3fs_through_the_front(emu: EditoEmulator) -> None:
    s3fs = pytest.importorskip("s3fs")
    keys = credentials(emu)
    fs = s3fs.S3FileSystem(
        key=keys["aws_access_key_id"],
        secret=keys["aws_secret_access_key"],
        token=keys["aws_session_token"],
        endpoint_url=emu.s3_url,
        client_kwargs={"region_name": "waw3-1"},
        config_kwargs=S3_CONFIG,
        skip_instance_cache=True,
    )
    fs.pipe("oidc-demo/fs/data.bin", bytes(range(256)) * 100)
    assert fs.ls("oidc-demo/fs", detail=False) == ["oidc-demo/fs/data.bin"]
    assert fs.cat("oidc-demo/fs/data.bin") == bytes(range(256)) * 100
    assert fs.cat_file("oidc-demo/fs/data.bin", start=10, end=20) == bytes(range(10, 20))
    with fs.open("oidc-demo/fs/data.bin", "rb", block_size=1000) as f:
        f.seek(25_000)
        assert f.read(10) == bytes(range(168, 178))
    with fs.open("oidc-demo/fs/multi.bin", "wb", block_size=5 * 2**20) as f:
        f.write(b"m" * (11 * 2**20))
    assert fs.size("oidc-demo/fs/multi.bin") == 11 * 2**20
    fs.rm("oidc-demo/fs", recursive=True)
    assert not fs.exists("oidc-demo/fs/data.bin")
    with pytest.raises(PermissionError):
        fs.ls("oidc-other")


def test_rclone_through_the_front(emu: EditoEmulator, tmp_path: Path) -> None:
    if shutil.which("rclone") is None:
        pytest.skip("rclone is not installed")
    keys = credentials(emu)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_"))}
    env.update(
        RCLONE_CONFIG=str(tmp_path / "rclone.conf"),
        RCLONE_CONFIG_EDITO_TYPE="s3",
        RCLONE_CONFIG_EDITO_PROVIDER="Minio",
        RCLONE_CONFIG_EDITO_ENDPOINT=emu.s3_url,
        RCLONE_CONFIG_EDITO_REGION="waw3-1",
        RCLONE_CONFIG_EDITO_ACCESS_KEY_ID=keys["aws_access_key_id"],
        RCLONE_CONFIG_EDITO_SECRET_ACCESS_KEY=keys["aws_secret_access_key"],
        RCLONE_CONFIG_EDITO_SESSION_TOKEN=keys["aws_session_token"],
    )

    def rclone(*args: str) -> str:
        done = subprocess.run(
            ["rclone", "--retries", "1", "--low-level-retries", "1", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    source = tmp_path / "up.bin"
    source.write_bytes(os.urandom(12 * 2**20))  # multipart: rclone's chunks are 5 MiB
    rclone("copyto", str(source), "edito:oidc-demo/rclone/up.bin")
    assert "rclone/up.bin" in rclone("ls", "edito:oidc-demo")
    assert rclone("lsd", "edito:").split()[-1] == "oidc-demo"
    rclone("copyto", "edito:oidc-demo/rclone/up.bin", str(tmp_path / "down.bin"))
    assert (tmp_path / "down.bin").read_bytes() == source.read_bytes()
    rclone("purge", "edito:oidc-demo/rclone")
    assert "rclone/" not in rclone("ls", "edito:oidc-demo")


def test_fault_injection_hits_s3_but_not_sts(emu: EditoEmulator) -> None:
    keys = credentials(emu)
    client = s3(emu, **keys)
    client.put_object(Bucket="oidc-demo", Key="faulty.bin", Body=b"x" * 1000)
    url = client.generate_presigned_url(
        "get_object", Params={"Bucket": "oidc-demo", "Key": "faulty.bin"}
    )
    before = emu.fault_injector.injected
    emu.fault_injector.fail_rate = 1.0
    outcomes = set()
    try:
        for _ in range(20):
            try:
                rsp = requests.get(url)
                outcomes.add(rsp.status_code)
            except requests.exceptions.ChunkedEncodingError:
                outcomes.add("cut")
        assert sts_form(emu, WebIdentityToken=token(emu)).status_code == 200
    finally:
        emu.fault_injector.fail_rate = 0.0
    assert outcomes == {503, "cut"}
    assert emu.fault_injector.injected - before == 20
    assert requests.get(url).content == b"x" * 1000


def test_request_log_names_the_service(emu: EditoEmulator) -> None:
    start = len(emu.requests)
    credentials(emu)
    requests.get(f"{emu.s3_url}/oidc-demo/public/none")
    services = [service for service, _, _ in emu.requests[start:]]
    assert services == ["auth", "sts", "s3"]
    assert emu.requests[-1] == ("s3", "GET", "/oidc-demo/public/none")


def test_user_names_must_make_bucket_names() -> None:
    with pytest.raises(ValueError, match="bucket"):
        EditoEmulator(users={"Bad_User": "pw"})


# -- command line ----------------------------------------------------------------------------------


def test_cli_serves_streams_large_bodies_and_exits_cleanly(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "remotefs.testing.cli",
        "edito",
        "--user",
        "alice:pw",
        "--credential-max",
        "3600",
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        ready = json.loads(line)
        assert list(ready) == ["token_url", "s3_url", "processes_url"]
        listed = requests.get(ready["processes_url"] + "/processes").json()["processes"]
        assert "data-pre-post-processing-iliad-helloworld-0.0.21" in [p["id"] for p in listed]
        assert ready["token_url"].endswith("/auth/realms/datalab/protocol/openid-connect/token")
        server = psutil.Process(proc.pid)
        moto = server.children()
        assert len(moto) == 1 and moto[0].is_running()

        data = {"client_id": "onyxia-minio", "grant_type": "password", "username": "alice"}
        access = requests.post(ready["token_url"], data={**data, "password": "pw"}).json()
        form = {"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15"}
        rsp = requests.post(
            ready["s3_url"], data={**form, "WebIdentityToken": access["access_token"]}
        )
        creds = ElementTree.fromstring(rsp.content).find(f".//{STS_NS}Credentials")
        assert creds is not None
        client = boto3.client(
            "s3",
            endpoint_url=ready["s3_url"],
            region_name="waw3-1",
            config=Config(**S3_CONFIG),
            aws_access_key_id=creds.findtext(f"{STS_NS}AccessKeyId"),
            aws_secret_access_key=creds.findtext(f"{STS_NS}SecretAccessKey"),
            aws_session_token=creds.findtext(f"{STS_NS}SessionToken"),
        )
        big = tmp_path / "big.bin"
        size = 64 * 2**20
        big.write_bytes(os.urandom(2**20) * 64)
        params = {"Bucket": "oidc-alice", "Key": "big.bin"}

        peak = [server.memory_info().rss]
        baseline = peak[0]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], server.memory_info().rss)
                time.sleep(0.01)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            with big.open("rb") as body:
                put = requests.put(
                    client.generate_presigned_url("put_object", Params=params), data=body
                )
            assert put.status_code == 200, put.text
            received = 0
            get_url = client.generate_presigned_url("get_object", Params=params)
            with requests.get(get_url, stream=True) as rsp:
                assert rsp.headers["Content-Length"] == str(size)
                for chunk in rsp.iter_content(2**20):
                    received += len(chunk)
        finally:
            done.set()
            sampler.join()
        assert received == size
        assert peak[0] - baseline < 24 * 2**20, f"front grew by {(peak[0] - baseline) >> 20} MiB"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert out == ""
    psutil.wait_procs(moto, timeout=5)
    assert not moto[0].is_running()
