"""``completion``: the shell's completion script, and the profile names it lists."""

from __future__ import annotations

from runas_async.cli.context import DONE, Context, Outcome
from runas_async.core.options import Completion, ListProfiles


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
