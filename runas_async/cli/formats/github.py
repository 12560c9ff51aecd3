"""GitHub Actions: the step summary and the step's outputs."""

from __future__ import annotations

from collections.abc import Sequence

from runas_async.cli.formats._records import result_record, safe
from runas_async.core.models import LoginResult, Status


def github_summary(results: Sequence[LoginResult]) -> str:
    """A markdown table of registries, status and time, for ``$GITHUB_STEP_SUMMARY``."""
    lines = ["| registry | profile | status | seconds |", "| --- | --- | --- | --- |"]
    for result in results:
        rec = result_record(result)
        name = (rec["registry"] or safe(result.target.label)).replace("`", "'").replace("|", "\\|")
        status = rec["status"] if not rec["error"] else f"{rec['status']}: {rec['error']}"
        cells = (f"`{name}`", _markdown(rec["profile"]), _markdown(status))
        lines.append(f"| {' | '.join(cells)} | {rec['seconds']:.2f} |")
    ok = len(_hosts(results, Status.OK, Status.FRESH))
    return "\n".join([f"### ECR logins: {ok} of {len(results)}", "", *lines, "", ""])


def _markdown(text: str) -> str:
    """``text`` as one cell of a Markdown table: ``|`` cannot end it, ``<`` starts no tag."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;")


def github_output(results: Sequence[LoginResult]) -> str:
    """For ``$GITHUB_OUTPUT``: ``registries=HOST,HOST`` (every registry in force, the ones
    ``--renew-before`` found fresh too) and ``renewed=HOST,HOST`` (logged in by this run)."""
    in_force = ",".join(_hosts(results, Status.OK, Status.FRESH))
    return f"registries={in_force}\nrenewed={','.join(_hosts(results, Status.OK))}\n"


def _hosts(results: Sequence[LoginResult], *statuses: Status) -> list[str]:
    return [
        registry.host
        for result in results
        if result.status in statuses and (registry := result.registry or result.target.registry)
    ]
