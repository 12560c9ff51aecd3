"""awscli's credentials cache (``~/.aws/cli/cache``): the same files, names and JSON, hardened.

Cache files::

    ~/.aws/cli/cache/<sha1>.json                      AssumeRole results, awscli's names and JSON
    ~/.aws/cli/cache/runas-async-session-<sha1>.json  GetSessionToken results, ours

A role's file name is the key botocore computes for that profile (:func:`role_cache_key`):
the SHA-1 of its AssumeRole arguments *including* ``SerialNumber`` when the role profile
itself names ``mfa_serial``, because that is the file awscli looks for. The code is not
part of the key, and we do not send ``SerialNumber`` (our source credentials already carry
MFA), but awscli and we read and write the same file for the same profile.

Whether an entry is fresh is botocore's own decision (``CachedCredentialFetcher``: an
entry that expires within 15 minutes is fetched again and overwritten).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from aiobotocore.credentials import AioCachedCredentialFetcher
from botocore.utils import JSONFileCache, parse_timestamp

from runas_async.core.errors import RunasError
from runas_async.files import atomic_write, make_dirs, parse_json, read_trusted

log = logging.getLogger(__name__)

SESSION_PREFIX = "runas-async-session-"
"""File name prefix of our GetSessionToken entries, beside awscli's in its cache directory."""

MAX_CACHE_FILE = 64 * 1024
"""A credentials entry is well under 4 KiB; anything bigger is not one."""


def role_cache_key(args: Mapping[str, Any]) -> str:
    """The file name (without ``.json``) botocore and awscli use for these AssumeRole arguments.

    ``args`` are the profile's (``RoleArn``, and ``RoleSessionName``, ``ExternalId``,
    ``SerialNumber``, ``DurationSeconds`` when set), never a generated session name. Same as
    ``botocore.credentials.BaseAssumeRoleCredentialFetcher._create_cache_key``; the tests check
    that botocore writes and reads exactly this file.
    """
    text = json.dumps(dict(args), sort_keys=True)
    digest = hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()
    return digest.replace(":", "_").replace(os.sep, "_").replace("/", "_")


def session_cache_key(source_profile: str, serial: str) -> str:
    """Our file name (no ``.json``) for the MFA session of ``source_profile`` with ``serial``."""
    text = json.dumps({"SerialNumber": serial, "SourceProfile": source_profile}, sort_keys=True)
    return SESSION_PREFIX + hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()


class CredentialCache(JSONFileCache):
    """botocore's ``JSONFileCache`` (awscli's cache): same directory, names and JSON, hardened.

    Writes go as botocore's do (a ``mkstemp`` file in the directory, so 0600, fsync,
    ``os.replace``), into a directory created 0700 when missing; a failed write is logged,
    never raised, and leaves no temporary file behind.
    An entry is used only when its file is a regular file (not a symlink) owned by us, with no
    group or other permissions, holding a credentials response (``Credentials`` with the three
    keys and a parseable, zoned ``Expiration``). Anything else is a miss, so botocore fetches
    anew and replaces the file. With ``refresh`` every read is a miss (``--refresh``).
    """

    def __init__(self, directory: Path, *, refresh: bool = False) -> None:
        super().__init__(working_dir=str(directory))
        self.directory = directory
        self.refresh = refresh
        self._loaded: dict[str, dict[str, Any]] = {}

    def path(self, cache_key: str) -> Path:
        return self.directory / f"{cache_key}.json"

    def get(self, cache_key: str) -> dict[str, Any] | None:
        """The entry under ``cache_key``, or None when it is missing or not to be trusted."""
        if self.refresh:
            return None
        raw = read_trusted(self.path(cache_key), MAX_CACHE_FILE, "cache file")
        if raw is None:
            return None
        try:
            value = parse_json(raw, what=f"cache entry {cache_key}")
        except RunasError as e:
            log.debug("%s; ignored", e)
            return None
        if not _is_credentials_entry(value):
            log.debug("cache entry %s is not a credentials response; ignored", cache_key)
            return None
        self._loaded[cache_key] = value
        return dict(value)

    def __contains__(self, cache_key: object) -> bool:
        return isinstance(cache_key, str) and self.get(cache_key) is not None

    def __getitem__(self, cache_key: str) -> Any:
        value = self._loaded.pop(cache_key, None) or self.get(cache_key)
        if value is None:
            raise KeyError(cache_key)
        return value

    def __setitem__(self, cache_key: str, value: Any) -> None:
        path = self.path(cache_key)
        try:
            text = json.dumps(value, default=_json_default)
            make_dirs(self.directory)
            atomic_write(path, text.encode("utf-8"), 0o600, through_links=False)
        except (OSError, TypeError, ValueError) as e:
            log.warning("cannot write the credentials cache %s: %s", path, e)

    def __delitem__(self, cache_key: str) -> None:
        try:
            self.path(cache_key).unlink()
        except FileNotFoundError:
            raise KeyError(cache_key) from None


def _json_default(value: object) -> object:
    """Datetimes as ``JSONFileCache`` writes them (``2026-01-02T03:04:05UTC``)."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S%Z")
    raise TypeError(f"cannot store a {type(value).__name__} in the credentials cache")


def _is_credentials_entry(value: object) -> bool:
    if not isinstance(value, dict):
        return False
    creds = value.get("Credentials")
    if not isinstance(creds, dict):
        return False
    keys = ("AccessKeyId", "SecretAccessKey", "SessionToken")
    if not all(isinstance(creds.get(k), str) and creds[k] for k in keys):
        return False
    expiration = creds.get("Expiration")
    if not isinstance(expiration, str):
        return False
    try:
        parsed = parse_timestamp(expiration)
    except (ValueError, OverflowError, OSError):
        return False
    return parsed.tzinfo is not None  # botocore compares it with an aware "now"


class _CachedFetch(AioCachedCredentialFetcher):
    """botocore's cached fetch (look up, 15-minute expiry window, write back) around one call."""

    def __init__(
        self,
        key: str,
        fetch: Callable[[], Awaitable[dict[str, Any]]],
        cache: CredentialCache | dict[str, Any],
    ) -> None:
        self._key = key
        self._fetch = fetch
        super().__init__(cache=cache)

    def _create_cache_key(self) -> str:
        return self._key

    async def _get_credentials(self) -> dict[str, Any]:
        return await self._fetch()
