"""``ecr status``: the auth file's ECR registries and their time left; no AWS call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TextIO

from runas_async.cli.commands._shared import Outcome, _status_rows
from runas_async.core.options import LoginStatus


def status(command: LoginStatus, env: Mapping[str, str], stdout: TextIO) -> Outcome:
    """List the auth file's ECR registries and their time left; no AWS call."""
    from runas_async.auth.state import Freshness
    from runas_async.cli.report import render_status

    rows = _status_rows(command.client.auth_path(env), env)
    render_status(rows, command.output.value, stdout)
    expired = any(row.freshness is Freshness.EXPIRED for row in rows)
    return Outcome(status=1 if expired else 0)
