"""remotefs login / logout / whoami / profiles, and filesystems that use the stored login."""

from __future__ import annotations

import io
import json
import os
import pickle
import stat
import subprocess
import sys
import time

import fsspec
import pytest
from conftest import CAROL_PASSWORD, run_cli

from remotefs.agave import AgaveFileSystem
from remotefs.auth.store import CredentialStore, config_dir
from remotefs.cli import EXIT_PERMISSION, EXIT_USAGE, main


@pytest.fixture(autouse=True)
def fresh_instances():
    """Filesystems made by fsspec.open must not come from another test's cache."""
    AgaveFileSystem.clear_instance_cache()
    yield
    AgaveFileSystem.clear_instance_cache()


def stored(name: str = "login agave default") -> dict:
    return CredentialStore().get(name) or {}


def config_text() -> str:
    return (config_dir() / "config.toml").read_text()


def every_file_under_config() -> str:
    return "".join(p.read_text() for p in config_dir().rglob("*") if p.is_file())


# -- login ---------------------------------------------------------------------------------------


def test_login_from_stdin_in_a_subprocess_keeps_tokens_never_the_password(agave_emulator):
    emu, url = agave_emulator
    result = run_cli(
        "login", "agave", "--base-url", url, "--username", "carol", "--password-stdin",
        stdin=CAROL_PASSWORD + "\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("logged in to agave as carol (profile default)")
    assert CAROL_PASSWORD not in result.stdout + result.stderr
    record = stored()
    assert record["username"] == "carol" and record["base_url"] == url
    token = record["tokens"]["access"]
    assert token["refresh_token"] and token["access_token"] and token["expires_at"] > time.time()
    assert record["client_key"] and record["client_secret"]
    assert CAROL_PASSWORD not in every_file_under_config()
    assert stat.S_IMODE(os.stat(CredentialStore().path).st_mode) == 0o600
    assert f'base_url = "{url}"' in config_text() and 'username = "carol"' in config_text()
    assert "[agave.default]" in config_text()


def test_login_in_process_then_fsspec_open_needs_no_keywords(agave_login, agave_dir):
    path, disk = agave_dir
    with fsspec.open(f"agave://{path}/hello.txt", "wb") as fh:
        fh.write(b"hello from a stored login")
    assert (disk / "hello.txt").read_bytes() == b"hello from a stored login"
    with fsspec.open(f"agave://{path}/hello.txt", "rb") as fh:
        assert fh.read() == b"hello from a stored login"


def test_wrong_password_is_one_line_and_exit_4(agave_emulator):
    _, url = agave_emulator
    result = run_cli(
        "login", "agave", "--base-url", url, "--username", "carol", "--password-stdin",
        stdin="Not-The-Password-77\n",
    )  # fmt: skip
    assert result.returncode == EXIT_PERMISSION
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("remotefs: error:")
    assert "Not-The-Password-77" not in result.stderr + result.stdout
    assert stored() == {}


def test_login_refuses_flags_of_another_service_and_bad_profile_names(capsys):
    assert main(["login", "agave", "--token-url", "http://x", "--username", "demo"]) == EXIT_USAGE
    assert "--token-url does not apply to agave" in capsys.readouterr().err
    assert main(["login", "agave", "--profile", "../x", "--username", "demo"]) == EXIT_USAGE
    assert "invalid profile name" in capsys.readouterr().err


def test_login_without_a_terminal_asks_for_password_stdin(agave_emulator, monkeypatch, capsys):
    _, url = agave_emulator
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    argv = ["login", "agave", "--base-url", url, "--username", "demo"]
    assert main(argv) == EXIT_USAGE
    assert "use --password-stdin" in capsys.readouterr().err


# -- whoami, profiles, logout --------------------------------------------------------------------


def test_whoami_in_process_and_in_a_subprocess(agave_login, capsys):
    assert main(["whoami", "agave"]) == 0
    out = capsys.readouterr().out
    assert "username: demo" in out and "email: demo@example.org" in out
    assert "token expires: " in out and "UTC (in 3:59:" in out
    result = run_cli("whoami", "agave", "--json")
    assert result.returncode == 0, result.stderr
    who = json.loads(result.stdout)
    assert who["username"] == "demo" and who["profile"] == "default"
    assert who["base_url"] == agave_login and who["token_expires"] > time.time() + 3600


def test_profiles_lists_settings_and_login_state(agave_login, agave_emulator, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO(CAROL_PASSWORD + "\n"))
    argv = ["login", "agave", "--profile", "second", "--base-url", agave_login]
    assert main([*argv, "--username", "carol", "--password-stdin"]) == 0
    capsys.readouterr()
    assert main(["profiles"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["agave", "default", "logged", "in"]
    assert lines[1].split()[:4] == ["agave", "second", "logged", "in"]
    assert "username=carol" in lines[1]
    assert run_cli("logout", "agave", "--profile", "second").returncode == 0
    result = run_cli("profiles", "--json")
    rows = {row["profile"]: row for row in json.loads(result.stdout)}
    assert rows["second"]["logged_in"] is False and rows["default"]["logged_in"] is True
    assert rows["second"]["settings"] == {"base_url": agave_login, "username": "carol"}


def test_logout_removes_the_secrets(agave_login, capsys):
    secret = stored()["tokens"]["access"]["refresh_token"]
    result = run_cli("logout", "agave")
    assert result.returncode == 0 and "logged out of agave (profile default)" in result.stdout
    assert stored() == {}
    assert secret not in CredentialStore().path.read_text()
    assert main(["logout", "agave"]) == 0
    assert "not logged in to agave" in capsys.readouterr().out
    assert main(["whoami", "agave"]) == EXIT_PERMISSION
    err = capsys.readouterr().err
    assert err == "remotefs: error: not logged in: run `remotefs login agave`\n"


def test_the_profile_reaches_a_service_inside_a_chained_url(
    agave_login, agave_emulator, monkeypatch, capsys
):
    emu, _ = agave_emulator
    (emu.root / "home" / "carol").mkdir(exist_ok=True)
    (emu.root / "home" / "carol" / "chained.txt").write_text("carol's")
    monkeypatch.setattr("sys.stdin", io.StringIO(CAROL_PASSWORD + "\n"))
    argv = ["login", "agave", "--profile", "carol", "--base-url", agave_login]
    assert main([*argv, "--username", "carol", "--password-stdin"]) == 0
    capsys.readouterr()
    url = "simplecache::agave://cic.storage/carol/chained.txt"
    assert main(["cat", url, "--profile", "carol"]) == 0
    assert capsys.readouterr().out == "carol's"


def test_no_login_at_all_is_exit_4_with_one_line(capsys):
    result = run_cli("ls", "agave://cic.storage/demo", "--profile", "nobody")
    assert result.returncode == EXIT_PERMISSION
    assert result.stderr.startswith("remotefs: error: not logged in: run `remotefs login agave`")
    assert result.stderr.count("\n") == 1
    assert main(["ls", "edito://oidc-demo"]) == EXIT_PERMISSION
    assert capsys.readouterr().err == "remotefs: error: not logged in: run `remotefs login edito`\n"


def test_a_readable_store_is_refused(agave_login, capsys):
    os.chmod(CredentialStore().path, 0o644)
    assert main(["whoami", "agave"]) == EXIT_PERMISSION
    err = capsys.readouterr().err
    assert "readable by other users" in err and "chmod 600" in err and err.count("\n") == 1
    with pytest.raises(PermissionError, match="chmod 600"):
        AgaveFileSystem(skip_instance_cache=True)


def test_store_and_config_are_private_even_with_umask_0(agave_emulator, monkeypatch):
    _, url = agave_emulator
    monkeypatch.setattr("sys.stdin", io.StringIO("demo\n"))
    old = os.umask(0)
    try:
        argv = ["login", "agave", "--base-url", url, "--username", "demo", "--password-stdin"]
        assert main(argv) == 0
    finally:
        os.umask(old)
    store = CredentialStore().path
    assert stat.S_IMODE(os.stat(store).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(str(store) + ".lock").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(config_dir() / "config.toml").st_mode) == 0o644


# -- token rotation ------------------------------------------------------------------------------


def test_a_refresh_persists_the_rotated_refresh_token(agave_login, agave_emulator):
    emu, _ = agave_emulator
    before = stored()["tokens"]["access"]
    emu.expire_tokens()
    fs = AgaveFileSystem(skip_instance_cache=True)
    assert fs.ls("cic.storage/demo", detail=False) is not None
    after = stored()["tokens"]["access"]
    assert after["refresh_token"] != before["refresh_token"]
    assert after["access_token"] == fs.tokens.current().access_token
    # The old refresh token is retired by the service; the stored one still works elsewhere.
    result = run_cli("whoami", "agave")
    assert result.returncode == 0, result.stderr


def test_a_pickled_profile_filesystem_keeps_sharing_the_login(agave_login, agave_emulator):
    emu, _ = agave_emulator
    fs = AgaveFileSystem(skip_instance_cache=True)
    copy = pickle.loads(pickle.dumps(fs))
    assert copy.login_profile == "default"
    first = stored()["tokens"]["access"]
    emu.expire_tokens()
    copy.ls("cic.storage/demo")  # the copy renews and writes the rotated refresh token back
    renewed = stored()["tokens"]["access"]
    assert renewed["refresh_token"] != first["refresh_token"]
    fs.ls("cic.storage/demo")  # the original adopts the renewed token: no retired one is sent
    assert fs.tokens.current().access_token == renewed["access_token"]
    assert stored()["tokens"]["access"] == renewed


def test_keywords_win_over_the_stored_login(agave_login, agave_emulator):
    fs = AgaveFileSystem(
        username="carol", password=CAROL_PASSWORD, skip_instance_cache=True
    )  # base_url comes from the profile
    assert fs.base_url == agave_login
    assert fs.account.whoami(fs.tokens.current().access_token)["username"] == "carol"
    assert stored()["username"] == "demo"


SHARER = """
import sys, time, os
from remotefs.agave import AgaveFileSystem
go = sys.argv[1]
fs = AgaveFileSystem(skip_instance_cache=True)
while not os.path.exists(go):
    time.sleep(0.001)
fs.ls("cic.storage/demo")
for _ in range(8):
    fs.tokens.reject(fs.tokens.current().access_token)
    fs.ls("cic.storage/demo", refresh=True)
print("ok")
"""


def test_two_processes_refresh_one_login_at_once(agave_login, agave_emulator, tmp_path):
    emu, _ = agave_emulator
    emu.expire_tokens()
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SHARER, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    time.sleep(0.5)
    go.touch()
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0 and out.strip() == "ok", err
    assert run_cli("whoami", "agave").returncode == 0


# -- edito ---------------------------------------------------------------------------------------


def test_edito_login_in_a_subprocess_stores_both_clients(edito_emulator):
    result = run_cli(
        "login", "edito", "--token-url", edito_emulator.token_url,
        "--endpoint-url", edito_emulator.s3_url, "--username", "carol", "--password-stdin",
        stdin=CAROL_PASSWORD + "\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "logged in to edito as carol (profile default)" in result.stdout
    record = stored("login edito default")
    assert set(record["tokens"]) == {"onyxia-minio", "onyxia"}
    assert all(t["refresh_token"] for t in record["tokens"].values())
    assert CAROL_PASSWORD not in every_file_under_config()
    assert f'endpoint_url = "{edito_emulator.s3_url}"' in config_text()


def test_edito_whoami_shows_identity_and_s3_expiry(edito_login, capsys):
    assert main(["whoami", "edito"]) == 0
    out = capsys.readouterr().out
    assert "username: demo" in out and "email: demo@example.org" in out
    assert "S3 keys expire: " in out and "refresh token expires: " in out
    result = run_cli("whoami", "edito", "--json")
    who = json.loads(result.stdout)
    assert who["s3_expires"] > time.time() + 3600 and who["token_expires"] > time.time()


def test_edito_filesystem_uses_the_stored_login(edito_login):
    from remotefs.edito.filesystem import EditoFileSystem

    fs = EditoFileSystem(skip_instance_cache=True)
    assert fs.settings.endpoint_url == edito_login.s3_url
    key = f"oidc-demo/profile-{os.getpid()}.txt"
    fs.pipe(key, b"via the profile")
    stored_object = edito_login.s3_client().get_object(
        Bucket="oidc-demo", Key=key[len("oidc-demo/") :]
    )
    assert stored_object["Body"].read() == b"via the profile"
    fs.rm(key)


def test_verbose_logs_http_without_secrets(agave_login, agave_emulator, edito_login):
    emu, _ = agave_emulator
    before = stored()["tokens"]["access"]
    emu.expire_tokens()  # the run renews: the token request is logged too
    agave = run_cli("-v", "ls", "agave://cic.storage/demo")
    edito = run_cli("-v", "ls", "edito://oidc-demo")
    assert agave.returncode == 0 and edito.returncode == 0, agave.stderr + edito.stderr
    assert "remotefs.http: GET" in agave.stderr and "POST" in agave.stderr
    assert "HeadObject" in edito.stderr or "ListObjectsV2" in edito.stderr
    secrets = []
    for name in ("login agave default", "login edito default"):
        record = stored(name)
        secrets += [record.get("client_secret")]
        for token in record["tokens"].values():
            secrets += [token["access_token"], token["refresh_token"]]
    after = stored()["tokens"]["access"]
    secrets += [after["access_token"], after["refresh_token"]]
    secrets += [before["access_token"], before["refresh_token"]]
    logs = agave.stderr + edito.stderr
    for secret in filter(None, secrets):
        assert secret not in logs
    assert "***" in logs


def test_edito_after_logout_says_not_logged_in(edito_login, capsys):
    assert main(["logout", "edito"]) == 0
    assert stored("login edito default") == {}
    assert 'username = "demo"' in config_text()  # the settings stay
    capsys.readouterr()
    assert main(["ls", "edito://oidc-demo"]) == EXIT_PERMISSION
    assert capsys.readouterr().err == "remotefs: error: not logged in: run `remotefs login edito`\n"
    result = run_cli("whoami", "edito")
    assert result.returncode == EXIT_PERMISSION
    assert result.stderr == "remotefs: error: not logged in: run `remotefs login edito`\n"
