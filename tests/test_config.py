"""Profiles in config.toml, their precedence, and tokens shared through the credential store."""

from __future__ import annotations

import os
import stat
import time

import pytest

from remotefs.auth.store import CredentialStore
from remotefs.auth.stored import StoredTokens, token_record
from remotefs.auth.tokens import Token, TokenProvider
from remotefs.cli import EXIT_USAGE, main
from remotefs.config import (
    config_path,
    dump_toml,
    load_config,
    profile_name,
    profile_settings,
    resolve,
    save_profile,
)
from remotefs.errors import AuthenticationError

ENV = {"base_url": "AGAVE_BASE_URL", "username": "AGAVE_USERNAME"}


def test_flags_override_environment_which_overrides_the_file(monkeypatch):
    save_profile("agave", "default", {"base_url": "https://file", "username": "filed"})
    given = {"base_url": None, "username": None}
    assert resolve("agave", given, ENV) == {"base_url": "https://file", "username": "filed"}
    monkeypatch.setenv("AGAVE_BASE_URL", "https://env")
    assert resolve("agave", given, ENV)["base_url"] == "https://env"
    flagged = {**given, "base_url": "https://flag"}
    assert resolve("agave", flagged, ENV)["base_url"] == "https://flag"
    assert resolve("agave", given, ENV)["username"] == "filed"


def test_remotefs_profile_selects_the_profile(monkeypatch):
    save_profile("agave", "default", {"username": "one"})
    save_profile("agave", "tacc", {"username": "two"})
    assert profile_settings("agave") == {"username": "one"}
    monkeypatch.setenv("REMOTEFS_PROFILE", "tacc")
    assert profile_name() == "tacc" and profile_settings("agave") == {"username": "two"}
    assert profile_settings("agave", "default") == {"username": "one"}
    with pytest.raises(ValueError, match="invalid profile name"):
        profile_name("a b")


def test_saving_keeps_other_tables_and_round_trips_odd_values():
    save_profile("edito", "default", {"username": "x"})
    odd = 'quote " back \\ tab \t newline \n del \x7f é ☃'
    save_profile("agave", "work", {"base_url": odd, "retries": 3, "verify": False, "none": None})
    assert load_config() == {
        "agave": {"work": {"base_url": odd, "retries": 3, "verify": False}},
        "edito": {"default": {"username": "x"}},
    }
    assert list(config_path().parent.glob(".config.toml.*")) == []  # no temporary file left
    with pytest.raises(ValueError, match="invalid name"):
        save_profile("agave", "default", {"bad key": "x"})
    assert dump_toml({}).startswith("# remotefs profiles")


def test_malformed_config_is_a_usage_error(capsys):
    config_path().parent.mkdir(parents=True, exist_ok=True)
    config_path().write_text("[agave.default\nbase_url = ")
    with pytest.raises(ValueError, match="is not valid TOML"):
        load_config()
    assert main(["profiles"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "config.toml is not valid TOML" in err and err.count("\n") == 1


def test_store_is_created_private_with_umask_0(tmp_path):
    old = os.umask(0)
    try:
        store = CredentialStore(tmp_path / "fresh" / "credentials.json")
        store.put("x", {"refresh_token": "r"})
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.path.parent).st_mode) == 0o700


# -- tokens shared through the store -------------------------------------------------------------


class Grants:
    """A fake token endpoint that rotates refresh tokens and retires used ones."""

    def __init__(self) -> None:
        self.valid = {"R0"}
        self.count = 0

    def __call__(self, old: Token | None) -> Token:
        assert old is not None and old.refresh_token in self.valid, "retired refresh token"
        self.valid.discard(old.refresh_token)
        self.count += 1
        self.valid.add(f"R{self.count}")
        return Token(f"A{self.count}", f"R{self.count}", time.time() + 3600, 3600)


def shared(store: CredentialStore, grants: Grants) -> StoredTokens:
    return StoredTokens(store, "login svc default", "main", grants, not_logged_in="log in!")


def test_stored_tokens_renew_once_and_the_other_holder_adopts(tmp_path):
    store = CredentialStore(tmp_path / "credentials.json")
    store.put("login svc default", {"tokens": {"main": token_record(Token("A0", "R0", 0.0))}})
    grants = Grants()
    one, two = shared(store, grants), shared(store, grants)
    first = TokenProvider(one.load(), one)
    second = TokenProvider(two.load(), two)
    assert first.current().access_token == "A1"
    assert second.current().access_token == "A1"  # adopted from the store, no second grant
    assert grants.count == 1
    second.reject("A1")  # the service refused it: renew with the newest refresh token
    assert store.get("login svc default")["tokens"]["main"]["refresh_token"] == "R2"
    first.reject("A1")
    assert first.current().access_token == "A2" and grants.count == 2


def test_stored_tokens_keep_the_refresh_token_when_the_reply_has_none(tmp_path):
    store = CredentialStore(tmp_path / "credentials.json")
    store.put("login svc default", {"tokens": {"main": token_record(Token("A0", "R0", 0.0))}})
    tokens = StoredTokens(
        store,
        "login svc default",
        "main",
        lambda old: Token("A1", None, time.time() + 60, 60),
        not_logged_in="log in!",
    )
    assert tokens(tokens.load()).refresh_token == "R0"
    assert store.get("login svc default")["tokens"]["main"]["refresh_token"] == "R0"


def test_stored_tokens_after_logout_say_so(tmp_path):
    store = CredentialStore(tmp_path / "credentials.json")
    tokens = shared(store, Grants())
    assert tokens.load() is None
    with pytest.raises(AuthenticationError, match="log in!"):
        tokens(Token("A0", "R0", 0.0))
    assert store.get("login svc default") is None
