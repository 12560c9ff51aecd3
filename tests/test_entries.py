"""auth/entries.py: where an auth file keeps a host's login, and whether a state-file
record still describes it. Pure: documents in, answers out."""

from __future__ import annotations

from typing import Any

import pytest

from runas_async.auth.entries import Place, agrees, place_of
from runas_async.auth.state import LoginRecord, State

H = "111111111111.dkr.ecr.us-east-1.amazonaws.com"


@pytest.mark.parametrize(
    ("doc", "place"),
    [
        pytest.param({"auths": {H: {"auth": "x"}}}, Place("auths", auth="x"), id="auths"),
        pytest.param(
            {"auths": {f"https://{H}": {"auth": "x"}}}, Place("auths", auth="x"), id="https-key"
        ),
        pytest.param(
            {"auths": {f"http://{H}": {"auth": "x"}}}, Place("auths", auth="x"), id="http-key"
        ),
        pytest.param(
            {"auths": {H: {}}, "credsStore": "desktop"}, Place("credsStore", "desktop"), id="store"
        ),
        pytest.param(
            {"auths": {H: {"auth": "x"}}, "credHelpers": {H: "pass"}},
            Place("credHelpers", "pass"),
            id="helper-wins",
        ),
        pytest.param({"auths": {H: {}}}, None, id="empty-entry-no-store"),
        pytest.param({"auths": {}, "credsStore": "desktop"}, None, id="store-without-entry"),
        pytest.param({"auths": []}, None, id="auths-not-an-object"),
        pytest.param({}, None, id="empty"),
    ],
)
def test_place_of(doc: dict[str, Any], place: Place | None) -> None:
    """Each way docker keeps a login, found where docker would look for it."""
    assert place_of(doc, H) == place


def test_an_auths_login_agrees_only_with_its_own_value() -> None:
    """A record of an ``auths`` login agrees while the file holds the value it wrote (by
    HMAC), and not once another login replaced it."""
    state = State()
    mine = LoginRecord(
        1.0, "dev", "1", "us-east-1", "docker", "auths", None, state.fingerprint("x")
    )
    assert agrees(mine, Place("auths", auth="x"), state)
    assert not agrees(mine, Place("auths", auth="y"), state)
    assert not agrees(mine, None, state)
    assert not agrees(mine, Place("credsStore", "desktop"), state)
    assert not agrees(mine, Place("auths", auth="x"), State())  # another salt: not ours


def test_place_shows_its_helper() -> None:
    """How ``ecr status`` names a place."""
    assert Place("auths", auth="x").shown == "auths"
    assert Place("credHelpers", "pass").shown == "credHelpers (pass)"


@pytest.mark.parametrize(
    ("doc", "store", "helper", "trusted"),
    [
        pytest.param({"auths": {"h": {}}, "credsStore": "desktop"}, "credsStore", "desktop", True),
        pytest.param({"auths": {}, "credsStore": "desktop"}, "credsStore", "desktop", False),
        pytest.param({"auths": {"h": {}}, "credsStore": "pass"}, "credsStore", "desktop", False),
        pytest.param({"credHelpers": {"h": "ecr-login"}}, "credHelpers", "ecr-login", True),
        pytest.param({"credHelpers": {"h": "pass"}}, "credHelpers", "ecr-login", False),
        pytest.param({"auths": {"h": {}}}, "credsStore", "desktop", False),
    ],
)
def test_store_entries_are_checked_by_their_placeholder(
    doc: dict[str, Any], store: str, helper: str, trusted: bool
) -> None:
    """For credsStore and credHelpers logins, the placeholder (and its helper) is checked."""
    record = LoginRecord(60.0, "dev", "210987654321", "us-east-1", "docker", store, helper)
    assert agrees(record, place_of(doc, "h"), State()) is trusted
