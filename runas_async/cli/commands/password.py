"""``ecr password``: one registry's password, alone on stdout."""

from __future__ import annotations

from runas_async.cli.context import DONE, Context, Outcome
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
