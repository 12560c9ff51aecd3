"""``ecr status``: the auth file's ECR registries and their time left; no AWS call."""

from __future__ import annotations

from runas_async.cli.context import Context, Outcome
from runas_async.core.options import ListLogins


def status(command: ListLogins, ctx: Context) -> Outcome:
    """List the auth file's ECR registries and their time left; no AWS call."""
    from runas_async.auth.freshness import Freshness
    from runas_async.cli.report import render_status

    rows = ctx.ecr_logins()
    render_status(rows, command.output.value, ctx.stdout)
    expired = any(row.freshness is Freshness.EXPIRED for row in rows)
    return Outcome(status=1 if expired else 0)
