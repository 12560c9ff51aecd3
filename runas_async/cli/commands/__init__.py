"""The commands, one module each; :func:`run` hands a parsed command to its function.

Each module declares its command once, in a :class:`~runas_async.cli.args.Registration`:
its words, arguments, how they become its typed options (options.py), what its context is
built from (``needs``) and its function (``run``), which takes the options and the
command's :class:`Context` (cli/context.py: the environment, stdout, and everything made
from them once) and returns an :class:`Outcome`; cli/main.py turns that into the exit
status. Adding a command is adding a module: nothing here names one. Heavy modules
(aiobotocore, rich) are imported inside the functions and the context's members, after the
start-up connections are opened (preconnect.py): importing this package imports none of
them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TextIO

from runas_async.cli.args import Registration
from runas_async.cli.context import Context, Needs, Outcome
from runas_async.core.options import Command

__all__ = ["Outcome", "registration_of", "registrations", "run"]
"""What other code imports: ``run``, its ``Outcome``, ``registrations`` and
``registration_of`` (cli/main.py)."""


def registrations() -> tuple[Registration, ...]:
    """Every command's :class:`~runas_async.cli.args.Registration`, found in the modules of
    this package (a new command is a new module), in the order their help lists them."""
    import importlib
    import pkgutil

    found: list[Registration] = []
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            module = importlib.import_module(f"{__name__}.{info.name}")
            found += [v for v in vars(module).values() if isinstance(v, Registration)]
    return tuple(sorted(found, key=lambda r: (r.order, r.path)))


def registration_of(words: Sequence[str]) -> Registration | None:
    """The registration of the command ``words`` begin with, found by its module's name
    alone, without importing the other commands: a command lives in the module named
    after its last word (``ecr configure-docker``: configure_docker.py). None when no
    module's command is exactly such words (a group, a misspelling, ``--help``): then every
    registration is needed.

    Importing every command module and building every command's parser cost a run about
    15 ms; a command line names one command.
    """
    import importlib
    import importlib.util

    for size in range(min(len(words), 3), 0, -1):
        path = tuple(words[:size])
        name = path[-1].replace("-", "_")
        if not name.isidentifier() or name.startswith("_"):
            continue
        if importlib.util.find_spec(f"{__name__}.{name}") is None:
            continue
        module = importlib.import_module(f"{__name__}.{name}")
        for value in vars(module).values():
            if isinstance(value, Registration) and value.path == path:
                return value
    return None


def run(reg: Registration, command: Command, env: Mapping[str, str], stdout: TextIO) -> Outcome:
    """Run ``command`` (what ``reg.build`` made): its context built once here from what its
    registration reads off it, then handed with it to the registration's function."""
    needs = Needs() if reg.needs is None else reg.needs(command)
    return reg.run(command, Context.of(needs, env, stdout))
