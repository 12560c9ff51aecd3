"""The state file: when each login ends, and which account each profile's credentials are.

This module is the file's format and its records; where an auth file keeps a login is
entries.py, what a run records is recording.py, the freshness of each login freshness.py.

One JSON file for every auth file and client, ``places.state_file``
(``$XDG_STATE_HOME/runas-async/logins.json``)::

    {"version": 1,
     "salt": "<64 hex digits, random, made with the file>",
     "logins": {"<auth file's real path>": {"<host>": {
         "expires_at": 1767225600.0,  # expiresAt as GetAuthorizationToken returned it
         "profile": "dev", "account": "123456789012", "region": "us-east-1",
         "client": "docker", "store": "auths" | "credsStore" | "credHelpers",
         "helper": null | "desktop", "auth_hmac": null | "<hex>"}}},
     "accounts": {"<profile>\\n<role_arn or access key id>": "<account>"}}

It holds no secret: ``auth_hmac`` is the HMAC-SHA256 of the ``auth`` value the login wrote,
keyed with the file's salt, which tells our entry from one another login put there since
without keeping anything that could be replayed. For a login kept by a ``credsStore`` or a
``credHelpers`` helper only the host's placeholder is checked (asking the helper would cost
a process per host).

Written under the auth file's lock (runners.Runner.settle passes recording.Recorder.write to
the merge),
then under the state directory's own ``flock`` (one state file serves many auth files),
whole (temporary file, ``os.replace``), 0600. Read like awscli's cache
(:func:`~runas_async.files.read_trusted`): a corrupt, symlinked, foreign-owned or
group-readable file reads as empty and is replaced at the next write; it is never fatal.
Standard library only: ``ecr login --renew-before`` decides from it before any heavy import.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from runas_async.core.errors import RunasError
from runas_async.files import atomic_write, locked, our_dir, parse_json, read_trusted

log = logging.getLogger(__name__)

VERSION = 1
MAX_STATE_FILE = 4 * 1024 * 1024
"""A record is about 300 bytes; a file bigger than this is not ours."""

MAX_TIME = 1e11
"""Seconds since the epoch beyond any real expiry (year 5138): anything past is not a time."""

_SALT = re.compile(r"[0-9a-f]{64}")


def auth_key(path: Path) -> str:
    """How an auth file is named in the state file: its real path (symlinks resolved)."""
    return os.path.realpath(path)


@dataclass(frozen=True)
class LoginRecord:
    """One login runas-async made: what it is worth, and how to recognise it later."""

    expires_at: float | None
    profile: str
    account: str | None
    region: str
    client: str
    store: str
    """``auths``, ``credsStore`` or ``credHelpers``: where the secret went."""
    helper: str | None = None
    auth_hmac: str | None = None

    @classmethod
    def from_json(cls, value: object) -> LoginRecord | None:
        """The record in ``value``, or None when it is not one."""
        if not isinstance(value, dict):
            return None
        try:
            record = cls(**value)
        except TypeError:
            return None
        texts = (record.profile, record.region, record.client, record.store)
        optional = (record.account, record.helper, record.auth_hmac)
        if not all(isinstance(t, str) for t in texts) or not all(
            o is None or isinstance(o, str) for o in optional
        ):
            return None
        expires = record.expires_at
        if expires is not None and (
            isinstance(expires, bool)
            or not isinstance(expires, int | float)
            or not -MAX_TIME < expires < MAX_TIME
        ):
            return None
        return record


@dataclass
class State:
    """The state file's content; empty (with a new salt) when there is none to trust."""

    salt: str = field(default_factory=lambda: secrets.token_hex(32))
    logins: dict[str, dict[str, LoginRecord]] = field(default_factory=dict)
    accounts: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: bytes | None) -> State:
        """The state in ``raw``; anything that is not a state file of ours reads as empty."""
        if raw is None:
            return cls()
        try:
            doc = parse_json(raw, what="the state file", non_finite=True)  # per record
        except RunasError as e:
            log.debug("%s; ignored", e)
            return cls()
        if not isinstance(doc, dict) or doc.get("version") != VERSION:
            return cls()
        salt = doc.get("salt")
        if not isinstance(salt, str) or not _SALT.fullmatch(salt):
            return cls()
        state = cls(salt=salt)
        logins = doc.get("logins")
        for path, hosts in logins.items() if isinstance(logins, dict) else ():
            if isinstance(hosts, dict):
                records = {h: LoginRecord.from_json(v) for h, v in hosts.items()}
                state.logins[path] = {h: r for h, r in records.items() if r is not None}
        accounts = doc.get("accounts")
        for key, account in accounts.items() if isinstance(accounts, dict) else ():
            if isinstance(account, str):
                state.accounts[key] = account
        return state

    def dump(self) -> bytes:
        doc = {
            "version": VERSION,
            "salt": self.salt,
            "logins": {
                path: {h: asdict(r) for h, r in sorted(hosts.items())}
                for path, hosts in sorted(self.logins.items())
                if hosts
            },
            "accounts": dict(sorted(self.accounts.items())),
        }
        return json.dumps(doc, indent=1).encode() + b"\n"

    def fingerprint(self, auth: str) -> str:
        """HMAC-SHA256 of an ``auth`` value, keyed with this file's salt."""
        return hmac.new(bytes.fromhex(self.salt), auth.encode(), hashlib.sha256).hexdigest()

    def records(self, auth_path: Path) -> dict[str, LoginRecord]:
        return self.logins.get(auth_key(auth_path), {})

    def account(self, profile: str, identity: str | None) -> str | None:
        """The account ``profile`` resolved to last time, if its credentials are the same."""
        return None if identity is None else self.accounts.get(f"{profile}\n{identity}")


class StateFile:
    """The state file on disk: read without trusting it, changed under a lock."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> State:
        """What the file holds, or an empty state (never raises)."""
        return State.parse(read_trusted(self.path, MAX_STATE_FILE, "state file"))

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        with locked(our_dir(self.path.parent)):
            yield

    def update(self, change: Callable[[State], object]) -> None:
        """Re-read under the lock, apply ``change``, replace the file; a failure is logged."""
        try:
            with self._lock():
                state = self.load()
                change(state)
                atomic_write(self.path, state.dump(), 0o600, through_links=False)
        except OSError as e:
            log.warning("cannot write the state file %s: %s", self.path, e.strerror or e)
