"""``ecr logout``: the plan's registries, or (``--expired``) those whose recorded login
has ended; no token fetched.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import TYPE_CHECKING

from runas_async.cli.args import (
    EXIT_EPILOG,
    Registration,
    _add_credential_options,
    _add_debug,
    _add_run_options,
    _add_targets,
    credentials_of,
    run_options,
    targets_of,
)
from runas_async.cli.context import Context, Needs, Outcome
from runas_async.core.errors import UsageError
from runas_async.core.options import Logout, Output, Targets

if TYPE_CHECKING:
    import anyio

    from runas_async.aws.tokens import AwsTokenProvider
    from runas_async.core.models import LoginResult
    from runas_async.core.plan import Plan


def logout(command: Logout, ctx: Context) -> Outcome:
    """Log the client out of every registry of the plan (no tokens fetched)."""
    ctx.find_client()
    if command.expired:
        ctx.check_auth()  # first: the file is then read once, for the records and the run
        plan = _expired_plan(ctx)
        if command.run.dry_run:
            return ctx.dry_run(plan)
        return _logout_plan(command, ctx, plan, None)
    plan = ctx.plan
    ctx.check_auth(plan)  # before anything, dry run or not
    if command.run.dry_run:
        return ctx.dry_run(plan)
    return _logout_plan(command, ctx, plan, ctx.tokens(ctx.reporter))


def _logout_plan(
    command: Logout, ctx: Context, plan: Plan, accounts: AwsTokenProvider | None
) -> Outcome:
    """Log out of ``plan``'s registries (``accounts`` for profiles' own registries, if any);
    the job directories a crash left (jobdir.py) removed too."""
    from runas_async.cli import jobdir
    from runas_async.engine import run_logouts

    jobdir.sweep(ctx.env)

    opts = command.run
    runner = ctx.runner(plan)

    async def work(stop: anyio.Event) -> list[LoginResult]:
        async with runner:
            return await run_logouts(
                plan,
                accounts or _NoAccounts(),
                runner,
                ctx.reporter,
                jobs=opts.jobs,
                logout_timeout=opts.timeout,
                deadline=opts.deadline,
                stop=stop,
            )

    return ctx.until_signalled(work)


class _NoAccounts:
    """For a plan whose every registry is known: no account is ever asked."""

    async def account(self, profile: str, region: str) -> str:
        raise RuntimeError(f"no account lookup for {profile!r} in {region}")


def _expired_plan(ctx: Context) -> Plan:
    """``logout --expired``: the registries whose recorded login has ended.

    Not those credHelpers sends to runas-async's own helper: nothing is stored for them to
    remove (the helper's record is of the token it last answered with, and it fetches a new
    one at the next pull), so they are neither logged out nor reported, as ``ecr status``
    does not count them as expired.
    """
    from runas_async.auth.freshness import Freshness
    from runas_async.core.clients import HELPER
    from runas_async.core.models import Registry, Target, TokenKey
    from runas_async.core.plan import Plan

    targets = [
        Target(
            TokenKey(row.record.profile, row.record.region, public=row.record.account is None),
            Registry(row.host, row.record.account, row.record.region),
        )
        for row in ctx.ecr_logins()
        if row.freshness is Freshness.EXPIRED
        and row.record is not None
        and (row.place is None or row.place.helper != HELPER)
    ]
    return Plan(targets=tuple(targets), partitions=ctx.partitions)


# --- the command line --------------------------------------------------------------------


def _arguments(p: argparse.ArgumentParser, reg: Registration) -> None:
    _add_targets(p, many=True, verb="log out of")
    _add_run_options(p, reg, what="logouts")
    p.add_argument(
        "--expired",
        action="store_true",
        help="log out of every registry whose recorded login has expired (no ENDPOINT)",
    )
    _add_credential_options(p)
    _add_debug(p)


def _build(args: argparse.Namespace, job: tuple[str, ...] | None, env: Mapping[str, str]) -> Logout:
    targets = targets_of(args, "logout")
    if args.expired and targets != Targets(None, region=targets.region):
        raise UsageError("--expired finds the registries itself: give no PROFILE or ENDPOINT")
    credentials = credentials_of(args)
    return Logout(targets, run_options(args, env), credentials, expired=args.expired)


def _needs(command: Logout) -> Needs:
    return Needs(
        client=command.run.client,
        targets=command.targets,
        run=command.run,
        credentials=command.credentials,
        logout=True,
    )


COMMAND = Registration(
    path=("ecr", "logout"),
    help="remove ECR registries from the client's auth file",
    description=(
        "Log a container client out of exactly these ECR registries, concurrently, "
        "leaving every other entry of its auth file as it is."
    ),
    add_arguments=_arguments,
    build=_build,
    run=logout,
    needs=_needs,
    formats=(Output.TEXT, Output.JSON),
    epilog=EXIT_EPILOG,
    order=2,
)
