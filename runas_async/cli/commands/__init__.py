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

from collections.abc import Mapping
from typing import TextIO

from runas_async.cli.args import Registration
from runas_async.cli.context import Context, Needs, Outcome
from runas_async.core.options import Command

__all__ = ["Outcome", "registrations", "run"]
"""What other code imports: ``run``, its ``Outcome`` and ``registrations`` (cli/main.py)."""


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


def run(reg: Registration, command: Command, env: Mapping[str, str], stdout: TextIO) -> Outcome:
    """Run ``command`` (what ``reg.build`` made): its context built once here from what its
    registration reads off it, then handed with it to the registration's function."""
    needs = Needs() if reg.needs is None else reg.needs(command)
    return reg.run(command, Context.of(needs, env, stdout))
