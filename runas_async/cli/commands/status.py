"""``ecr status``: the auth file's ECR registries and their time left; no AWS call."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from runas_async.cli.args import (
    Registration,
    _add_client_option,
    _add_debug,
    _add_output,
    client_of,
)
from runas_async.cli.context import Context, Needs, Outcome
from runas_async.core.options import ListLogins, Output

if TYPE_CHECKING:
    from runas_async.auth.freshness import EcrLogin


def status(command: ListLogins, ctx: Context) -> Outcome:
    """List the auth file's ECR registries and their time left; no AWS call."""
    from runas_async.auth.freshness import Freshness
    from runas_async.cli.formats import render_status

    rows = _with_helper_tokens(ctx.ecr_logins(), ctx.env)
    if not rows and command.output is not Output.JSON:
        ctx.stdout.write(nothing_logged_in(ctx.auth.path) + "\n")
        return Outcome(status=0)
    render_status(rows, ctx.auth.path, command.output, ctx.stdout)
    # The helper's own rows need nothing done: it fetches a new token at the next pull.
    expired = any(row.freshness is Freshness.EXPIRED and not _helpers(row) for row in rows)
    return Outcome(status=1 if expired else 0)


def _helpers(row: EcrLogin) -> bool:
    """Whether credHelpers sends the row's registry to runas-async's own helper."""
    from runas_async.core.clients import HELPER

    return row.place is not None and row.place.helper == HELPER


def nothing_logged_in(path: Path) -> str:
    """What ``ecr status`` says when the auth file holds no ECR registry: which file it read."""
    if not path.exists():
        return f"No ECR registry is logged in: {path} does not exist."
    return f"No ECR registry is logged in (read {path})."


def _with_helper_tokens(rows: list[EcrLogin], env: Mapping[str, str]) -> list[EcrLogin]:
    """Rows that credHelpers sends to runas-async's own helper: the token it last answered
    with (its cache, whichever registry it was fetched for), else the row as it stands."""
    import time
    from dataclasses import replace

    from runas_async.auth.freshness import Freshness
    from runas_async.auth.helpercache import CLIENT, TokenCache
    from runas_async.auth.state import LoginRecord
    from runas_async.core.clients import HELPER
    from runas_async.core.places import cache_dir

    if not any(_helpers(row) for row in rows):
        return rows
    served, now = TokenCache(cache_dir(env)).served(), time.time()
    out = []
    for row in rows:
        got = served.get(row.host) if _helpers(row) else None
        if got is None:
            out.append(row)
            continue
        record = LoginRecord(
            expires_at=got.expires_at,
            profile=got.profile or env.get("AWS_PROFILE") or "default",
            account=row.host.partition(".")[0] if row.host[:12].isdigit() else None,
            region=got.region,
            client=CLIENT,
            store="credHelpers",
            helper=HELPER,
        )
        left = got.expires_at - now
        fresh = Freshness.VALID if left > 0 else Freshness.EXPIRED
        out.append(replace(row, record=record, freshness=fresh, seconds_left=left))
    return out


def _arguments(p: argparse.ArgumentParser, reg: Registration) -> None:
    _add_client_option(p)
    _add_output(p, reg)
    _add_debug(p)


def _build(
    args: argparse.Namespace, job: tuple[str, ...] | None, env: Mapping[str, str]
) -> ListLogins:
    return ListLogins(client_of(args.client, env), args.output)


def _needs(command: ListLogins) -> Needs:
    return Needs(client=command.client)


COMMAND = Registration(
    path=("ecr", "status"),
    help="list the ECR registries of the client's auth file and when their logins end",
    description=(
        "List every ECR registry in the client's auth file, its credential store or its "
        "credHelpers: where the credentials live, whether runas-async logged it in and "
        "with which profile, and the time left. No AWS call. Exit status 1 when one has "
        "expired."
    ),
    add_arguments=_arguments,
    build=_build,
    run=status,
    needs=_needs,
    formats=(Output.TEXT, Output.JSON),
    order=3,
)
