"""The Agave v2 emulator, driven over real loopback sockets with `requests`.

The first test is the seed notebook's own request code, unchanged except for the base URL and the
credentials (hence its ``str.format`` calls and layout); the others pin the protocol details of
docs/emulators.md and the reference.
"""
# ruff: noqa: UP032

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from remotefs.testing.agave import AgaveEmulator
from remotefs.testing.server import ServerThread

SYS = "cic.storage"
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$")
MakeServer = Callable[..., tuple[AgaveEmulator, str]]


@pytest.fixture
def make_server() -> Iterator[MakeServer]:
    """Start emulators on port 0; all are stopped and removed after the test."""
    started: list[tuple[AgaveEmulator, ServerThread]] = []

    def make(**kwargs: Any) -> tuple[AgaveEmulator, str]:
        kwargs.setdefault("users", {"demo": "demo", "other": "other"})
        emu = AgaveEmulator(**kwargs)
        server = ServerThread(emu.make_app()).start()
        started.append((emu, server))
        return emu, server.url

    yield make
    for emu, server in started:
        server.stop()
        emu.close()


@pytest.fixture
def agave(make_server: MakeServer) -> tuple[AgaveEmulator, str]:
    """A default emulator (users demo and other)."""
    return make_server()


def new_client(url: str, user: str = "demo", password: str = "demo") -> tuple[str, str]:
    """Create an OAuth client; return (key, secret)."""
    name = f"c{time.monotonic_ns()}"
    rsp = requests.post(f"{url}/clients/v2", data={"clientName": name}, auth=(user, password))
    assert rsp.status_code == 201, rsp.text
    return rsp.json()["result"]["consumerKey"], rsp.json()["result"]["consumerSecret"]


def login(url: str, user: str = "demo", password: str = "demo") -> dict[str, str]:
    """Bearer headers for `user`."""
    data = {"grant_type": "password", "username": user, "password": password}
    rsp = requests.post(f"{url}/token", data=data, auth=new_client(url, user, password))
    assert rsp.status_code == 200, rsp.text
    return {"Authorization": f"Bearer {rsp.json()['access_token']}"}


def files(url: str, endpoint: str, path: str) -> str:
    """URL of a files endpoint on the emulated system."""
    return f"{url}/files/v2/{endpoint}/system/{SYS}/{path}"


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll until `predicate()` holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def upload(url: str, headers: dict[str, str], directory: str, name: str, data: bytes) -> None:
    """Upload and wait for STAGING_COMPLETED."""
    rsp = requests.post(
        files(url, "media", directory), files={"fileToUpload": (name, data)}, headers=headers
    )
    assert rsp.status_code == 202, rsp.text
    history = rsp.json()["result"]["_links"]["history"]["href"]
    wait_for(
        lambda: (
            requests.get(history, headers=headers).json()["result"][-1]["status"]
            == "STAGING_COMPLETED"
        )
    )


# -- the seed notebook -----------------------------------------------------------------------------


