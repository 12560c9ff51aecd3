"""Running as a profile: shell lines for ``eval``, ``credential_process`` JSON, and exec.

Pure formatting (:func:`credential_environ`, :func:`env_lines`,
:func:`credential_process_json`, :func:`child_environ`) plus two effects:
:func:`resolve_one`, the one profile's credentials ``env`` and ``exec`` take, and
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

import contextlib
import errno
import io
import json
import os
import shlex
import signal
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import anyio

from runas_async.core.errors import CommandNotFound, UsageError
from runas_async.core.sanitize import show

if TYPE_CHECKING:
    import asyncio

    from runas_async.aws.credentials import ResolvedCredentials
    from runas_async.cli.context import Context

SHELLS = ("sh", "fish")
"""``sh`` covers bash, zsh, dash, ksh: ``export NAME='value'``."""

FORWARDED_SIGNALS = (
    signal.SIGHUP,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGTERM,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGALRM,
)
"""The catchable signals whose default is to end a process: passed on to the command's
group while it runs (so that we end only after it, cleaning up)."""

_REMOVED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SECURITY_TOKEN")


def resolve_one(
    profile: str | None, region: str | None, ctx: Context
) -> tuple[ResolvedCredentials, str | None]:
    """The credentials of ``profile`` (None: the default credentials) and its region, for
    ``env`` and ``exec``."""
    from runas_async.aws.tokens import new_session, profile_region

    session = new_session(profile)
    in_force = profile_region(session, region, ctx.env)
    resolver = ctx.resolver()
    shown = profile or ctx.env.get("AWS_PROFILE") or "default"
    creds = anyio.run(resolver.resolve, session, shown)
    return creds, in_force


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


async def exec_command(
    argv: Sequence[str],
    environ: Mapping[str, str],
    *,
    started: Callable[[int], None] | None = None,
) -> int:
    """Run ``argv`` with ``environ``, sharing our stdin, stdout and stderr; return its status.

    The command runs in a process group of its own (``started`` is told its id). Every
    terminating signal sent to us (:data:`FORWARDED_SIGNALS`) is passed on to that whole
    group while it runs; we do not stop before the command does, and once it has, what is
    left of its group (a background job that ignores the signal) is killed. The result is
    the command's exit code, or 128 + N when signal N killed it. A command that cannot be
    started raises :class:`CommandNotFound` (status 127 when not found, 126 otherwise).

    On a terminal we are in the foreground of, the group gets the foreground while it runs
    (as a shell gives it to a job): Ctrl-C and a read from the terminal reach it directly.
    """
    if not argv:
        raise UsageError("no command to run")
    with anyio.open_signal_receiver(*FORWARDED_SIGNALS) as signals:
        process = await _spawn(argv, environ)
        group = process.pid
        if started is not None:
            started(group)
        forwarded: list[int] = []
        try:
            with _foreground(group):
                async with anyio.create_task_group() as tg:

                    async def forward() -> None:
                        async for signum in signals:
                            forwarded.append(signum)
                            _signal_group(group, signum)

                    tg.start_soon(forward)
                    returncode = await process.wait()
                    tg.cancel_scope.cancel()
        finally:
            if forwarded or process.returncode is None:
                _signal_group(group, signal.SIGKILL)  # nothing of it outlives the signal
    return exit_code(returncode)


async def _spawn(argv: Sequence[str], environ: Mapping[str, str]) -> asyncio.subprocess.Process:
    """``argv`` in a new process group. asyncio's own API: anyio's open_process has no
    ``process_group`` (its ``start_new_session`` would take the terminal away)."""
    import asyncio

    try:
        return await asyncio.create_subprocess_exec(*argv, env=dict(environ), process_group=0)
    except OSError as e:
        status = 127 if e.errno == errno.ENOENT else 126
        raise CommandNotFound(
            f"cannot run {show(argv[0])}: {e.strerror or e}", status=status
        ) from e


def _signal_group(group: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signum)


@contextlib.contextmanager
def _foreground(group: int) -> Iterator[None]:
    """The terminal on stdin to ``group`` while the block runs, if it was ours; back after."""
    try:
        fd = sys.stdin.fileno() if sys.stdin is not None else -1
        ours = os.tcgetpgrp(fd)
    except (OSError, ValueError, io.UnsupportedOperation):
        yield  # no terminal (a pipe, CI, a test)
        return
    if ours != os.getpgrp():
        yield  # we run in the background: so does the command
        return
    try:
        os.tcsetpgrp(fd, group)
        _signal_group(group, signal.SIGCONT)  # if it read the terminal before it had it
    except OSError:
        pass
    try:
        yield
    finally:
        # Taking it back from the background would stop us with SIGTTOU: ignored meanwhile.
        previous = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
        try:
            os.tcsetpgrp(fd, ours)
        except OSError:
            pass
        finally:
            signal.signal(signal.SIGTTOU, previous)
