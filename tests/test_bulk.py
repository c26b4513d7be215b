"""The bulk download lane (remotefs.bulk) against small aiohttp servers over loopback."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import io
import json
import os
import subprocess
import sys
import time

import pytest
from aiohttp import web

from remotefs.bulk import WORKERS, BulkGet, bulk_get, bulk_upload
from remotefs.http import Timeouts
from remotefs.testing.server import ServerThread

BODY = os.urandom(300_000)


def make_app(seen: list[dict[str, str]]) -> web.Application:
    """Routes that answer in the ways a bulk GET must tell apart."""

    async def whole(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.Response(body=BODY)

    async def chunked(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for i in range(0, len(BODY), 70_000):
            await resp.write(BODY[i : i + 70_000])
        await resp.write_eof()
        return resp

    async def missing(request: web.Request) -> web.Response:
        return web.json_response({"status": "error", "message": "no such file"}, status=404)

    async def elsewhere(request: web.Request) -> web.Response:
        raise web.HTTPFound("http://192.0.2.1/stolen")

    async def cut(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Length": str(len(BODY))})
        await resp.prepare(request)
        await resp.write(BODY[:100_000])
        assert request.transport is not None
        request.transport.close()
        return resp

    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response({"length": len(body), "sha": hashlib.sha256(body).hexdigest()})

    async def refuse(request: web.Request) -> web.Response:
        return web.json_response({"message": "token expired"}, status=401)

    async def stalls(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Length": str(len(BODY))})
        await resp.prepare(request)
        await resp.write(BODY[:1000])
        await asyncio.sleep(60)
        return resp

    app = web.Application()
    for path, handler in [
        ("/whole", whole),
        ("/chunked", chunked),
        ("/missing", missing),
        ("/elsewhere", elsewhere),
        ("/cut", cut),
        ("/stalls", stalls),
    ]:
        app.router.add_get(path, handler)
    app.router.add_post("/echo", echo)
    app.router.add_post("/refuse", refuse)
    return app


@pytest.fixture(scope="module")
def server():
    seen: list[dict[str, str]] = []
    with ServerThread(make_app(seen)) as running:
        yield running.url, seen


def run(url: str, headers: dict[str, str] | None = None):
    parts: list[bytes] = []
    reply = asyncio.run(bulk_get(url, headers or {}, lambda view: parts.append(bytes(view))))
    return reply, b"".join(parts)


def test_copies_a_whole_body_with_our_headers(server):
    url, seen = server
    reply, body = run(f"{url}/whole?x=1", {"Authorization": "Bearer abc"})
    assert body == BODY
    assert (reply.status, reply.length, reply.moved) == (200, len(BODY), len(BODY))
    assert not reply.broken
    assert seen[-1]["Authorization"] == "Bearer abc"
    assert seen[-1]["Accept-Encoding"] == "identity"


def test_copies_a_chunked_body(server):
    reply, body = run(f"{server[0]}/chunked")
    assert body == BODY and reply.length is None and not reply.broken


def test_an_error_status_is_reported_and_nothing_written(server):
    reply, body = run(f"{server[0]}/missing")
    assert (reply.status, reply.moved, body) == (404, 0, b"")


def test_a_redirect_is_not_followed(server):
    # the bearer token must never travel to another host: the lane follows nothing
    reply, body = run(f"{server[0]}/elsewhere", {"Authorization": "Bearer abc"})
    assert (reply.status, body) == (302, b"")


def test_a_cut_body_is_reported_broken_with_what_was_copied(server):
    reply, body = run(f"{server[0]}/cut")
    assert reply.broken and reply.status == 200
    assert reply.moved == len(body) and BODY.startswith(body) and len(body) < len(BODY)


def test_an_unreachable_server_is_reported_broken():
    reply, body = run("http://127.0.0.1:9/nothing-listens-here")
    assert reply.broken and reply.status == 0 and body == b""


def test_errors_of_the_writer_propagate(server):
    def full_disk(view: memoryview) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        asyncio.run(bulk_get(f"{server[0]}/whole", {}, full_disk))


def test_cancelling_aborts_a_stalled_copy_promptly(server):
    written: list[int] = []

    async def cancelled() -> None:
        copy = bulk_get(
            f"{server[0]}/stalls", {}, lambda view: written.append(len(view)),
            timeouts=Timeouts(connect=5, read=50),
        )  # fmt: skip
        await asyncio.wait_for(copy, 0.5)

    started = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(cancelled())
    # the socket was shut down under the blocked read: no wait for the 50 s read timeout
    assert time.monotonic() - started < 10
    assert sum(written) == 1000


def test_cancelling_running_and_queued_copies_together(server):
    async def many() -> None:
        copies = [
            bulk_get(f"{server[0]}/stalls", {}, lambda view: None, timeouts=Timeouts(read=50))
            for _ in range(WORKERS + 3)  # three wait for a slot
        ]
        await asyncio.wait_for(asyncio.gather(*copies), 0.5)

    started = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(many())
    assert time.monotonic() - started < 10
    reply, body = run(f"{server[0]}/whole")  # every slot was given back
    assert body == BODY


def test_a_transfer_in_flight_does_not_hold_up_the_interpreter_exit(server):
    code = (
        "import asyncio, threading, time\n"
        "from remotefs.bulk import bulk_get\n"
        f"copy = lambda: asyncio.run(bulk_get({server[0] + '/stalls'!r}, {{}}, print))\n"
        "threading.Thread(target=copy, daemon=True).start()\n"
        "time.sleep(0.5)\n"
    )
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", code], timeout=40, check=True, capture_output=True)
    assert time.monotonic() - started < 20


def test_only_http_urls_and_no_secret_in_repr():
    with pytest.raises(ValueError, match="http"):
        BulkGet("ftp://host/file", {})
    job = BulkGet("https://me:pw@host/files?token=x", {"Authorization": "Bearer secret"})
    assert "secret" not in repr(job) and "token" not in repr(job) and "pw@" not in repr(job)


def upload(url: str, parts, length: int):
    return asyncio.run(bulk_upload("POST", url, {"X-Test": "1"}, parts, length))


def test_an_upload_sends_byte_strings_and_streams_in_order(server):
    head, tail = b"head-", b"-tail"
    reply = upload(f"{server[0]}/echo", [head, io.BytesIO(BODY), tail], len(BODY) + 10)
    assert reply.status == 200 and not reply.broken and reply.moved == len(BODY) + 10
    sent = json.loads(reply.body)
    assert sent == {"length": len(BODY) + 10, "sha": hashlib.sha256(head + BODY + tail).hexdigest()}


def test_a_stream_longer_than_announced_is_broken(server):
    # a file that grew since it was measured: the caller's regular path must see it
    reply = upload(f"{server[0]}/echo", [io.BytesIO(BODY + b"grown"), b"!"], len(BODY) + 1)
    assert reply.broken and reply.status == 0


def test_a_stream_shorter_than_announced_is_broken(server):
    reply = upload(f"{server[0]}/echo", [io.BytesIO(BODY[:10])], len(BODY))
    assert reply.broken and reply.moved == 10


def test_an_upload_refused_early_reports_the_status_or_a_break(server):
    big = io.BytesIO(bytes(64 << 20))
    reply = upload(f"{server[0]}/refuse", [big], 64 << 20)
    assert reply.broken or reply.status == 401


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    """The same routes over TLS, with a self-signed certificate for 127.0.0.1."""
    import datetime
    import ipaddress
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    with ServerThread(make_app([]), ssl_context=context) as running:
        yield running.url


def test_tls_is_verified_by_default(tls_server):
    written: list[int] = []
    reply = asyncio.run(bulk_get(f"{tls_server}/whole", {}, lambda view: written.append(1)))
    assert reply.broken and reply.status == 0 and not written  # untrusted certificate


def test_tls_without_verification_when_asked(tls_server):
    parts: list[bytes] = []
    copy = bulk_get(f"{tls_server}/whole", {}, lambda view: parts.append(bytes(view)), verify=False)
    reply = asyncio.run(copy)
    assert reply.status == 200 and b"".join(parts) == BODY
