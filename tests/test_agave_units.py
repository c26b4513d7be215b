"""Pure functions of the Agave backend: paths, gateway errors, staging states."""

from __future__ import annotations

import pytest

from remotefs.agave.client import _staging_state, agave_error, is_token_error
from remotefs.agave.paths import AgavePath


def test_paths_relative_and_absolute():
    rel = AgavePath.parse("cic.storage/demo/a b/c#d.txt")
    assert rel == AgavePath("cic.storage", "demo/a b/c#d.txt")
    assert rel.url_path() == "cic.storage/demo/a%20b/c%23d.txt"
    assert rel.name == "c#d.txt" and rel.parent == AgavePath("cic.storage", "demo/a b")
    absolute = AgavePath.parse("cic.storage//home/demo/x")
    assert absolute.path == "/home/demo/x"
    assert absolute.url_path() == "cic.storage//home/demo/x"
    assert absolute.fs_path() == "cic.storage//home/demo/x"
    home = AgavePath.parse("cic.storage")
    assert home.path == "" and home.url_path() == "cic.storage/" and home.child("x").path == "x"
    assert AgavePath.parse("cic.storage//top").parent == AgavePath("cic.storage", "/")


@pytest.mark.parametrize("bad", ["", "/abs", "sys/../etc", "sys/a/../../b"])
def test_paths_refuse_escapes_and_missing_system(bad):
    with pytest.raises(ValueError, match="agave"):
        AgavePath.parse(bad)


def test_gateway_401_is_a_token_error_but_the_envelope_is_not():
    assert is_token_error(401, b'{"fault": {"code": 900901, "message": "Invalid Credentials"}}')
    assert is_token_error(401, b"<ams:fault><ams:code>900903</ams:code></ams:fault>")
    assert not is_token_error(
        401, b'{"status": "error", "message": "User does not have permission"}'
    )
    assert not is_token_error(403, b'{"fault": {}}')


def test_agave_error_mapping():
    env = b'{"status": "error", "message": "%s"}'
    assert isinstance(agave_error(400, env % b"A file already exists at x", "p"), FileExistsError)
    assert isinstance(agave_error(400, env % b"x is not a directory", "p"), NotADirectoryError)
    assert isinstance(
        agave_error(501, env % b"Directory downloads not supported", "p"), IsADirectoryError
    )
    assert isinstance(agave_error(401, env % b"no permission to delete", "p"), PermissionError)
    assert isinstance(agave_error(404, env % b"File/folder does not exist", "p"), FileNotFoundError)


def test_staging_state_reads_events_after_our_upload():
    ev = lambda s: {"status": s}  # noqa: E731
    assert _staging_state([]) == "pending"
    assert _staging_state([ev("STAGING_QUEUED")]) == "pending"
    done = [ev("STAGING_QUEUED"), ev("UPLOAD"), ev("STAGING_COMPLETED")]
    assert _staging_state(done) == "done"
    # an earlier upload's completion does not count for a new upload
    assert _staging_state(done + [ev("STAGING_QUEUED")]) == "pending"
    assert _staging_state(done + [ev("STAGING_QUEUED"), ev("STAGING_FAILED")]) == "failed"
