"""Where an auth file keeps a host's login (:class:`Place`), and whether a record of the
state file (state.py) still describes it (:func:`agrees`).

A login lives in ``auths`` (the ``auth`` value in the file), in the ``credsStore`` (the
host's placeholder in ``auths``) or with a ``credHelpers`` helper. Standard library only.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runas_async.auth.state import LoginRecord, State


@dataclass(frozen=True)
class Place:
    """Where an auth file keeps a host's credentials."""

    store: str
    """``auths`` (the ``auth`` value in the file), ``credsStore`` or ``credHelpers``."""
    helper: str | None = None
    auth: str | None = None

    @property
    def shown(self) -> str:
        return self.store if self.helper is None else f"{self.store} ({self.helper})"


def _auths_entry(doc: Mapping[str, Any], host: str) -> Mapping[str, Any] | None:
    auths = doc.get("auths")
    if not isinstance(auths, dict):
        return None
    for key in (host, f"https://{host}", f"http://{host}"):
        entry = auths.get(key)
        if isinstance(entry, dict):
            return entry
    return None


def place_of(doc: Mapping[str, Any], host: str) -> Place | None:
    """Where ``doc`` (an auth file) keeps ``host``'s login, or None when it has none."""
    helpers = doc.get("credHelpers")
    helper = helpers.get(host) if isinstance(helpers, dict) else None
    if isinstance(helper, str) and helper:
        return Place("credHelpers", helper)
    entry = _auths_entry(doc, host)
    if entry is None:
        return None
    auth = entry.get("auth")
    if isinstance(auth, str) and auth:
        return Place("auths", auth=auth)
    store = doc.get("credsStore")
    if isinstance(store, str) and store:
        return Place("credsStore", store)  # the host's placeholder: the secret is in the store
    return None


def agrees(record: LoginRecord, place: Place | None, state: State) -> bool:
    """Whether the auth file still holds the login ``record`` describes."""
    if place is None or place.store != record.store:
        return False
    if place.auth is not None:
        return record.auth_hmac is not None and hmac.compare_digest(
            record.auth_hmac, state.fingerprint(place.auth)
        )
    return place.helper == record.helper
