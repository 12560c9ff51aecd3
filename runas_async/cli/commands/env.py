"""``env`` and ``exec``: one profile's credentials, printed for eval (or as
credential_process JSON) or handed to a command.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, TextIO

from runas_async.cli.commands._shared import DONE, Outcome, _resolver
from runas_async.core.options import CredentialOptions, Env, EnvFormat, Exec

if TYPE_CHECKING:
    from runas_async.aws.credentials import ResolvedCredentials


def print_env(command: Env, env: Mapping[str, str], stdout: TextIO) -> Outcome:
    """Print the profile's credentials for eval, or as credential_process JSON."""
    from runas_async.cli.runas import credential_process_json, env_lines

    creds, region = _resolve_one(command.profile, command.region, command.credentials, env)
    if command.format is EnvFormat.JSON:
        stdout.write(credential_process_json(creds))
    else:
        stdout.write(env_lines(creds, region, command.format.value))
    stdout.flush()
    return DONE


def exec_(command: Exec, env: Mapping[str, str]) -> Outcome:
    """Run the command with the profile's credentials; its exit status is ours."""
    import anyio

    from runas_async.cli.runas import child_environ, exec_command

    creds, region = _resolve_one(command.profile, command.region, command.credentials, env)
    status: int = anyio.run(exec_command, command.argv, child_environ(env, creds, region))
    return Outcome(status=status)


def _resolve_one(
    profile: str | None, region: str | None, credentials: CredentialOptions, env: Mapping[str, str]
) -> tuple[ResolvedCredentials, str | None]:
    """The credentials of ``profile`` (None: the default credentials) and its region."""
    import anyio

    from runas_async.aws.tokens import new_session, profile_region

    session = new_session(profile)
    in_force = profile_region(session, region, env)
    resolver = _resolver(credentials, env)
    shown = profile or env.get("AWS_PROFILE") or "default"
    creds = anyio.run(resolver.resolve, session, shown)
    return creds, in_force
