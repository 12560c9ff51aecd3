"""``exec``: a command run with one profile's credentials in its environment."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from runas_async.cli.args import (
    PROG,
    Registration,
    _add_credential_options,
    _add_debug,
    _add_profile,
    add_job,
    check_no_stray,
    credentials_of,
)
from runas_async.cli.context import Context, Needs, Outcome
from runas_async.core.errors import UsageError
from runas_async.core.options import Exec


def exec_(command: Exec, ctx: Context) -> Outcome:
    """Run the command with the profile's credentials; its exit status is ours."""
    import anyio

    from runas_async.cli.runas import child_environ, exec_command, resolve_one

    creds, region = resolve_one(command.profile, command.region, ctx)
    status: int = anyio.run(exec_command, command.argv, child_environ(ctx.env, creds, region))
    return Outcome(status=status)


# --- the command line --------------------------------------------------------------------


def _exec_arguments(p: argparse.ArgumentParser, reg: Registration) -> None:
    _add_profile(p)
    p.add_argument("-r", "--region", help="region to set (default: the profile's)")
    _add_credential_options(p)
    _add_debug(p)
    add_job(p, required=True, help="the command to run, and its arguments")


def _build_exec(
    args: argparse.Namespace, job: tuple[str, ...] | None, env: Mapping[str, str]
) -> Exec:
    check_no_stray(args, "exec")
    if not job:
        raise UsageError(f"exec needs a command after '--' (see '{PROG} exec --help')")
    credentials = credentials_of(args)
    return Exec(args.profile, job, args.region, credentials)


def _needs(command: Exec) -> Needs:
    return Needs(credentials=command.credentials)


EXEC = Registration(
    path=("exec",),
    help="run a command with a profile's credentials in its environment",
    description=(
        "Run CMD with the profile's credentials and region in its environment; "
        "exit with its exit status (128+N if signal N killed it). SIGINT, SIGTERM "
        "and SIGHUP are passed on to it."
    ),
    add_arguments=_exec_arguments,
    build=_build_exec,
    run=exec_,
    needs=_needs,
    takes_command=True,
    order=11,
)
