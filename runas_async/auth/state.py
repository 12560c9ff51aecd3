"""The state file: when each login ends, and which account each profile's credentials are.

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

Written under the auth file's lock (login.py passes :meth:`Recorder.write` to the merge),
then under the state directory's own ``flock`` (one state file serves many auth files),
whole (temporary file, ``os.replace``), 0600. Read like awscli's cache
(:func:`~runas_async.files.read_trusted`): a corrupt, symlinked, foreign-owned or
group-readable file reads as empty and is replaced at the next write; it is never fatal.
Standard library only: ``ecr login --renew-before`` decides from it before any heavy import.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runas_async.core.endpoints import AccountEndpoint, parse_endpoint
from runas_async.core.errors import UsageError
from runas_async.core.models import LoginResult, Status, TokenKey
from runas_async.core.partitions import Partition
from runas_async.files import atomic_write, read_trusted

if TYPE_CHECKING:
    from runas_async.core.plan import Plan
    from runas_async.engine import Reporter

log = logging.getLogger(__name__)

VERSION = 1
MAX_STATE_FILE = 4 * 1024 * 1024
"""A record is about 300 bytes; a file bigger than this is not ours."""

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
        if expires is not None and (not isinstance(expires, int | float) or expires != expires):
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
            doc = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            log.debug("state file is not JSON; ignored")
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
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def update(self, change: Callable[[State], object]) -> None:
        """Re-read under the lock, apply ``change``, replace the file; a failure is logged."""
        try:
            with self._lock():
                state = self.load()
                change(state)
                atomic_write(self.path, state.dump(), 0o600)
        except OSError as e:
            log.warning("cannot write the state file %s: %s", self.path, e.strerror or e)


# --- where a login lives, and whether a record still describes it ------------------------


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


class Freshness(enum.Enum):
    """What is known of a login's end."""

    VALID = "valid"
    EXPIRED = "expired"
    UNKNOWN = "unknown"
    """Not ours (another tool, a plain docker login), or no expiry recorded."""


def freshness(
    record: LoginRecord | None, place: Place | None, state: State, now: float
) -> tuple[Freshness, float | None]:
    """The login's freshness and seconds left (None when unknown)."""
    if record is None or record.expires_at is None or not agrees(record, place, state):
        return Freshness.UNKNOWN, None
    left = record.expires_at - now
    return (Freshness.VALID if left > 0 else Freshness.EXPIRED), left


# --- what a run learns -------------------------------------------------------------------


class Recorder:
    """Collects what a run learns and writes it under the auth file's lock.

    The runner reports each token's expiry (:meth:`token`), the reporter each registry
    done (:meth:`result`); :meth:`write` is called by the merge with the auth file as
    written, so that every record describes an entry that is really there.
    """

    def __init__(
        self,
        state_file: StateFile,
        auth_path: Path,
        client: str,
        identities: Mapping[str, str | None] | None = None,
    ) -> None:
        self.state_file = state_file
        self.auth_path = auth_path
        self.client = client
        self.identities = dict(identities or {})
        self.expiries: dict[str, float | None] = {}
        self.done: dict[str, LoginResult] = {}

    def token(self, host: str, expires_at: float | None) -> None:
        self.expiries[host] = expires_at

    def result(self, result: LoginResult) -> None:
        if result.status is Status.OK and result.registry is not None:
            self.done[result.registry.host] = result

    def write(
        self, doc: Mapping[str, Any], added: Iterable[str] = (), removed: Iterable[str] = ()
    ) -> None:
        """Records for ``added`` hosts, none for ``removed`` ones (blocking: a lock)."""
        added, removed = list(added), list(removed)

        def change(state: State) -> None:
            records = state.logins.setdefault(auth_key(self.auth_path), {})
            for host in removed:
                records.pop(host, None)
            for host in added:
                records.pop(host, None)
                new = self._record(state, doc, host)
                if new is not None:
                    records[host] = new
            for result in self.done.values():
                identity = self.identities.get(result.target.key.profile)
                registry = result.registry
                if result.target.registry is None and identity and registry and registry.account:
                    state.accounts[f"{result.target.key.profile}\n{identity}"] = registry.account

        self.state_file.update(change)

    def _record(self, state: State, doc: Mapping[str, Any], host: str) -> LoginRecord | None:
        result, place = self.done.get(host), place_of(doc, host)
        if result is None or place is None or result.registry is None:
            return None  # finished after the run was cut short: not known to be ours
        return LoginRecord(
            expires_at=self.expiries.get(host),
            profile=result.target.key.profile,
            account=result.registry.account,
            region=result.registry.region,
            client=self.client,
            store=place.store,
            helper=place.helper,
            auth_hmac=None if place.auth is None else state.fingerprint(place.auth),
        )


