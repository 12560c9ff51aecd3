"""The commands, one module each; :func:`run` hands a parsed command to its function.

Each function takes its typed options (options.py) and the command's :class:`Context`
(cli/context.py: the environment, stdout, and everything made from them once) and returns
an :class:`Outcome`; cli.py turns that into the exit status. Heavy modules (aiobotocore,
rich) are imported inside the functions and the context's members, after the start-up
connections are opened (preconnect.py): importing this package imports none of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TextIO

from runas_async.cli.context import Context, Outcome
from runas_async.core.options import (
    Command,
    Completion,
    ConfigureDocker,
    Env,
    Exec,
    ListLogins,
    ListProfiles,
    Login,
    Logout,
    Password,
)

__all__ = ["Outcome", "run"]
"""What other code imports: ``run`` and its ``Outcome`` (cli.py)."""


def run(command: Command, env: Mapping[str, str], stdout: TextIO) -> Outcome:
    """Run one parsed command, with its context built once here.

    Each command's module is imported here, when it runs: the package's own names stay
    what ``__all__`` says (``login`` is the module, not the function), and one command
    loads no other's code.
    """
    ctx = Context.of(command, env, stdout)
    match command:
        case Login():
            from runas_async.cli.commands.login import login

            return login(command, ctx)
        case Logout():
            from runas_async.cli.commands.logout import logout

            return logout(command, ctx)
        case Password():
            from runas_async.cli.commands.password import password

            return password(command, ctx)
        case ListLogins():
            from runas_async.cli.commands.status import status

            return status(command, ctx)
        case Env():
            from runas_async.cli.commands.env import print_env

            return print_env(command, ctx)
        case Exec():
            from runas_async.cli.commands.env import exec_

            return exec_(command, ctx)
        case ConfigureDocker():
            from runas_async.cli.commands.configure_docker import configure_docker

            return configure_docker(command, ctx)
        case Completion():
            from runas_async.cli.commands.completion import completion

            return completion(command, ctx)
        case ListProfiles():
            from runas_async.cli.commands.completion import list_profiles

            return list_profiles(command, ctx)
