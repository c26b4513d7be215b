"""The seed's account operations through remotefs.agave.AgaveAccount, against the emulator."""

from __future__ import annotations

import pytest

from remotefs.agave import AgaveAccount
from remotefs.errors import AuthenticationError


def test_clients_tokens_and_profile(agave_emulator):
    _, url = agave_emulator
    account = AgaveAccount(url)
    made = account.create_client("other", "other", "account-test")
    assert made["name"] == "account-test" and made["consumerKey"] and made["consumerSecret"]
    listed = {c["name"]: c for c in account.list_clients("other", "other")}
    assert listed["account-test"]["consumerKey"] == made["consumerKey"]
    assert "consumerSecret" not in listed["account-test"]

    token = account.get_token(made["consumerKey"], made["consumerSecret"], "other", "other")
    assert token.refresh_token and 14000 < token.remaining() <= 14400
    assert account.whoami(token.access_token)["username"] == "other"

    renewed = account.refresh_token(
        made["consumerKey"], made["consumerSecret"], token.refresh_token
    )
    assert renewed.access_token != token.access_token
    assert account.whoami(renewed.access_token)["username"] == "other"
    with pytest.raises(AuthenticationError, match="log in again"):
        account.refresh_token(made["consumerKey"], made["consumerSecret"], token.refresh_token)

    account.delete_client("other", "other", "account-test")
    assert "account-test" not in {c["name"] for c in account.list_clients("other", "other")}


def test_wrong_password_for_clients_is_permission_error(agave_emulator):
    _, url = agave_emulator
    with pytest.raises(PermissionError):
        AgaveAccount(url).list_clients("other", "not-the-password")


def test_duplicate_client_name_is_refused(agave_emulator):
    _, url = agave_emulator
    account = AgaveAccount(url)
    account.create_client("other", "other", "twice")
    with pytest.raises(OSError):
        account.create_client("other", "other", "twice")
    account.delete_client("other", "other", "twice")
