"""``ecr logout``: the plan's registries, or (``--expired``) those whose recorded login
has ended; no token fetched.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import TYPE_CHECKING, TextIO

from runas_async.cli.args import (
    EXIT_EPILOG,
    Registration,
    _add_credential_options,
    _add_debug,
    _add_run_options,
    _add_targets,
    run_options,
    targets_of,
)
from runas_async.cli.commands._shared import (
    Outcome,
    _auth_file,
    _client_runner,
    _dry_run,
    _find_client,
    _prepared,
    _recorder,
    _reporter,
    _status_rows,
    _tokens,
    _until_signalled,
)
from runas_async.core.errors import UsageError
from runas_async.core.options import CredentialOptions, Logout, Output, RunOptions, Targets

if TYPE_CHECKING:
    import anyio

    from runas_async.auth.registry import BuiltinRunner
    from runas_async.auth.runners import ClientRunner
    from runas_async.aws.tokens import AwsTokenProvider
    from runas_async.core.models import LoginResult
    from runas_async.core.plan import Plan
    from runas_async.engine import Reporter


def logout(command: Logout, env: Mapping[str, str], stdout: TextIO) -> Outcome:
    """Log the client out of every registry of the plan (no tokens fetched)."""
    opts = command.run
    executable = _find_client(opts, env) if opts.client.program else None
    if command.expired:
        plan = _expired_plan(opts, env)
        if opts.dry_run:
            return _dry_run(plan, opts.output, stdout, logout=True)
        return _logout_plan(plan, None, executable, opts, env, stdout)
    with _prepared(command.targets, env, connect=False) as prepared:
        _auth_file(opts, env, prepared.plan)  # before anything, dry run or not
        if opts.dry_run:
            return _dry_run(prepared.plan, opts.output, stdout, logout=True)
        reporter = _reporter(opts.output, stdout, env, logout=True)
        accounts = _tokens(prepared, command.credentials, env, reporter)
        return _logout_plan(prepared.plan, accounts, executable, opts, env, stdout, reporter)


def _logout_plan(
    plan: Plan,
    accounts: AwsTokenProvider | None,
    executable: str | None,
    opts: RunOptions,
    env: Mapping[str, str],
    stdout: TextIO,
    reporter: Reporter | None = None,
) -> Outcome:
    """Log out of ``plan``'s registries (``accounts`` for profiles' own registries, if any)."""
    from runas_async.auth.registry import BuiltinRunner
    from runas_async.engine import run_logouts

    auth, seed = _auth_file(opts, env, plan)
    reporter = reporter or _reporter(opts.output, stdout, env, logout=True)
    recorder = _recorder(opts, env, auth, [])
    runner: ClientRunner | BuiltinRunner = (
        BuiltinRunner(auth, seed, env, connections=opts.jobs, recorder=recorder)
        if executable is None
        else _client_runner(opts, executable, auth, seed, env, recorder)
    )

    async def work(stop: anyio.Event) -> list[LoginResult]:
        async with runner:
            return await run_logouts(
                plan,
                accounts or _NoAccounts(),
                runner,
                reporter,
                jobs=opts.jobs,
                login_timeout=opts.timeout,
                deadline=opts.deadline,
                stop=stop,
            )

    return _until_signalled(work, reporter)


class _NoAccounts:
    """For a plan whose every registry is known: no account is ever asked."""

    async def account(self, profile: str, region: str) -> str:
        raise RuntimeError(f"no account lookup for {profile!r} in {region}")


def _expired_plan(opts: RunOptions, env: Mapping[str, str]) -> Plan:
    """``logout --expired``: the registries whose recorded login has ended."""
    from runas_async.auth.state import Freshness
    from runas_async.core.models import Registry, Target, TokenKey
    from runas_async.core.partitions import load_partitions
    from runas_async.core.plan import Plan

    targets = [
        Target(
            TokenKey(row.record.profile, row.record.region, public=row.record.account is None),
            Registry(row.host, row.record.account, row.record.region),
        )
        for row in _status_rows(opts.client.auth_path(env), env)
        if row.freshness is Freshness.EXPIRED and row.record is not None
    ]
    return Plan(targets=tuple(targets), partitions=load_partitions())


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
    credentials = CredentialOptions(mfa_code=args.mfa_code, refresh=args.refresh)
    return Logout(targets, run_options(args, env), credentials, expired=args.expired)


COMMAND = Registration(
    path=("ecr", "logout"),
    help="remove ECR registries from the client's auth file",
    description=(
        "Log a container client out of exactly these ECR registries, concurrently, "
        "leaving every other entry of its auth file as it is."
    ),
    add_arguments=_arguments,
    build=_build,
    formats=(Output.TEXT, Output.JSON),
    epilog=EXIT_EPILOG,
    order=2,
)
