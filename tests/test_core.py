"""The service-agnostic core: error mapping, retries, redirects, tokens and the credential store."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import pickle
import stat
import threading
import time

import aiohttp
import pytest
from aiohttp import web

from remotefs.auth.store import CredentialStore
from remotefs.auth.tokens import Token, TokenAuth, TokenProvider
from remotefs.errors import (
    AuthenticationError,
    RemoteError,
    RemoteFileNotFoundError,
    RemotePermissionError,
)
from remotefs.http import (
    RetryPolicy,
    error_for_status,
    request,
    retry_after_seconds,
    same_origin,
    service_message,
)
from remotefs.testing.server import ServerThread

FAST = RetryPolicy(attempts=4, backoff=0.001, max_backoff=0.01)


# -- pure functions -------------------------------------------------------------------------


def test_error_mapping_and_messages():
    err = error_for_status(
        404, b'{"status": "error", "message": "File/folder does not exist"}', "p"
    )
    assert isinstance(err, FileNotFoundError) and err.status == 404
    assert "File/folder does not exist" in str(err) and err.path == "p"
    assert isinstance(error_for_status(403, b"{}"), PermissionError)
    assert isinstance(error_for_status(401, b""), PermissionError)
    assert isinstance(error_for_status(504, b""), TimeoutError)
    assert error_for_status(503, b"busy").retriable
    assert not error_for_status(400, b"bad").retriable
    fault = b'{"fault": {"code": 900901, "message": "Invalid Credentials"}}'
    assert service_message(fault) == "Invalid Credentials"
    assert service_message(b"<html><body>Bad gateway</body></html>") == "Bad gateway"
    assert service_message(b'{"error": "invalid_grant", "error_description": "nope"}') == "nope"


def test_errors_pickle_with_their_fields():
    err = RemoteFileNotFoundError("gone", status=404, path="sys/x", retriable=False)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is RemoteFileNotFoundError and isinstance(back, FileNotFoundError)
    assert (back.status, back.path, back.message) == (404, "sys/x", "gone")


def test_retry_policy_backoff_and_retry_after():
    policy = RetryPolicy(backoff=1.0, max_backoff=8.0)
    for attempt in range(1, 8):
        delay = policy.delay(attempt)
        ceiling = min(2 ** (attempt - 1), 8.0)
        assert ceiling / 2 <= delay <= ceiling
    assert policy.delay(1, retry_after=3) == 3
    assert policy.delay(1, retry_after=100) == 8.0
    assert retry_after_seconds("2") == 2.0
    assert retry_after_seconds(None) is None
    http_date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 20 < retry_after_seconds(http_date) <= 31


def test_same_origin():
    assert same_origin("http://a:1/x", "http://a:1/y?z")
    assert not same_origin("http://a:1/x", "http://a:2/x")
    assert not same_origin("https://a/x", "http://a/x")
    assert not same_origin("http://a/x", "http://b/x")


# -- tokens ---------------------------------------------------------------------------------


def test_token_provider_refreshes_once_for_many_threads():
    calls = []

    def refresher(old):
        calls.append(old)
        time.sleep(0.05)
        return Token(
            access_token=f"t{len(calls)}", refresh_token="r", expires_at=time.time() + 3600
        )

    provider = TokenProvider(Token("t0", "r", expires_at=time.time() - 1), refresher, margin=60)
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(provider.current())) for _ in range(20)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert {r.access_token for r in results} == {"t1"}


def test_token_provider_reject_refreshes_only_the_stale_token():
    tokens = iter(["new1", "new2"])
    provider = TokenProvider(
        Token("old", "r", expires_at=time.time() + 3600),
        lambda old: Token(next(tokens), "r", expires_at=time.time() + 3600),
    )
    assert provider.reject("old").access_token == "new1"
    # a second caller that also saw "old" rejected must not refresh again
    assert provider.reject("old").access_token == "new1"


def test_token_provider_margin_is_capped_for_short_lifetimes():
    refreshed = []
    provider = TokenProvider(
        Token("a", "r", expires_at=time.time() + 8, lifetime=10),
        lambda old: refreshed.append(1) or Token("b", expires_at=time.time() + 10, lifetime=10),
        margin=300,
    )
    assert provider.current().access_token == "a"
    assert not refreshed


def test_token_provider_without_refresher_fails_clearly():
    provider = TokenProvider(Token("a", expires_at=time.time() - 1), None)
    with pytest.raises(AuthenticationError, match="log in again"):
        provider.current()


def test_token_repr_hides_secrets():
    token = Token("ACCESS-SECRET", "REFRESH-SECRET", expires_at=1.0)
    assert "SECRET" not in repr(token)
    assert "SECRET" not in repr(TokenProvider(token, None))


def test_token_provider_async_refresh_is_shared():
    calls = []

    def refresher(old):
        calls.append(1)
        time.sleep(0.05)
        return Token("fresh", expires_at=time.time() + 3600)

    provider = TokenProvider(None, refresher)

    async def many():
        return await asyncio.gather(*(provider.acurrent() for _ in range(10)))

    tokens = asyncio.run(many())
    assert len(calls) == 1 and {t.access_token for t in tokens} == {"fresh"}


# -- the HTTP layer against real servers ----------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []


def _app(recorder: Recorder, handler) -> web.Application:
    async def record(request: web.Request) -> web.StreamResponse:
        recorder.seen.append((request.path, request.headers.get("Authorization")))
        return await handler(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    return app


def _run(coro_factory):
    async def main():
        async with aiohttp.ClientSession() as session:
            return await coro_factory(session)

    return asyncio.run(main())


class StaticAuth:
    def __init__(self, values: list[str]) -> None:
        self.values = values
        self.refreshes = 0

    async def header(self) -> str:
        return self.values[min(self.refreshes, len(self.values) - 1)]

    async def refresh_after(self, stale: str, status: int, body: bytes) -> bool:
        self.refreshes += 1
        return True


def test_retries_idempotent_requests_on_503_honouring_retry_after():
    recorder = Recorder()
    answers = iter([503, 429, 200])

    async def handler(request):
        status = next(answers)
        return web.Response(status=status, text="x", headers={"Retry-After": "0"})

    with ServerThread(_app(recorder, handler)) as server:

        async def go(session):
            resp = await request(session, "GET", server.url + "/a", idempotent=True, retry=FAST)
            resp.release()
            return resp.status

        assert _run(go) == 200
    assert len(recorder.seen) == 3


def test_does_not_retry_non_idempotent_requests():
    recorder = Recorder()

    async def handler(request):
        return web.Response(status=503, text="busy")

    with ServerThread(_app(recorder, handler)) as server:

        async def go(session):
            await request(session, "POST", server.url + "/a", idempotent=False, retry=FAST)

        with pytest.raises(RemoteError) as info:
            _run(go)
    assert info.value.status == 503 and len(recorder.seen) == 1


def test_401_refreshes_once_and_retries_with_the_new_header():
    recorder = Recorder()

    async def handler(request):
        ok = request.headers.get("Authorization") == "Bearer new"
        return web.Response(status=200 if ok else 401, text="{}")

    with ServerThread(_app(recorder, handler)) as server:
        auth = StaticAuth(["Bearer old", "Bearer new"])

        async def go(session):
            resp = await request(session, "GET", server.url + "/a", idempotent=True, auth=auth)
            resp.release()
            return resp.status

        assert _run(go) == 200
    assert [h for _, h in recorder.seen] == ["Bearer old", "Bearer new"]


def test_401_after_refresh_is_a_permission_error():
    recorder = Recorder()

    async def handler(request):
        return web.Response(status=401, text='{"message": "nope"}')

    with ServerThread(_app(recorder, handler)) as server:
        auth = StaticAuth(["Bearer a", "Bearer b"])

        async def go(session):
            await request(session, "GET", server.url + "/a", idempotent=True, auth=auth)

        with pytest.raises(RemotePermissionError):
            _run(go)
    assert len(recorder.seen) == 2 and auth.refreshes == 1


def test_bearer_token_does_not_follow_redirect_to_another_host():
    other = Recorder()

    async def elsewhere(request):
        return web.Response(text="landed")

    with ServerThread(_app(other, elsewhere)) as target:
        here = Recorder()

        async def redirect(request):
            if request.path == "/same":
                return web.Response(text="same origin")
            if request.path == "/local":
                raise web.HTTPFound("/same")
            raise web.HTTPFound(target.url + "/landing")

        with ServerThread(_app(here, redirect)) as server:
            auth = StaticAuth(["Bearer SECRET"])

            async def go(session, path):
                resp = await request(session, "GET", server.url + path, idempotent=True, auth=auth)
                text = await resp.text()
                resp.release()
                return text

            assert _run(lambda s: go(s, "/away")) == "landed"
            assert _run(lambda s: go(s, "/local")) == "same origin"
    assert other.seen == [("/landing", None)]
    assert here.seen[-1] == ("/same", "Bearer SECRET")


def test_connection_errors_are_retried_then_reported():
    async def go(session):
        await request(session, "GET", "http://127.0.0.1:9/x", idempotent=True, retry=FAST)

    with pytest.raises(ConnectionError, match="127.0.0.1:9"):
        _run(go)


def test_token_auth_only_refreshes_on_token_errors():
    provider = TokenProvider(Token("a", expires_at=time.time() + 3600), lambda old: Token("b"))
    auth = TokenAuth(provider, lambda status, body: b"fault" in body)
    assert asyncio.run(auth.refresh_after("Bearer a", 401, b'{"status": "error"}')) is False
    assert asyncio.run(auth.refresh_after("Bearer a", 401, b'{"fault": {}}')) is True
    assert asyncio.run(auth.header()) == "Bearer b"


# -- credential store -----------------------------------------------------------------------


def test_store_is_private_from_the_start(tmp_path):
    store = CredentialStore(tmp_path / "cfg" / "credentials.json")
    store.put("x", {"refresh_token": "r"})
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert store.get("x") == {"refresh_token": "r"}
    assert store.names() == ["x"]
    assert store.delete("x") and store.get("x") is None


def test_store_refuses_a_readable_file(tmp_path):
    store = CredentialStore(tmp_path / "credentials.json")
    store.put("x", {"a": 1})
    os.chmod(store.path, 0o644)
    with pytest.raises(PermissionError, match="chmod 600"):
        store.get("x")


def _bump(path: str, n: int) -> None:
    store = CredentialStore(path)
    for _ in range(n):
        store.update("counter", lambda old: {"n": (old or {"n": 0})["n"] + 1})


def test_store_updates_from_many_processes_lose_nothing(tmp_path):
    path = str(tmp_path / "credentials.json")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_bump, args=(path, 25)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert CredentialStore(path).get("counter") == {"n": 100}


def test_oauth2_form_client_authentication():
    from remotefs.auth.oauth2 import OAuth2Client

    seen = []

    async def token(request):
        form = dict(await request.post())
        seen.append((form, request.headers.get("Authorization")))
        if form.get("password") != "pw":
            return web.json_response(
                {"error": "invalid_grant", "error_description": "Invalid user credentials"},
                status=401,
            )
        return web.json_response(
            {"access_token": "A", "refresh_token": "R", "expires_in": 300, "token_type": "Bearer"}
        )

    app = web.Application()
    app.router.add_post("/token", token)
    with ServerThread(app) as server:
        client = OAuth2Client(server.url + "/token", "onyxia", client_auth="form", scope="openid")
        got = client.password_grant("alice", "pw")
        assert got.access_token == "A" and got.refresh_token == "R" and got.lifetime == 300
        with pytest.raises(AuthenticationError, match="Invalid user credentials") as info:
            client.password_grant("alice", "WRONG-PW")
        assert "WRONG-PW" not in str(info.value)
    form, auth_header = seen[0]
    assert form == {
        "grant_type": "password",
        "username": "alice",
        "password": "pw",
        "scope": "openid",
        "client_id": "onyxia",
    }
    assert auth_header is None


def test_importing_remotefs_stays_light():
    import subprocess
    import sys

    code = (
        "import sys, remotefs, remotefs.agave, remotefs.cli;"
        "heavy = [m for m in ('boto3', 's3fs', 'pandas', 'dask') if m in sys.modules];"
        "print(heavy)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr


def test_redaction_of_secret_fields_in_third_party_logs():
    from remotefs.auth.redact import RedactSecrets, redact

    xml = "<Credentials><AccessKeyId>AKID</AccessKeyId><SecretAccessKey>S3CR3T</SecretAccessKey>"
    assert "S3CR3T" not in redact(xml) and "AKID" in redact(xml)
    form = "Action=AssumeRoleWithWebIdentity&WebIdentityToken=eyJhbGc.x.y&Version=2011-06-15"
    assert "eyJhbGc" not in redact(form) and "Version=2011-06-15" in redact(form)
    headers = "{'Authorization': b'Bearer abc.def', 'X-Amz-Security-Token': b'TOKEN123'}"
    assert "abc.def" not in redact(headers) and "TOKEN123" not in redact(headers)
    record = logging.LogRecord("botocore.parsers", logging.DEBUG, "f", 1, "body %r", (xml,), None)
    RedactSecrets().filter(record)
    assert "S3CR3T" not in record.getMessage()