# fmt: off
def test_seed_notebook_runs_unchanged(
    make_server: MakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _, url = make_server(users={"jstubbs": "tacc-password"}, staging_delay=0.3)
    base_url = url
    username = "jstubbs"
    password = "tacc-password"

    rsp = requests.get(url="{}/clients/v2".format(base_url), auth=(username, password))
    assert rsp.status_code == 200
    assert rsp.json()["message"] == "Clients retrieved successfully."
    assert all("consumerSecret" not in c for c in rsp.json()["result"])

    client_name = "cic_institute"
    data = {"clientName": client_name}
    rsp = requests.post(url="{}/clients/v2".format(base_url), data=data, auth=(username, password))
    assert rsp.status_code == 201
    created = rsp.json()
    assert created["message"] == "Client created successfully."
    assert created["status"] == "success" and created["version"] == "2.0.0-SNAPSHOT-rc3fad"
    assert set(created["result"]) == {
        "_links", "callbackUrl", "consumerKey", "consumerSecret", "description", "name", "tier"
    }
    assert created["result"]["tier"] == "Unlimited"
    assert created["result"]["_links"]["subscriber"]["href"] == f"{url}/profiles/v2/jstubbs"
    key = rsp.json()["result"]["consumerKey"]
    secret = rsp.json()["result"]["consumerSecret"]

    data = {"username": username, "password": password, "grant_type": "password",
            "scope": "PRODUCTION"}
    rsp = requests.post("{}/token".format(base_url), data=data, auth=(key, secret))
    assert rsp.status_code == 200
    assert set(rsp.json()) == {"access_token", "expires_in", "refresh_token", "scope", "token_type"}
    assert rsp.json()["expires_in"] == 14400 and rsp.json()["scope"] == "default"
    access_token = rsp.json()["access_token"]
    refresh_token = rsp.json()["refresh_token"]
    assert refresh_token

    headers = {"Authorization": "Bearer {}".format(access_token)}
    rsp = requests.get(url="{}/profiles/v2/me".format(base_url), headers=headers)
    assert rsp.status_code == 200
    assert rsp.json()["message"] == "User details retrieved successfully."
    assert set(rsp.json()["result"]) == {
        "create_time", "email", "first_name", "full_name", "last_name", "mobile_phone", "phone",
        "status", "username",
    }
    assert rsp.json()["result"]["username"] == "jstubbs"

    system_id = "cic.storage"
    rsp = requests.get("{}/files/v2/listings/system/{}/{}".format(base_url, system_id, username),
                       headers=headers)
    assert rsp.status_code == 200
    home = rsp.json()["result"]
    assert [e["name"] for e in home] == ["."]
    assert home[0]["path"] == "/home/jstubbs" and home[0]["permissions"] == "ALL"
    home_href = f"{url}/files/v2/media/system/cic.storage//home/jstubbs"
    assert home[0]["_links"]["self"]["href"] == home_href
    assert set(home[0]["_links"]) == {"history", "metadata", "self", "system"}

    data = {"action": "mkdir", "path": "test"}
    rsp = requests.put(url="{}/files/v2/media/system/{}/{}".format(base_url, system_id, username),
                       data=data, headers=headers)
    assert rsp.status_code == 201
    made = rsp.json()["result"]
    assert made["path"] == "jstubbs/test" and made["nativeFormat"] == "dir"
    assert made["status"] == "TRANSFORMING_COMPLETED" and made["source"] is None
    assert set(made) == {"_links", "internalUsername", "lastModified", "name", "nativeFormat",
                         "owner", "path", "source", "status", "systemId", "uuid"}
    assert set(made["_links"]) == {"history", "profile", "self", "system"}

    rsp = requests.get("{}/files/v2/listings/system/{}/{}".format(base_url, system_id, username),
                       headers=headers)
    assert [e["name"] for e in rsp.json()["result"]] == [".", "test"]
    rsp = requests.get("{}/files/v2/listings/system/{}/{}/test".format(base_url, system_id,
                                                                       username), headers=headers)
    listed = rsp.json()["result"]
    assert [e["name"] for e in listed] == ["."] and listed[0]["path"] == "/home/jstubbs/test"
    assert made["uuid"] in listed[0]["_links"]["metadata"]["href"]

    f = open("foo.txt", "w+")
    f.write("This is a test.")
    f.close()
    rsp = requests.post("{}/files/v2/media/system/{}/{}/test".format(base_url, system_id, username),
                        files={"fileToUpload": open("foo.txt", "rb")},
                        headers=headers)
    queued = rsp.json()["result"]
    assert rsp.status_code == 202
    assert queued["status"] == "STAGING_QUEUED" and queued["path"] == "jstubbs/test/foo.txt"
    assert queued["source"] == "http://127.0.0.1/foo.txt"
    assert queued["_links"]["notification"] == []

    shown: list[dict[str, Any]] = []
    deadline = time.monotonic() + 5
    while not shown:
        rsp = requests.get("{}/files/v2/listings/system/{}/{}/test".format(
            base_url, system_id, username), headers=headers)
        shown = [e for e in rsp.json()["result"] if e["name"] == "foo.txt"]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert shown[0]["length"] == 15 and shown[0]["mimeType"] == "text/plain"
    assert shown[0]["format"] == "raw" and shown[0]["type"] == "file"

    os.mkdir("temp")
    with open("temp/foo.txt", "wb") as f:
        rsp = requests.get("{}/files/v2/media/system/{}/{}/test/foo.txt".format(
            base_url, system_id, username), headers=headers)
        for block in rsp.iter_content(1024):
            if not block:
                break
            f.write(block)
    assert Path("temp/foo.txt").read_text() == "This is a test."
# fmt: on


# -- clients, tokens, gateway ----------------------------------------------------------------------


def test_clients_service(agave: tuple[AgaveEmulator, str]) -> None:
    _, url = agave
    assert requests.get(f"{url}/clients/v2", auth=("demo", "wrong")).status_code == 401
    bad = requests.get(f"{url}/clients/v2")
    assert bad.status_code == 401 and bad.json()["status"] == "error"
    rsp = requests.post(
        f"{url}/clients/v2/", json={"clientName": "app", "description": "d"}, auth=("demo", "demo")
    )
    assert rsp.status_code == 201 and rsp.json()["result"]["description"] == "d"
    dup = requests.post(f"{url}/clients/v2", data={"clientName": "app"}, auth=("demo", "demo"))
    assert dup.status_code == 400 and "already exists" in dup.json()["message"]
    mine = requests.get(f"{url}/clients/v2", auth=("demo", "demo")).json()["result"]
    assert {c["name"] for c in mine} == {"DefaultApplication", "app"}
    theirs = requests.get(f"{url}/clients/v2", auth=("other", "other")).json()["result"]
    assert {c["name"] for c in theirs} == {"DefaultApplication"}
    one = requests.get(f"{url}/clients/v2/app", auth=("demo", "demo")).json()["result"]
    assert one["name"] == "app" and "consumerSecret" not in one
    gone = requests.delete(f"{url}/clients/v2/app", auth=("demo", "demo"))
    assert gone.status_code == 200 and gone.json()["result"] is None
    assert requests.get(f"{url}/clients/v2/app", auth=("demo", "demo")).status_code == 404


def test_token_grants_and_rotation(agave: tuple[AgaveEmulator, str]) -> None:
    _, url = agave
    key, secret = new_client(url)
    grant = {"grant_type": "password", "username": "demo", "password": "demo"}
    bad_client = requests.post(f"{url}/token", data=grant, auth=(key, "nope"))
    assert bad_client.status_code == 401 and bad_client.json()["error"] == "invalid_client"
    wrong = requests.post(f"{url}/token", data={**grant, "password": "x"}, auth=(key, secret))
    assert wrong.status_code == 400
    assert wrong.json() == {
        "error": "invalid_grant",
        "error_description": "Authentication failed for demo",
    }
    first = requests.post(f"{url}/token", data=grant, auth=(key, secret)).json()
    refresh = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    second = requests.post(f"{url}/token", data=refresh, auth=(key, secret))
    assert second.status_code == 200
    assert second.json()["refresh_token"] != first["refresh_token"]
    reused = requests.post(f"{url}/token", data=refresh, auth=(key, secret))
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    other = requests.post(
        f"{url}/token", data={"grant_type": "client_credentials"}, auth=(key, secret)
    )
    assert other.status_code == 400 and other.json()["error"] == "unsupported_grant_type"
    for token in (first["access_token"], second.json()["access_token"]):
        me = requests.get(f"{url}/profiles/v2/me", headers={"Authorization": f"Bearer {token}"})
        assert me.json()["result"]["username"] == "demo"


def test_gateway_rejects_bad_and_expired_tokens(make_server: MakeServer) -> None:
    emu, url = make_server(token_lifetime=0.5)
    fault = requests.get(files(url, "listings", "demo"))
    assert fault.status_code == 401
    assert fault.json() == {
        "fault": {
            "code": 900901,
            "message": "Invalid Credentials",
            "description": "Access failure for API: /files/v2, version: v2 status: (900901) - "
            "Invalid Credentials. Make sure you have given the correct access token",
        }
    }
    bogus = requests.get(f"{url}/systems/v2/", headers={"Authorization": "Bearer abc"})
    assert "/systems/v2" in bogus.json()["fault"]["description"]
    key, secret = new_client(url)
    grant = {"grant_type": "password", "username": "demo", "password": "demo"}
    tokens = requests.post(f"{url}/token", data=grant, auth=(key, secret)).json()
    assert tokens["expires_in"] == 0.5
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert requests.get(f"{url}/profiles/v2/me", headers=headers).status_code == 200
    time.sleep(0.6)
    assert requests.get(f"{url}/profiles/v2/me", headers=headers).status_code == 401
    emu.auth.token_lifetime = 100
    headers = login(url)
    emu.expire_tokens()
    expired = requests.get(f"{url}/profiles/v2/me", headers=headers)
    assert expired.status_code == 401 and "fault" in expired.json()
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    fresh = requests.post(f"{url}/token", data=refresh, auth=(key, secret)).json()
    me = requests.get(
        f"{url}/profiles/v2/me", headers={"Authorization": f"Bearer {fresh['access_token']}"}
    )
    assert me.status_code == 200


# -- profiles, systems, envelope -------------------------------------------------------------------


def test_profiles_and_systems(agave: tuple[AgaveEmulator, str]) -> None:
    _, url = agave
    headers = login(url)
    other = requests.get(f"{url}/profiles/v2/other", headers=headers).json()["result"]
    assert other["email"] == "other@example.org" and other["full_name"] == "other"
    assert requests.get(f"{url}/profiles/v2/nobody", headers=headers).status_code == 404
    listed = requests.get(f"{url}/systems/v2/", headers=headers).json()["result"]
    assert [(s["id"], s["type"], s["status"], s["default"], s["public"]) for s in listed] == [
        (SYS, "STORAGE", "UP", True, False)
    ]
    for query in ("type=EXECUTION", "public=true", "default=false"):
        assert requests.get(f"{url}/systems/v2?{query}", headers=headers).json()["result"] == []
    system = requests.get(f"{url}/systems/v2/{SYS}", headers=headers).json()["result"]
    assert system["storage"]["rootDir"] == "/" and system["storage"]["homeDir"] == "/home"
    assert system["storage"]["protocol"] == "LOCAL"
    missing = requests.get(f"{url}/systems/v2/nope", headers=headers)
    assert missing.status_code == 404
    assert missing.json()["message"] == "No system found for user with id nope"


def test_envelope_query_parameters(agave: tuple[AgaveEmulator, str]) -> None:
    _, url = agave
    headers = login(url)
    naked = requests.get(f"{url}/profiles/v2/me?naked=true", headers=headers).json()
    assert naked["username"] == "demo"
    pretty = requests.get(f"{url}/profiles/v2/me?pretty=true", headers=headers).text
    assert pretty.startswith("{\n  ")
    shrunk = requests.get(files(url, "listings", "?filter=name,type"), headers=headers).json()
    assert shrunk["result"] == [
        {"name": ".", "type": "dir"},
        {"name": "demo", "type": "dir"},
        {"name": "other", "type": "dir"},
    ]
    default_system = requests.get(
        f"{url}/files/v2/listings//home?filter=name,type", headers=headers
    )
    assert default_system.json()["result"] == shrunk["result"]
    unknown = requests.get(f"{url}/nothing/v2/here", headers=headers)
    assert unknown.status_code == 404 and unknown.json()["status"] == "error"


# -- listings --------------------------------------------------------------------------------------


def test_listing_paths_permissions_and_paging(agave: tuple[AgaveEmulator, str]) -> None:
    emu, url = agave
    headers = login(url)
    home = emu.root / "home" / "demo"
    for name in ("b.csv", "a.txt", "c"):
        (home / name).write_bytes(b"12345")
    (home / "d").mkdir()

    def names(path: str, query: str = "") -> list[str]:
        rsp = requests.get(files(url, "listings", path) + query, headers=headers)
        assert rsp.status_code == 200, rsp.text
        return [e["name"] for e in rsp.json()["result"]]

    assert names("demo") == names("/home/demo") == [".", "a.txt", "b.csv", "c", "d"]
    assert names("demo", "?limit=2") == [".", "a.txt"]
    assert names("demo", "?limit=2&offset=2") == ["b.csv", "c"]
    assert names("demo", "?limit=2&offset=4") == ["d"]
    assert names("demo", "?limit=2&offset=6") == []
    assert names("") == names("/home") == [".", "demo", "other"]
    assert names("/") == [".", "home", "public"]

    entries = requests.get(files(url, "listings", "demo"), headers=headers).json()["result"]
    by_name = {e["name"]: e for e in entries}
    assert by_name["a.txt"]["mimeType"] == "text/plain"
    assert by_name["c"]["mimeType"] == "application/octet-stream"
    assert by_name["d"]["mimeType"] == "text/directory" and by_name["d"]["format"] == "folder"
    assert by_name["a.txt"]["_links"]["self"]["href"] == (
        f"{url}/files/v2/media/system/{SYS}//home/demo/a.txt"
    )
    assert all(ISO_MS.match(e["lastModified"]) for e in entries)
    assert by_name["d"]["length"] < 100

    single = requests.get(files(url, "listings", "demo/a.txt"), headers=headers).json()["result"]
    assert [(e["name"], e["path"], e["length"]) for e in single] == [
        ("a.txt", "/home/demo/a.txt", 5)
    ]

    tops = requests.get(files(url, "listings", "/home"), headers=headers).json()["result"]
    assert [e["permissions"] for e in tops] == ["READ", "ALL", "NONE"]
    public = requests.get(files(url, "listings", "/public"), headers=headers).json()["result"]
    assert [(e["name"], e["permissions"]) for e in public] == [
        (".", "READ"),
        ("README.txt", "READ"),
    ]
    denied = requests.get(files(url, "listings", "other"), headers=headers)
    assert denied.status_code == 403
    assert denied.json()["message"] == "User does not have access to view the requested resource"
    missing = requests.get(files(url, "listings", "demo/nope"), headers=headers)
    assert missing.status_code == 404 and missing.json()["message"] == "File/folder does not exist"
    system = requests.get(f"{url}/files/v2/listings/system/nope/demo", headers=headers)
    assert system.status_code == 404
    assert system.json()["message"] == "No system found for user with id nope"
    escape = requests.get(files(url, "listings", "/%2E%2E/%2E%2E"), headers=headers)
    assert escape.status_code in (400, 403)


def test_special_characters_are_decoded(agave: tuple[AgaveEmulator, str]) -> None:
    emu, url = agave
    headers = login(url)
    (emu.root / "home/demo/a b#c%d?.txt").write_bytes(b"odd")
    entries = requests.get(files(url, "listings", "demo"), headers=headers).json()["result"]
    href = entries[1]["_links"]["self"]["href"]
    assert entries[1]["name"] == "a b#c%d?.txt"
    assert requests.get(href, headers=headers).content == b"odd"


def test_permissions_listing(agave: tuple[AgaveEmulator, str]) -> None:
    _, url = agave
    headers = login(url)
    mine = requests.get(files(url, "pems", "demo"), headers=headers).json()["result"]
    assert [(p["username"], p["permission"]) for p in mine] == [
        ("demo", {"read": True, "write": True, "execute": True})
    ]
    public = requests.get(files(url, "pems", "/public"), headers=headers).json()["result"]
    assert {p["username"]: p["permission"]["write"] for p in public} == {
        "demo": False,
        "other": False,
    }
    assert requests.get(files(url, "pems", "other"), headers=headers).status_code == 403


# -- downloads -------------------------------------------------------------------------------------


def test_download_headers_ranges_and_errors(agave: tuple[AgaveEmulator, str]) -> None:
    emu, url = agave
    headers = login(url)
    data = bytes(range(256)) * 4
    (emu.root / "home/demo/blob.bin").write_bytes(data)
    link = files(url, "media", "demo/blob.bin")
    full = requests.get(link, headers=headers)
    assert full.status_code == 200 and full.content == data
    assert full.headers["Content-Length"] == "1024"
    assert full.headers["Content-Disposition"] == "inline"
    assert full.headers["Accept-Ranges"] == "bytes" and "Last-Modified" in full.headers
    assert full.headers["Content-Type"] == "application/octet-stream"
    forced = requests.get(link + "?force=true", headers=headers)
    assert forced.headers["Content-Disposition"].startswith("attachment")

    part = requests.get(link, headers={**headers, "Range": "bytes=10-19, 30-40"})
    assert part.status_code == 206 and part.content == data[10:20]
    assert part.headers["Content-Range"] == "bytes 10-19/1024"
    tail = requests.get(link, headers={**headers, "Range": "bytes=1000-"})
    assert tail.status_code == 206 and tail.content == data[1000:]
    for spec, message in [
        ("bytes=1000-1024", "Upper bound out of range of file"),
        ("bytes=1024-", "Lower bound out of range of file"),
        ("bytes=20-10", "Upper bound less than lower bound"),
    ]:
        bad = requests.get(link, headers={**headers, "Range": spec})
        assert (bad.status_code, bad.json()["message"]) == (416, message)

    head = requests.head(link, headers=headers)
    assert head.status_code == 200 and head.headers["Content-Length"] == "1024"
    assert head.content == b""
    directory = requests.get(files(url, "media", "demo"), headers=headers)
    assert directory.status_code == 501
    assert directory.json()["message"] == "Directory downloads not supported"
    assert requests.get(files(url, "media", "demo/none"), headers=headers).status_code == 404
    assert requests.get(files(url, "media", "other"), headers=headers).status_code == 403
    events = requests.get(files(url, "history", "demo/blob.bin"), headers=headers).json()
    assert [e["status"] for e in events["result"]] == ["DOWNLOAD"] * 4


def test_sibling_gzip_file_is_not_served_instead(agave: tuple[AgaveEmulator, str]) -> None:
    emu, url = agave
    headers = login(url)
    (emu.root / "home/demo/x.csv").write_bytes(b"plain")
    (emu.root / "home/demo/x.csv.gz").write_bytes(b"\x1f\x8b not this")
    rsp = requests.get(
        files(url, "media", "demo/x.csv"), headers={**headers, "Accept-Encoding": "gzip"}
    )
    assert rsp.content == b"plain" and "Content-Encoding" not in rsp.headers


# -- uploads ---------------------------------------------------------------------------------------


def test_upload_staging_and_history(make_server: MakeServer) -> None:
    emu, url = make_server(staging_delay=0.3)
    headers = login(url)
    target = emu.root / "home/demo/up.txt"
    rsp = requests.post(
        files(url, "media", "demo"),
        files={"fileToUpload": ("local.txt", b"v1")},
        data={"fileName": "up.txt", "callbackURL": "x@example.org"},
        headers=headers,
    )
    assert rsp.status_code == 202
    result = rsp.json()["result"]
    assert (result["name"], result["path"], result["status"]) == (
        "up.txt",
        "demo/up.txt",
        "STAGING_QUEUED",
    )
    assert result["source"] == "http://127.0.0.1/local.txt"
    assert not target.exists()
    assert not list((emu.root / "home/demo").iterdir())
    history = result["_links"]["history"]["href"]
    assert [e["status"] for e in requests.get(history, headers=headers).json()["result"]] == [
        "STAGING_QUEUED"
    ]
    wait_for(target.exists)
    assert target.read_bytes() == b"v1"
    events = requests.get(history, headers=headers).json()["result"]
    assert [e["status"] for e in events] == ["STAGING_QUEUED", "UPLOAD", "STAGING_COMPLETED"]
    assert events[1]["description"] == "File upload has completed"
    assert all(ISO_MS.match(e["created"]) and e["createdBy"] == "demo" for e in events)
    one = requests.get(events[0]["_links"]["self"]["href"], headers=headers).json()["result"]
    assert one["id"] == events[0]["id"]

    emu.fail_staging(lambda path: path.endswith("/up.txt"))
    requests.post(
        files(url, "media", "demo"), files={"fileToUpload": ("up.txt", b"v2")}, headers=headers
    )
    wait_for(
        lambda: (
            requests.get(history, headers=headers).json()["result"][-1]["status"]
            == "STAGING_FAILED"
        )
    )
    assert target.read_bytes() == b"v1"
    assert [e["status"] for e in requests.get(history, headers=headers).json()["result"]] == [
        "STAGING_QUEUED",
        "UPLOAD",
        "STAGING_COMPLETED",
        "STAGING_QUEUED",
        "STAGING_FAILED",
    ]
    assert not list((emu.data_dir / ".staging").iterdir())


def test_upload_errors(agave: tuple[AgaveEmulator, str]) -> None:
    emu, url = agave
    headers = login(url)
    (emu.root / "home/demo/file").write_bytes(b"")
    one = {"fileToUpload": ("a.txt", b"x")}
    cases = [
        ("demo/missing", 404, "Destination path /home/demo/missing does not exist."),
        ("demo/file", 400, "/home/demo/file is not a directory"),
        ("other", 403, "User does not have access to modify the requested resource"),
        ("/public", 403, "User does not have access to modify the requested resource"),
    ]
    for path, status, message in cases:
        rsp = requests.post(files(url, "media", path), files=one, headers=headers)
        assert (rsp.status_code, rsp.json()["message"]) == (status, message)
    wrong_part = requests.post(
        files(url, "media", "demo"), files={"file": ("a.txt", b"x")}, headers=headers
    )
    assert wrong_part.status_code == 500
    assert wrong_part.json()["message"] == "No valid URL specified"
    action = requests.post(
        files(url, "media", "demo"), data={"action": "mkdir", "path": "x"}, headers=headers
    )
    assert action.status_code == 500
    sneaky = requests.post(
        files(url, "media", "demo"),
        files=[("fileToUpload", ("a.txt", b"x")), ("fileName", (None, "../escape.txt"))],
        headers=headers,
    )
    assert sneaky.status_code == 400 and not (emu.root / "home/escape.txt").exists()
    assert not list((emu.data_dir / ".staging").iterdir())


def test_upload_name_field_after_the_file_part(agave: tuple[AgaveEmulator, str]) -> None:
    emu, url = agave
    headers = login(url)
    parts = [("fileToUpload", ("a.txt", b"late name")), ("FILENAME", (None, "b.txt"))]
    rsp = requests.post(files(url, "media", "demo"), files=parts, headers=headers)
    assert rsp.status_code == 202 and rsp.json()["result"]["name"] == "b.txt"
    wait_for((emu.root / "home/demo/b.txt").exists)
    assert (emu.root / "home/demo/b.txt").read_bytes() == b"late name"


# -- actions and delete ----------------------------------------------------------------------------


def test_mkdir_rename_copy_move(agave: tuple[AgaveEmulator, str]) -> None:
    emu, url = agave
    headers = login(url)
    home = emu.root / "home/demo"

    def put(url_path: str, **body: str) -> requests.Response:
        return requests.put(files(url, "media", url_path), data=body, headers=headers)

    assert put("demo", action="MKDIR", path="a/b").status_code == 201
    again = put("demo", action="mkdir", path="a/b")
    assert again.status_code == 200
    assert again.json()["message"] == "Directory /home/demo/a/b already exists"
    assert put("", action="mkdir", path="/home/demo/abs").status_code == 201
    assert put("", action="mkdir", path="demo/rel").status_code == 201
    (home / "a/f.txt").write_bytes(b"F")
    assert put("demo/a", action="mkdir", path="f.txt").status_code == 400
    assert put("demo", action="mkdir", path="../other/x").status_code == 403
    assert {p.name for p in home.iterdir()} == {"a", "abs", "rel"}

    renamed = put("demo/a/f.txt", action="rename", path="g.txt")
    assert renamed.status_code == 200 and renamed.json()["message"] == "Rename success"
    assert renamed.json()["result"]["path"] == "demo/a/g.txt"
    assert put("demo/a/g.txt", action="rename", path="b").status_code == 400

    copied = put("demo/a", action="copy", path="/home/demo/c")
    assert copied.status_code == 200 and copied.json()["message"] == "Copy success"
    assert (home / "c/g.txt").read_bytes() == b"F" and (home / "c/b").is_dir()
    (home / "c/extra").write_bytes(b"E")
    assert put("demo/a", action="copy", path="demo/c").status_code == 200
    assert (home / "c/extra").exists()
    assert put("demo/a", action="copy", path="demo/a").status_code == 400
    assert put("demo/a/g.txt", action="copy", path="demo/c/g.txt", append="true").status_code == 200
    assert (home / "c/g.txt").read_bytes() == b"FF"

    moved = put("demo/c", action="move", path="/home/demo/m")
    assert moved.status_code == 200 and moved.json()["message"] == "Move success"
    assert not (home / "c").exists() and (home / "m/extra").exists()
    assert put("demo/m/extra", action="move", path="demo/m/b").status_code == 400
    assert put("demo/m", action="move", path="demo/a/g.txt").status_code == 400
    assert put("demo/m/extra", action="move", path="demo/a/g.txt").status_code == 200
    assert (home / "a/g.txt").read_bytes() == b"E"
    history = requests.get(files(url, "history", "demo/m"), headers=headers).json()["result"]
    assert [e["status"] for e in history] == ["CREATED", "OVERWRITTEN", "MOVED"]

    assert put("demo/nope", action="move", path="demo/x").status_code == 404
    assert put("demo/a", action="move", path="/home/other/x").status_code == 403
    assert put("/public/README.txt", action="copy", path="demo/r.txt").status_code == 200
    assert put("/public/README.txt", action="move", path="demo/r2.txt").status_code == 403
    assert put("demo", path="x").status_code == 400
    unsupported = put("demo", action="touch", path="x")
    assert (unsupported.status_code, unsupported.json()["message"]) == (
        501,
        "Action touch not supported",
    )
    as_json = requests.put(
        files(url, "media", "demo"), json={"action": "mkdir", "path": "j"}, headers=headers
    )
    assert as_json.status_code == 201 and (home / "j").is_dir()
    escape = put("demo/a/g.txt", action="copy", path="/../../../../tmp/escaped")
    assert escape.status_code in (400, 403)
    too_long = put("demo", action="mkdir", path="x" * 300)
    assert too_long.status_code == 500 and too_long.json()["status"] == "error"


def test_delete(agave: tuple[AgaveEmulator, str]) -> None:
    emu, url = agave
    headers = login(url)
    (emu.root / "home/demo/d/e").mkdir(parents=True)
    (emu.root / "home/demo/d/e/f").write_bytes(b"x")
    rsp = requests.delete(files(url, "media", "demo/d"), headers=headers)
    assert rsp.status_code == 200 and rsp.json()["status"] == "success"
    assert rsp.json()["result"] is None and not (emu.root / "home/demo/d").exists()
    missing = requests.delete(files(url, "media", "demo/d"), headers=headers)
    assert (missing.status_code, missing.json()["message"]) == (
        404,
        "Remote path /home/demo/d does not exist.",
    )
    denied = requests.delete(files(url, "media", "other"), headers=headers)
    assert denied.status_code == 401 and denied.json()["status"] == "error"
    assert denied.json()["message"] == "User does not have permission to delete /home/other"
    (emu.root / "home/demo/n").write_bytes(b"")
    naked = requests.delete(files(url, "media", "demo/n?naked=true"), headers=headers)
    assert naked.status_code == 204 and naked.content == b""
    events = requests.get(files(url, "history", "demo/d"), headers=headers).json()["result"]
    assert [e["status"] for e in events] == ["DELETED"]
    assert requests.get(files(url, "history", "demo/never"), headers=headers).status_code == 404


# -- fault injection, latency ----------------------------------------------------------------------


def test_faults_give_503s_and_cut_bodies(make_server: MakeServer) -> None:
    emu, url = make_server(seed=7)
    headers = login(url)
    data = os.urandom(100_000)
    (emu.root / "home/demo/blob").write_bytes(data)
    emu.fault_injector.fail_rate = 0.4
    outcomes = {"ok": 0, "503": 0, "cut": 0}
    for _ in range(200):
        received = bytearray()
        try:
            rsp = requests.get(files(url, "media", "demo/blob"), headers=headers, stream=True)
            for block in rsp.iter_content(8192):
                received += block
        except requests.exceptions.ChunkedEncodingError as exc:
            assert "IncompleteRead(50000 bytes read, 50000 more expected)" in str(exc)
            assert received == data[: len(received)]
            outcomes["cut"] += 1
            continue
        if rsp.status_code == 503:
            assert received == b"Service Unavailable"
            outcomes["503"] += 1
        else:
            assert rsp.status_code == 200 and received == data
            outcomes["ok"] += 1
    assert 50 <= outcomes["503"] + outcomes["cut"] <= 110
    assert emu.fault_injector.injected == outcomes["503"] + outcomes["cut"]
    assert outcomes["503"] >= 20 and outcomes["cut"] >= 20

    made = []
    for i in range(60):
        rsp = requests.put(
            files(url, "media", "demo"), data={"action": "mkdir", "path": f"d{i}"}, headers=headers
        )
        assert rsp.status_code in (201, 503)
        assert (emu.root / f"home/demo/d{i}").exists() == (rsp.status_code == 201)
        made.append(rsp.status_code)
    assert 10 <= made.count(503) <= 40


def test_latency(make_server: MakeServer) -> None:
    _, url = make_server(latency_ms=150)
    started = time.monotonic()
    requests.get(f"{url}/clients/v2", auth=("demo", "demo"))
    assert time.monotonic() - started >= 0.15


def test_request_log(agave: tuple[AgaveEmulator, str]) -> None:
    emu, url = agave
    requests.get(f"{url}/clients/v2?limit=5", auth=("demo", "demo"))
    assert ("GET", "/clients/v2?limit=5") in emu.requests


# -- command line ----------------------------------------------------------------------------------


def test_cli_prints_url_serves_and_exits_cleanly(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    command = [
        sys.executable,
        "-m",
        "remotefs.testing.cli",
        "agave",
        "--port",
        "0",
        "--user",
        "alice:pw",
        "--user",
        "bob:pw2",
        "--staging-delay",
        "0.1",
    ]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        ready = json.loads(line)
        assert list(ready) == ["url"] and ready["url"].startswith("http://127.0.0.1:")
        url = ready["url"]
        headers = login(url, "alice", "pw")
        names = requests.get(files(url, "listings", "/home"), headers=headers).json()["result"]
        assert [e["name"] for e in names] == [".", "alice", "bob"]
        assert os.listdir(tmp_path)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert out == ""
    assert os.listdir(tmp_path) == []
