"""``ecr password``: one registry's password, alone on stdout."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from runas_async.cli.args import (
    Registration,
    _add_credential_options,
    _add_debug,
    _add_targets,
    credentials_of,
    targets_of,
    whole,
)
from runas_async.cli.context import DONE, Context, Needs, Outcome
from runas_async.core.errors import UsageError
from runas_async.core.options import Password


def password(command: Password, ctx: Context) -> Outcome:
    """Print one registry's password alone on stdout."""
    import anyio

    with ctx.connecting():
        if len(ctx.plan.targets) != 1:
            raise UsageError("ecr password takes at most one ENDPOINT")
        (target,) = ctx.plan.targets
        token = anyio.run(ctx.tokens().token, target.key)
    ctx.stdout.write(token.password + "\n")
    ctx.stdout.flush()
    return DONE


def _arguments(p: argparse.ArgumentParser, reg: Registration) -> None:
    _add_targets(p, many=False)
    _add_credential_options(p)
    _add_debug(p)


def _build(
    args: argparse.Namespace, job: tuple[str, ...] | None, env: Mapping[str, str]
) -> Password:
    credentials = credentials_of(args)
    return Password(targets_of(args, "password"), credentials)


def _needs(command: Password) -> Needs:
    return Needs(targets=command.targets, credentials=command.credentials)


COMMAND = Registration(
    path=("ecr", "password"),
    help="print a registry's login password, for tools runas-async does not drive",
    description=(
        "Print the password for one registry (ECR's get-login-password) alone on "
        "stdout, e.g. for: "
        + whole("runas-async ecr password prod | tool login -u AWS --password-stdin")
    ),
    add_arguments=_arguments,
    build=_build,
    run=password,
    needs=_needs,
    order=4,
)
