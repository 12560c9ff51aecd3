"""auth/freshness.py: each ECR login of an auth file with what is known of its end (``ecr
status``, ``logout --expired``, ``--renew-before``). Pure: documents in, rows out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runas_async.auth.freshness import Freshness, ecr_logins, fresh_seconds, time_left
from runas_async.auth.state import LoginRecord, State, auth_key
from runas_async.core.partitions import load_partitions

PARTITIONS = load_partitions()
AUTH = Path("/nonexistent/config.json")
NOW = 1_000_000.0
OURS = "111111111111.dkr.ecr.us-east-1.amazonaws.com"
OLD = "222222222222.dkr.ecr.us-east-1.amazonaws.com"
PLAIN = "333333333333.dkr.ecr.eu-west-1.amazonaws.com"


def _world() -> tuple[dict[str, Any], State]:
    state = State()
    doc = {
        "auths": {
            OURS: {"auth": "a"},
            f"https://{OLD}": {"auth": "b"},
            PLAIN: {"auth": "c"},
            "ghcr.io": {"auth": "d"},
        }
    }

    def record(expires: float, auth: str) -> LoginRecord:
        fingerprint = state.fingerprint(auth)
        return LoginRecord(expires, "dev", "1", "us-east-1", "docker", "auths", None, fingerprint)

    state.logins[auth_key(AUTH)] = {OURS: record(NOW + 7200, "a"), OLD: record(NOW - 1, "b")}
    return doc, state


def test_ecr_logins_are_the_ecr_hosts_with_their_freshness() -> None:
    """Only ECR registries, by host (scheme gone), sorted; ours with their time
    left, a plain docker login unknown."""
    doc, state = _world()
    rows = ecr_logins(doc, AUTH, state, NOW, PARTITIONS)
    assert [(r.host, r.freshness, r.seconds_left) for r in rows] == [
        (OURS, Freshness.VALID, 7200),
        (OLD, Freshness.EXPIRED, -1),
        (PLAIN, Freshness.UNKNOWN, None),
    ]
    assert rows[2].record is None


@pytest.mark.parametrize(
    ("renew", "left"),
    [
        pytest.param(3600, 7200, id="outlives"),
        pytest.param(7200, None, id="not-longer-than"),
        pytest.param(8000, None, id="too-short"),
    ],
)
def test_fresh_seconds(renew: float, left: float | None) -> None:
    """A recorded login is fresh only when it outlives ``--renew-before``."""
    doc, state = _world()
    assert fresh_seconds(doc, AUTH, state, OURS, renew, NOW) == left
    assert fresh_seconds(doc, AUTH, state, OLD, 0, NOW) is None
    assert fresh_seconds(doc, AUTH, state, PLAIN, 0, NOW) is None


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(43080, "11h58m"), (2700, "45m"), (30, "30s"), (-5, "0s"), (3600, "1h00m")],
)
def test_time_left(seconds: float, shown: str) -> None:
    assert time_left(seconds) == shown
