"""``ecr status``: the auth file's ECR registries and their time left; no AWS call."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from runas_async.cli.args import (
    Registration,
    _add_client_option,
    _add_debug,
    _add_output,
    client_of,
)
from runas_async.cli.context import Context, Outcome
from runas_async.core.options import ListLogins, Output


def status(command: ListLogins, ctx: Context) -> Outcome:
    """List the auth file's ECR registries and their time left; no AWS call."""
    from runas_async.auth.freshness import Freshness
    from runas_async.cli.formats import render_status

    rows = ctx.ecr_logins()
    render_status(rows, command.output, ctx.stdout)
    expired = any(row.freshness is Freshness.EXPIRED for row in rows)
    return Outcome(status=1 if expired else 0)


def _arguments(p: argparse.ArgumentParser, reg: Registration) -> None:
    _add_client_option(p)
    _add_output(p, reg)
    _add_debug(p)


def _build(
    args: argparse.Namespace, job: tuple[str, ...] | None, env: Mapping[str, str]
) -> ListLogins:
    return ListLogins(client_of(args.client, env), args.output)


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
    formats=(Output.TEXT, Output.JSON),
    order=3,
)
