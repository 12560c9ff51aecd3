"""``completion``: the shell's completion script, and the profile names it lists."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from runas_async.cli.args import PROG, Registration, choice_of, whole
from runas_async.cli.context import DONE, Context, Outcome
from runas_async.core.errors import UsageError
from runas_async.core.options import Command, Completion, ListProfiles, Shell
from runas_async.core.shells import PROFILES_FLAG


def completion(command: Completion, ctx: Context) -> Outcome:
    """Print the shell's completion script."""
    from runas_async.core.shells import script

    ctx.stdout.write(script(command.shell.value, command.prog, command.specs))
    ctx.stdout.flush()
    return DONE


def list_profiles(command: ListProfiles, ctx: Context) -> Outcome:
    """Print the profile names of the AWS config files, one a line (for the scripts)."""
    ctx.stdout.writelines(f"{name}\n" for name in sorted(ctx.files.names))
    ctx.stdout.flush()
    return DONE


def _run(command: Completion | ListProfiles, ctx: Context) -> Outcome:
    """The script, or (the scripts' hidden ``--profiles``) the profile names."""
    if isinstance(command, ListProfiles):
        return list_profiles(command, ctx)
    return completion(command, ctx)


def _arguments(p: argparse.ArgumentParser, reg: Registration) -> None:
    p.add_argument(
        "shell",
        nargs="?",
        type=choice_of("a shell", tuple(Shell)),
        choices=tuple(Shell),
        metavar="SHELL",
        help="bash, zsh or fish",
    )
    p.add_argument(PROFILES_FLAG, action="store_true", help=argparse.SUPPRESS)


def _build(
    args: argparse.Namespace, job: tuple[str, ...] | None, env: Mapping[str, str]
) -> Command:
    """``completion SHELL``, or the scripts' hidden ``completion --profiles``."""
    if args.profiles:
        return ListProfiles()
    if args.shell is None:
        raise UsageError(
            f"completion needs a SHELL: bash, zsh or fish (see '{PROG} completion --help')"
        )
    from runas_async.cli.main import completion_specs

    return Completion(args.shell, PROG, completion_specs())


COMMAND = Registration(
    path=("completion",),
    help="print a shell's completion script",
    description=(
        "Print a completion script for bash, zsh or fish: it completes commands, "
        "options, client names, and profile names from the AWS config files. "
        f"bash: {whole(f'source <({PROG} completion bash)')}; zsh (after compinit): "
        f"{whole(f'source <({PROG} completion zsh)')}; fish: "
        f"{whole(f'{PROG} completion fish | source')}"
    ),
    add_arguments=_arguments,
    build=_build,
    run=_run,
    order=90,
)
