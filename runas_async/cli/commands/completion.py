"""``completion``: the shell's completion script, and the profile names it lists."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TextIO

from runas_async.cli.commands._shared import DONE, Outcome
from runas_async.core.options import Completion


def completion(command: Completion, stdout: TextIO) -> Outcome:
    """Print the shell's completion script."""
    from runas_async.core.shells import script

    stdout.write(script(command.shell.value, command.prog, command.specs))
    stdout.flush()
    return DONE


def list_profiles(env: Mapping[str, str], stdout: TextIO) -> Outcome:
    """Print the profile names of the AWS config files, one a line (for the scripts)."""
    from runas_async.aws import config as awsconfig

    stdout.writelines(f"{name}\n" for name in sorted(awsconfig.read(env).names))
    stdout.flush()
    return DONE
