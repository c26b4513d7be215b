"""Fixtures: real emulators on loopback sockets, and filesystems pointed at them."""

from __future__ import annotations

import io
import itertools
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from remotefs.http import RetryPolicy
from remotefs.testing.agave import AgaveEmulator
from remotefs.testing.server import ServerThread

CAROL_PASSWORD = "s3cret-Pa55word"
FAST_RETRY = RetryPolicy(attempts=8, backoff=0.002, max_backoff=0.05)
_counter = itertools.count()


@pytest.fixture(autouse=True)
def private_config(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep every test away from the user's real configuration, credentials and job records."""
    monkeypatch.setenv("REMOTEFS_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))
    monkeypatch.setenv("REMOTEFS_DATA_DIR", str(tmp_path_factory.mktemp("data")))
    for name in list(os.environ):
        if name.startswith(("AGAVE_", "EDITO_", "AWS_", "REMOTEFS_PROFILE")):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def agave_emulator() -> Iterator[tuple[AgaveEmulator, str]]:
    """One Agave emulator for the session (users demo, other and carol)."""
    emu = AgaveEmulator(users={"demo": "demo", "other": "other", "carol": CAROL_PASSWORD})
    with ServerThread(emu.make_app()) as server:
        yield emu, server.url


def make_agave_fs(url: str, **kwargs: object):  # noqa: ANN201
    """A fresh AgaveFileSystem (no instance cache) logged in as demo, with fast retries."""
    from remotefs.agave import AgaveFileSystem

    options: dict[str, object] = {
        "base_url": url,
        "username": "demo",
        "password": "demo",
        "retry": FAST_RETRY,
        "skip_instance_cache": True,
    }
    options.update(kwargs)
    return AgaveFileSystem(**options)


@pytest.fixture
def agave_fs(agave_emulator: tuple[AgaveEmulator, str]):  # noqa: ANN201
    """A filesystem on the session emulator."""
    _, url = agave_emulator
    return make_agave_fs(url)


@pytest.fixture
def agave_dir(agave_fs, agave_emulator):  # noqa: ANN001, ANN201
    """A fresh, empty directory in demo's home: (fs path, path on the emulator's disk)."""
    emu, _ = agave_emulator
    name = f"t{next(_counter)}-{os.getpid()}"
    path = f"cic.storage/demo/{name}"
    agave_fs.makedirs(path)
    yield path, emu.root / "home" / "demo" / name
    agave_fs.rm(path, recursive=True)


@pytest.fixture(scope="session")
def edito_emulator():  # noqa: ANN201
    """One EDITO stack (Keycloak, STS, S3) for the session: users demo and carol."""
    from remotefs.testing.edito import EditoEmulator

    with EditoEmulator(users={"demo": "demo", "carol": CAROL_PASSWORD}) as emu:
        yield emu


def edito_options(emu) -> dict[str, object]:  # noqa: ANN001
    """storage_options that log in to an emulated EDITO stack as demo."""
    return {
        "token_url": emu.token_url,
        "endpoint_url": emu.s3_url,
        "username": "demo",
        "password": "demo",
    }


def make_edito_fs(emu, **kwargs: object):  # noqa: ANN001, ANN201
    """A fresh EditoFileSystem on an emulated EDITO stack, logged in as demo."""
    from remotefs.edito.filesystem import EditoFileSystem

    options = {**edito_options(emu), "skip_instance_cache": True, **kwargs}
    return EditoFileSystem(**options)


@pytest.fixture
def edito_fs(edito_emulator):  # noqa: ANN001, ANN201
    return make_edito_fs(edito_emulator)


@pytest.fixture
def edito_prefix(edito_fs):  # noqa: ANN001, ANN201
    """A fresh key prefix in demo's bucket, removed afterwards."""
    prefix = f"oidc-demo/t{next(_counter)}-{os.getpid()}"
    yield prefix
    if edito_fs.exists(prefix):
        edito_fs.rm(prefix, recursive=True)


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``remotefs ARGS`` in a subprocess (environment inherited: the test's config dir)."""
    return subprocess.run(
        [sys.executable, "-m", "remotefs", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def agave_login(agave_emulator, monkeypatch):  # noqa: ANN001, ANN201
    """``remotefs login agave`` as demo on the session emulator (profile default); its URL."""
    from remotefs.cli import main

    _, url = agave_emulator
    monkeypatch.setattr("sys.stdin", io.StringIO("demo\n"))
    argv = ["login", "agave", "--base-url", url, "--username", "demo", "--password-stdin"]
    assert main(argv) == 0
    return url


@pytest.fixture
def edito_login(edito_emulator, monkeypatch):  # noqa: ANN001, ANN201
    """``remotefs login edito`` as demo on the session's EDITO stack (profile default)."""
    from remotefs.cli import main

    monkeypatch.setattr("sys.stdin", io.StringIO("demo\n"))
    argv = ["login", "edito", "--token-url", edito_emulator.token_url]
    argv += ["--endpoint-url", edito_emulator.s3_url, "--username", "demo", "--password-stdin"]
    assert main(argv) == 0
    return edito_emulator
