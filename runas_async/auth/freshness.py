"""What is known of a login's end: each ECR registry of an auth file with its record
(state.py), where it lives (entries.py) and its time left, for ``ecr status``, ``logout
--expired`` and ``--renew-before``. Standard library only.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runas_async.auth.entries import Place, agrees, place_of
from runas_async.auth.state import LoginRecord, State
from runas_async.core.endpoints import AccountEndpoint, parse_endpoint
from runas_async.core.errors import UsageError
from runas_async.core.partitions import Partition


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


@dataclass(frozen=True)
class EcrLogin:
    """One ECR login of an auth file (one row of ``ecr status``): where it is, our record
    of it, and what is known of its end."""

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


def ecr_logins(
    doc: Mapping[str, Any],
    auth_path: Path,
    state: State,
    now: float,
    partitions: tuple[Partition, ...],
) -> list[EcrLogin]:
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
        rows.append(EcrLogin(host, place, ours, fresh, left))
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
