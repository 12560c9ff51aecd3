"""``env``: one profile's credentials, printed for eval (or as credential_process JSON)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from runas_async.cli.args import (
    PROG,
    Registration,
    _add_credential_options,
    _add_debug,
    _add_profile,
    choice_of,
    credentials_of,
    whole,
)
from runas_async.cli.context import DONE, Context, Needs, Outcome
from runas_async.core.options import Env, EnvFormat


def print_env(command: Env, ctx: Context) -> Outcome:
    """Print the profile's credentials for eval, or as credential_process JSON."""
    from runas_async.cli.runas import credential_process_json, env_lines, resolve_one

    creds, region = resolve_one(command.profile, command.region, ctx)
    if command.format is EnvFormat.JSON:
        ctx.stdout.write(credential_process_json(creds))
    else:
        ctx.stdout.write(env_lines(creds, region, command.format.value))
    ctx.stdout.flush()
    return DONE


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


def _needs(command: Env) -> Needs:
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
