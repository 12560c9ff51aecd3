"""``env`` and ``exec``: one profile's credentials, printed for eval (or as
credential_process JSON) or handed to a command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runas_async.cli.context import DONE, Context, Outcome
from runas_async.core.options import Env, EnvFormat, Exec

if TYPE_CHECKING:
    from runas_async.aws.credentials import ResolvedCredentials


def print_env(command: Env, ctx: Context) -> Outcome:
    """Print the profile's credentials for eval, or as credential_process JSON."""
    from runas_async.cli.runas import credential_process_json, env_lines

    creds, region = _resolve_one(command.profile, command.region, ctx)
    if command.format is EnvFormat.JSON:
        ctx.stdout.write(credential_process_json(creds))
    else:
        ctx.stdout.write(env_lines(creds, region, command.format.value))
    ctx.stdout.flush()
    return DONE


def exec_(command: Exec, ctx: Context) -> Outcome:
    """Run the command with the profile's credentials; its exit status is ours."""
    import anyio

    from runas_async.cli.runas import child_environ, exec_command

    creds, region = _resolve_one(command.profile, command.region, ctx)
    status: int = anyio.run(exec_command, command.argv, child_environ(ctx.env, creds, region))
    return Outcome(status=status)


def _resolve_one(
    profile: str | None, region: str | None, ctx: Context
) -> tuple[ResolvedCredentials, str | None]:
    """The credentials of ``profile`` (None: the default credentials) and its region."""
    import anyio

    from runas_async.aws.tokens import new_session, profile_region

    session = new_session(profile)
    in_force = profile_region(session, region, ctx.env)
    resolver = ctx.resolver()
    shown = profile or ctx.env.get("AWS_PROFILE") or "default"
    creds = anyio.run(resolver.resolve, session, shown)
    return creds, in_force
