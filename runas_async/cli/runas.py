"""Running as a profile: shell lines for ``eval``, ``credential_process`` JSON, and exec.

Pure formatting (:func:`credential_environ`, :func:`env_lines`,
:func:`credential_process_json`, :func:`child_environ`) plus one effect,
:func:`exec_command`, which runs a command with those variables and hands back
its exit status.

The variables set are the ones every AWS SDK reads: ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_CREDENTIAL_EXPIRATION``
(when the credentials expire), ``AWS_REGION`` and ``AWS_DEFAULT_REGION`` (when
a region is known). ``AWS_PROFILE``, ``AWS_DEFAULT_PROFILE`` and the legacy
``AWS_SECURITY_TOKEN`` are removed, and so is ``AWS_SESSION_TOKEN`` for
credentials without one, so nothing left over from the caller's environment
competes with them.
"""

from __future__ import annotations

import json
import shlex
import signal
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import anyio

from runas_async.core.errors import CommandNotFound, UsageError
from runas_async.core.sanitize import show

if TYPE_CHECKING:
    from runas_async.aws.credentials import ResolvedCredentials

SHELLS = ("sh", "fish")
"""``sh`` covers bash, zsh, dash, ksh: ``export NAME='value'``."""

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

_REMOVED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SECURITY_TOKEN")


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def credential_environ(creds: ResolvedCredentials, region: str | None) -> dict[str, str | None]:
    """The variables to set (name -> value) and to remove (name -> None), in output order."""
    env: dict[str, str | None] = {
        "AWS_ACCESS_KEY_ID": creds.access_key,
        "AWS_SECRET_ACCESS_KEY": creds.secret_key,
        "AWS_SESSION_TOKEN": creds.token or None,
        "AWS_CREDENTIAL_EXPIRATION": _iso(creds.expiry) if creds.expiry else None,
    }
    if region:
        env["AWS_REGION"] = region
        env["AWS_DEFAULT_REGION"] = region
    for name in _REMOVED:
        env[name] = None
    return env


def env_lines(creds: ResolvedCredentials, region: str | None, shell: str = "sh") -> str:
    """Lines for ``eval "$(runas-async env PROFILE)"``: set the credentials, unset leftovers."""
    if shell not in SHELLS:
        raise UsageError(f"unknown shell {show(shell)}; expected one of {', '.join(SHELLS)}")
    lines = []
    for name, value in credential_environ(creds, region).items():
        if shell == "fish":
            lines.append(f"set -gx {name} {shlex.quote(value)}" if value else f"set -e {name}")
        else:
            lines.append(f"export {name}={shlex.quote(value)}" if value else f"unset {name}")
    return "\n".join(lines) + "\n"


def credential_process_json(creds: ResolvedCredentials) -> str:
    """The ``credential_process`` document (Version 1); ``Expiration`` when they expire."""
    doc: dict[str, object] = {
        "Version": 1,
        "AccessKeyId": creds.access_key,
        "SecretAccessKey": creds.secret_key,
    }
    if creds.token:
        doc["SessionToken"] = creds.token
    if creds.expiry:
        doc["Expiration"] = _iso(creds.expiry)
    if creds.account_id:
        doc["AccountId"] = creds.account_id
    return json.dumps(doc, indent=2) + "\n"


def child_environ(
    base: Mapping[str, str], creds: ResolvedCredentials, region: str | None
) -> dict[str, str]:
    """``base`` with the credentials' variables applied (see the module docstring)."""
    env = dict(base)
    for name, value in credential_environ(creds, region).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def exit_code(returncode: int) -> int:
    """A child's status as a shell reports it: its exit code, or 128 + the signal that killed it."""
    return 128 - returncode if returncode < 0 else returncode


async def exec_command(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    """Run ``argv`` with ``environ``, sharing our stdin, stdout and stderr; return its status.

    SIGINT, SIGTERM and SIGHUP sent to us are passed on to the child (which decides what they
    mean) while it runs; we do not stop before it does. The result is the child's exit code,
    or 128 + N when signal N killed it. A command that cannot be started raises
    :class:`CommandNotFound`.

    On a terminal, Ctrl-C reaches the child from the terminal and again from us: most
    programs stop on the first, an interactive one sees two.
    """
    if not argv:
        raise UsageError("no command to run")
    with anyio.open_signal_receiver(*FORWARDED_SIGNALS) as signals:
        try:
            process = await anyio.open_process(
                list(argv), stdin=None, stdout=None, stderr=None, env=dict(environ)
            )
        except OSError as e:
            raise CommandNotFound(f"cannot run {show(argv[0])}: {e.strerror or e}") from e
        async with process, anyio.create_task_group() as tg:

            async def forward() -> None:
                async for signum in signals:
                    if process.returncode is None:
                        try:
                            process.send_signal(signum)
                        except ProcessLookupError:
                            return

            tg.start_soon(forward)
            returncode = await process.wait()
            tg.cancel_scope.cancel()
    return exit_code(returncode)
