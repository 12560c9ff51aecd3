"""The records JSON outputs share (``-o json``, the GitHub summary, the plain lines)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runas_async.core.models import LoginResult, Status
from runas_async.core.sanitize import redact, strip_controls

if TYPE_CHECKING:
    from runas_async.auth.freshness import EcrLogin
    from runas_async.core.plan import Plan


def safe(text: str) -> str:
    """Outside text (a profile name from a config file, an error) as every output shows it:
    credentials redacted, control and bidi characters gone (core/sanitize.py). Errors come
    cleaned from where they were made; this is the last guard, and the one for names."""
    return strip_controls(redact(text))


def result_record(result: LoginResult) -> dict[str, Any]:
    """One entry of the JSON document."""
    registry = result.registry or result.target.registry
    return {
        "registry": registry.host if registry else None,
        "account": registry.account if registry else None,
        "region": result.target.key.region,
        "profile": safe(result.target.key.profile),
        "status": result.status.value,
        "error": safe(result.error or "") if result.status is Status.FAILED else None,
        "seconds": round(result.seconds, 3),
    } | ({} if result.expires_in is None else {"expires_in": round(result.expires_in)})


def plan_records(plan: Plan) -> list[dict[str, Any]]:
    """The JSON entries of a dry run: every registry with the token request serving it."""
    records = []
    for target in plan.targets:
        record = result_record(LoginResult(target=target, status=Status.PLANNED))
        record["token_request"] = {
            "profile": target.key.profile,
            "region": target.key.region,
        }
        records.append(record)
    return records


def status_record(row: EcrLogin) -> dict[str, Any]:
    """One entry of ``ecr status -o json``."""
    record = row.record
    return {
        "registry": row.host,
        "where": None if row.place is None else row.place.store,
        "helper": None if row.place is None else row.place.helper,
        "ours": record is not None,
        "profile": None if record is None else record.profile,
        "client": None if record is None else record.client,
        "state": row.freshness.value,
        "expires_at": None if record is None else record.expires_at,
        "expires_in": None if row.seconds_left is None else round(row.seconds_left),
    }
