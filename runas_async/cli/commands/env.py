"""``env`` and ``exec``: one profile's credentials, printed for eval (or as
credential_process JSON) or handed to a command.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import TYPE_CHECKING

from runas_async.cli.args import (
    PROG,
    Registration,
    _add_credential_options,
    _add_debug,
    _add_profile,
    add_job,
    check_no_stray,
    choice_of,
    credentials_of,
    whole,
)
from runas_async.cli.context import DONE, Context, Needs, Outcome
from runas_async.core.errors import UsageError
from runas_async.core.options import Env, EnvFormat, Exec

if TYPE_CHECKING:
    from runas_async.aws.credentials import ResolvedCredentials


def print_env(command: Env, ctx: Context) -> Outcome:
    """Print the profile's credentials for eval, or as credential_process JSON."""
    from runas_async.cli.runas import credential_process_json, env_lines

    creds, region = _resolve_one(command.profile, command.region, ctx)
    if command.format is EnvFormat.JSON:
        ctx.stdout.write(credential_process_json(creds))
    else:
        ctx.stdout.write(env_lines(creds, region, command.format.value))
    ctx.stdout.flush()
    return DONE


def exec_(command: Exec, ctx: Context) -> Outcome:
    """Run the command with the profile's credentials; its exit status is ours."""
    import anyio

    from runas_async.cli.runas import child_environ, exec_command

    creds, region = _resolve_one(command.profile, command.region, ctx)
    status: int = anyio.run(exec_command, command.argv, child_environ(ctx.env, creds, region))
    return Outcome(status=status)


def _resolve_one(
    profile: str | None, region: str | None, ctx: Context
) -> tuple[ResolvedCredentials, str | None]:
    """The credentials of ``profile`` (None: the default credentials) and its region."""
    import anyio

    from runas_async.aws.tokens import new_session, profile_region

    session = new_session(profile)
    in_force = profile_region(session, region, ctx.env)
    resolver = ctx.resolver()
    shown = profile or ctx.env.get("AWS_PROFILE") or "default"
    creds = anyio.run(resolver.resolve, session, shown)
    return creds, in_force


# --- the command line --------------------------------------------------------------------


def _env_arguments(p: argparse.ArgumentParser, reg: Registration) -> None:
    _add_profile(p)
    p.add_argument("-r", "--region", help="region to export (default: the profile's)")
    p.add_argument(
        "-o",
        "--output",
        type=choice_of("a format of env", tuple(EnvFormat)),
        choices=tuple(EnvFormat),
        default=EnvFormat.SH,
        metavar="FORMAT",
        help="sh (bash, zsh) or fish lines for eval; json: credential_process format",
    )
    _add_credential_options(p)
    _add_debug(p)


def _build_env(
    args: argparse.Namespace, job: tuple[str, ...] | None, env: Mapping[str, str]
) -> Env:
    credentials = credentials_of(args)
    return Env(args.profile, args.region, args.output, credentials)


_EVAL = whole(f'eval "$({PROG} env prod)"')


def _needs(command: Env | Exec) -> Needs:
    return Needs(credentials=command.credentials)


ENV = Registration(
    path=("env",),
    help="print a profile's credentials for eval, or as credential_process JSON",
    description=(
        "Print a profile's credentials and region as shell lines for eval "
        f"({_EVAL}), or with --output json in the "
        "credential_process format."
    ),
    add_arguments=_env_arguments,
    build=_build_env,
    run=print_env,
    needs=_needs,
    order=10,
)


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
