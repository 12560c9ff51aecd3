"""``ecr password``: one registry's password, alone on stdout."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TextIO

from runas_async.cli.commands._shared import DONE, Outcome, _prepared, _tokens
from runas_async.core.errors import UsageError
from runas_async.core.options import Password


def password(command: Password, env: Mapping[str, str], stdout: TextIO) -> Outcome:
    """Print one registry's password alone on stdout."""
    import anyio

    with _prepared(command.targets, env, connect=True) as prepared:
        if len(prepared.plan.targets) != 1:
            raise UsageError("ecr password takes at most one ENDPOINT")
        (target,) = prepared.plan.targets
        tokens = _tokens(prepared, command.credentials, env, None)
        token = anyio.run(tokens.token, target.key)
    stdout.write(token.password + "\n")
    stdout.flush()
    return DONE