class Recording:
    """A reporter that tells the recorder what is done, and shows the fresh rows too."""

    def __init__(
        self, inner: Reporter, recorder: Recorder | None, fresh: Sequence[LoginResult] = ()
    ) -> None:
        self.inner = inner
        self.recorder = recorder
        self.fresh = list(fresh)

    def start(self, plan: Plan) -> None:
        self.inner.start(plan)
        for result in self.fresh:
            self.inner.update(result)

    def update(self, result: LoginResult) -> None:
        if self.recorder is not None:  # None: nothing to record (a job's logins, secrets)
            self.recorder.result(result)
        self.inner.update(result)

    def finish(self, results: Sequence[LoginResult]) -> None:
        self.inner.finish([*self.fresh, *results])

    def note(self, key: TokenKey | str, text: str | None) -> None:
        self.inner.note(key, text)

    def paused(self) -> AbstractContextManager[None]:
        return self.inner.paused()

    def stop(self) -> None:
        self.inner.stop()


# --- ecr status ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusRow:
    """One ECR registry of an auth file, as ``ecr status`` shows it."""

    host: str
    place: Place | None
    record: LoginRecord | None
    """Ours, and still describing the entry; None otherwise."""
    freshness: Freshness
    seconds_left: float | None


def _host_of(key: str) -> str:
    return key.partition("://")[2].partition("/")[0] if "://" in key else key.partition("/")[0]


def is_ecr(host: str, partitions: tuple[Partition, ...]) -> bool:
    """Whether ``host`` is an ECR registry (private in any partition, or ECR Public)."""
    try:
        return not isinstance(parse_endpoint(host, partitions), AccountEndpoint)
    except UsageError:
        return False


def status_rows(
    doc: Mapping[str, Any],
    auth_path: Path,
    state: State,
    now: float,
    partitions: tuple[Partition, ...],
) -> list[StatusRow]:
    """Every ECR registry of the auth file ``doc`` (auths, store placeholders, credHelpers)."""
    keys: list[str] = []
    for section in ("auths", "credHelpers"):
        value = doc.get(section)
        if isinstance(value, dict):
            keys += [_host_of(k).lower() for k in value if isinstance(k, str)]
    records = state.records(auth_path)
    rows = []
    for host in sorted(dict.fromkeys(h for h in keys if is_ecr(h, partitions))):
        place, record = place_of(doc, host), records.get(host)
        fresh, left = freshness(record, place, state, now)
        ours = record if record is not None and agrees(record, place, state) else None
        rows.append(StatusRow(host, place, ours, fresh, left))
    return rows


def fresh_seconds(
    doc: Mapping[str, Any],
    auth_path: Path,
    state: State,
    host: str,
    renew_before: float,
    now: float | None = None,
) -> float | None:
    """Seconds left of ``host``'s recorded login when it outlives ``renew_before``, else None."""
    record = state.records(auth_path).get(host)
    fresh, left = freshness(record, place_of(doc, host), state, time.time() if now is None else now)
    if fresh is Freshness.VALID and left is not None and left > renew_before:
        return left
    return None


def time_left(seconds: float) -> str:
    """``11h58m``, ``45m``, ``30s``."""
    s = max(0, int(seconds))
    h, m = divmod(s // 60, 60)
    if h:
        return f"{h}h{m:02d}m"
    return f"{m}m" if m else f"{s}s"
