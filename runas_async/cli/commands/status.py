"""``ecr status``: the auth file's ECR registries and their time left; no AWS call."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from runas_async.cli.commands._shared import Outcome, _status_rows
from runas_async.core.options import LoginStatus, Output


def status(command: LoginStatus, env: Mapping[str, str], stdout: TextIO) -> Outcome:
    """List the auth file's ECR registries and their time left; no AWS call."""
    from runas_async.auth.state import Freshness
    from runas_async.cli.report import render_status

    path = command.client.auth_path(env)
    rows = _status_rows(path, env)
    if not rows and command.output is not Output.JSON:
        stdout.write(nothing_logged_in(path) + "\n")
        return Outcome(status=0)
    render_status(rows, command.output.value, stdout)
    expired = any(row.freshness is Freshness.EXPIRED for row in rows)
    return Outcome(status=1 if expired else 0)


def nothing_logged_in(path: Path) -> str:
    """What ``ecr status`` says when the auth file holds no ECR registry: which file it read."""
    if not path.exists():
        return f"No ECR registry is logged in: {path} does not exist."
    return f"No ECR registry is logged in (read {path})."
