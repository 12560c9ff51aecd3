"""The credential helper's token cache: one token per (profile, region, private or public).

A token is reused until half its lifetime is gone (as amazon-ecr-credential-helper does)
and never once it has expired, even when fetching a new one fails. Each entry carries a
fingerprint of the profile's settings, so a changed profile is a miss. Also kept: the
account a profile's credentials resolved to (for a table with no registries).

The file (``~/.cache/runas-async/helper-tokens.json``) holds secrets: it is written whole
(temporary file, fsync, rename) and 0600, read only when it is ours alone (files.py), and
anything unreadable, corrupt or foreign reads as empty and is replaced. Concurrent
helpers serialise on a lock beside it, so 20 ``get``\\ s at once make one token request.
Standard library only: a warm ``get`` imports neither botocore nor aiohttp.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from runas_async.core.clients import HELPER
from runas_async.core.errors import RunasError
from runas_async.files import atomic_write, locked, our_dir, parse_json, read_trusted, warn

CLIENT = f"docker-credential-{HELPER}"
FILE_NAME = "helper-tokens.json"
MAX_FILE = 1024 * 1024
SAFETY = 60.0
"""A token this close to its expiry counts as expired: it must outlive the pull that uses it."""


class Served(NamedTuple):
    """What the helper last answered a registry with: the token's profile (None: the default
    credentials), region and end; no secret."""

    profile: str | None
    region: str
    expires_at: float


class CachedToken(NamedTuple):
    """A token as the helper keeps it; ``repr`` never shows the password. (A named tuple:
    cheaper to define than a dataclass, on a path measured in milliseconds.)"""

    username: str
    password: str
    expires_at: float
    fetched_at: float
    fingerprint: str

    def __repr__(self) -> str:
        return f"CachedToken(username={self.username!r}, password=<redacted>)"

    def fresh(self, now: float) -> bool:
        """Less than half its lifetime gone: reuse it without asking."""
        return now < self.fetched_at + (self.expires_at - self.fetched_at) / 2 and self.valid(now)

    def valid(self, now: float) -> bool:
        """Not expired (with :data:`SAFETY` to spare)."""
        return now < self.expires_at - SAFETY


def key(profile: str | None, region: str, public: bool) -> str:
    """The cache key of a token request (no profile: the default credentials)."""
    return f"{profile or ''}|{region}|{'public' if public else 'private'}"


class TokenCache:
    """The cache file in ``directory``; use :meth:`locked` around a read-fetch-write."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / FILE_NAME

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive, across processes (an flock on the cache's directory). A directory
        that cannot be made, locked or trusted is a warning: the helper goes on without
        its cache (it never costs an answer), and nothing is written there."""
        try:
            with contextlib.ExitStack() as stack:
                stack.enter_context(locked(our_dir(self.directory)))
                self.writable = True
                held = stack.pop_all()
        except OSError as e:
            warn("the token cache is not used: %s", e.strerror or e)
            self.writable = False
            yield
            return
        with held:
            yield

    writable = False
    """Whether :meth:`locked` holds the lock on a directory we trust (else no writes)."""

    def _read(self) -> dict[str, Any]:
        raw = read_trusted(self.path, MAX_FILE, "token cache")
        try:
            doc = parse_json(raw, what="the token cache") if raw else {}
        except RunasError:
            doc = {}
        return doc if isinstance(doc, dict) else {}

    def _section(self, name: str) -> dict[str, Any]:
        section = self._read().get(name)
        return section if isinstance(section, dict) else {}

    def get(self, name: str, fingerprint: str) -> CachedToken | None:
        """The token under ``name`` if it is well-formed and for these settings."""
        return _token(self._read(), name, fingerprint)

    def put(self, name: str, token: CachedToken) -> None:
        """Store ``token`` under ``name``; call within :meth:`locked`."""
        self._update("tokens", name, token._asdict())

    def route(self, server_url: str, stamp: str) -> CachedToken | None:
        """The token a previous ``get`` of ``server_url`` answered with, if nothing that
        chose it has changed since (``stamp``): the warm path, one read and no parsing of
        anything else."""
        doc = self._read()
        routes = doc.get("routes")
        route = routes.get(server_url) if isinstance(routes, dict) else None
        if not isinstance(route, dict) or route.get("stamp") != stamp:
            return None
        return _token(doc, str(route.get("token")), str(route.get("fingerprint")))

    def served(self) -> dict[str, Served]:
        """Each registry host a ``get`` answered, with the token it answered with (the
        longest-lived when docker asked under several spellings): ``ecr status`` shows it."""
        out: dict[str, Served] = {}
        doc = self._read()
        routes = doc.get("routes")
        for server_url, route in (routes if isinstance(routes, dict) else {}).items():
            if not isinstance(route, dict):
                continue
            name = str(route.get("token"))
            token = _token(doc, name, str(route.get("fingerprint")))
            profile, _, rest = name.partition("|")
            host = _host(server_url)
            if token is None or (host in out and out[host].expires_at >= token.expires_at):
                continue
            out[host] = Served(profile or None, rest.partition("|")[0], token.expires_at)
        return out

    def put_route(self, server_url: str, name: str, fingerprint: str, stamp: str) -> None:
        self._update(
            "routes", server_url, {"token": name, "fingerprint": fingerprint, "stamp": stamp}
        )

    def account(self, name: str, fingerprint: str) -> str | None:
        entry = self._section("accounts").get(name)
        if isinstance(entry, dict) and entry.get("fingerprint") == fingerprint:
            account = entry.get("account")
            return account if isinstance(account, str) else None
        return None

    def put_account(self, name: str, account: str, fingerprint: str) -> None:
        self._update("accounts", name, {"account": account, "fingerprint": fingerprint})

    def _update(self, section: str, name: str, value: dict[str, Any]) -> None:
        doc = self._read()
        entries = doc.get(section)
        if not isinstance(entries, dict):
            entries = doc[section] = {}
        entries[name] = dict(value)
        if not self.writable:
            return
        try:
            atomic_write(self.path, json.dumps(doc).encode(), 0o600, through_links=False)
        except OSError as e:
            warn("cannot write the token cache %s: %s", self.path, e.strerror or e)


def _token(doc: dict[str, Any], name: str, fingerprint: str) -> CachedToken | None:
    """The token under ``name`` in the cache's document, if well-formed and for these settings."""
    tokens = doc.get("tokens")
    entry = tokens.get(name) if isinstance(tokens, dict) else None
    if not isinstance(entry, dict):
        return None
    try:
        token = CachedToken(
            username=str(entry["username"]),
            password=str(entry["password"]),
            expires_at=float(entry["expires_at"]),
            fetched_at=float(entry["fetched_at"]),
            fingerprint=str(entry["fingerprint"]),
        )
    except (TypeError, KeyError, ValueError, OverflowError):
        return None
    if not (math.isfinite(token.expires_at) and math.isfinite(token.fetched_at)):
        return None
    return token if token.fingerprint == fingerprint and token.password else None


def _host(server_url: str) -> str:
    """``https://HOST/v2/``, ``HOST:443``, ``HOST.``: HOST, lower case (as the helper reads
    a server URL: core/endpoints.registry_host)."""
    from runas_async.core.endpoints import registry_host

    return registry_host(server_url).lower()
