"""``ecr logout``: the plan's registries, or (``--expired``) those whose recorded login
has ended; no token fetched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, TextIO

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
from runas_async.core.options import Logout, RunOptions

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
                logout_timeout=opts.timeout,
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
