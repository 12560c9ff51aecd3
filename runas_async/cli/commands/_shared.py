"""What more than one command uses: the :class:`Outcome`, the targets read into specs
and a plan, the collaborators built (auth file, runner, tokens, reporter, recorder) and a
run until a signal stops it.

Heavy modules (aiobotocore, rich) are imported inside the functions, after the start-up
connections are opened (preconnect.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from runas_async.core.errors import AwsError, ConfigError, NoRegion, UsageError
from runas_async.core.options import CredentialOptions, Output, RunOptions, Targets
from runas_async.core.sanitize import show

if TYPE_CHECKING:
    import anyio
    from aiobotocore.session import AioSession
    from anyio.abc import TaskStatus

    from runas_async.auth.authfile import AuthFile
    from runas_async.auth.runners import ClientRunner
    from runas_async.auth.state import Recorder, StatusRow
    from runas_async.aws.config import AwsFiles
    from runas_async.aws.credentials import CredentialResolver
    from runas_async.aws.preconnect import Preconnected
    from runas_async.aws.tokens import AwsTokenProvider
    from runas_async.core.models import LoginResult
    from runas_async.core.partitions import Partition
    from runas_async.core.plan import LoginSpec, Plan
    from runas_async.engine import Reporter

log = logging.getLogger("runas_async")

STOPPING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""Signals that end a run cleanly: clients killed, logins done so far merged."""


@dataclass(frozen=True)
class Outcome:
    """What a command ended with; cli.exit_status turns it into the exit code.

    ``results`` for runs over registries, ``signum`` when a signal stopped the run,
    ``status`` for a status decided by the command itself (a dry run's 0, exec's child).
    """

    results: Sequence[LoginResult] | None = None
    signum: int | None = None
    status: int | None = None


DONE = Outcome(status=0)


@dataclass(frozen=True)
class _Prepared:
    """What is known before the first request: the plan, and a session per profile."""

    plan: Plan
    sessions: dict[str, AioSession]
    files: AwsFiles
    """The AWS config files, as read once for the whole command."""
    preconnected: Preconnected | None = None


@contextlib.contextmanager
def _prepared(
    targets: Targets,
    env: Mapping[str, str],
    *,
    connect: bool,
    specs: list[LoginSpec] | None = None,
    files: AwsFiles | None = None,
) -> Iterator[_Prepared]:
    """Everything that can fail before any request: arguments, profiles, files.

    ``files`` and ``specs``: the AWS config files and the targets as the caller has them
    already (read and made here when not given): the files are read once per command.

    With ``connect``, the start-up connections (preconnect.py) are opened first, before
    the heavy imports, so that they connect while those run; they are closed on the way
    out, used or not.
    """
    from runas_async.aws import config as awsconfig
    from runas_async.core.partitions import load_partitions

    files = awsconfig.read(env) if files is None else files
    specs = _specs(targets, env, files) if specs is None else specs
    preconnected = None
    if connect:
        from runas_async.aws import preconnect

        preconnected = preconnect.start(specs, env, load_partitions(), targets.region, files)
        log.debug("connecting at start-up to %s", preconnected.targets or "nothing")
    try:
        yield _sessions_and_plan(specs, targets.region, env, preconnected, files)
    finally:
        if preconnected is not None:
            preconnected.close()


def _specs(targets: Targets, env: Mapping[str, str], files: AwsFiles) -> list[LoginSpec]:
    """The profiles and registries asked for, from --file, -p, or [PROFILE] [ENDPOINT ...]."""
    from runas_async.core.partitions import load_partitions

    text = None if targets.file is None else _read_file(targets.file)
    return specs_for(targets, text, files, env, load_partitions())


def specs_for(
    targets: Targets,
    file_text: str | None,
    files: AwsFiles,
    env: Mapping[str, str],
    partitions: tuple[Partition, ...],
) -> list[LoginSpec]:
    """What :func:`_specs` reads, decided from the texts at hand (no I/O).

    A PROFILE that names no profile of the config files but is a valid ENDPOINT is an
    ENDPOINT, with the default credentials; a profile of that name wins. A profile whose
    own registry is asked for and whose account the config states (a role's ``role_arn``,
    an ``sso_account_id``) gets that registry without a GetCallerIdentity call. A
    ``source_profile`` chain that is broken is a ConfigError here, before any request.
    """
    from runas_async.core.endpoints import parse_endpoints
    from runas_async.core.loginfile import parse_login_file
    from runas_async.core.plan import LoginSpec

    specs: list[LoginSpec] = []
    if targets.file is not None and file_text is not None:
        name = "<stdin>" if targets.file == "-" else targets.file
        specs += parse_login_file(file_text, name, partitions)
    specs += [LoginSpec(p, None) for p in targets.profiles]
    if not specs:
        profile, raws = targets.profile, list(targets.endpoints)
        if profile is not None and profile not in files.names and _is_endpoint(profile):
            raws = [profile, *raws]
            profile = None
        endpoints = tuple(parse_endpoints(raws, partitions))
        if profile is None:
            shown = env.get("AWS_PROFILE") or "default"
            specs.append(LoginSpec(shown, None, endpoints, explicit=False))
        else:
            specs.append(LoginSpec(profile, None, endpoints))
    for spec in specs:
        problem = files.check(spec.profile)
        if problem is not None:
            raise ConfigError(f"{spec.origin}: {problem}" if spec.origin else problem)
    return [_with_known_account(spec, files, env) for spec in specs]


def _is_endpoint(text: str) -> bool:
    from runas_async.core.endpoints import parse_endpoint
    from runas_async.core.partitions import load_partitions

    try:
        parse_endpoint(text, load_partitions())
    except UsageError:
        return False
    return True


def _with_known_account(spec: LoginSpec, files: AwsFiles, env: Mapping[str, str]) -> LoginSpec:
    """``spec`` with its own registry named by account, when the config files say it."""
    from runas_async.core.endpoints import AccountEndpoint

    if spec.endpoints:
        return spec
    if not spec.explicit and (env.get("AWS_ACCESS_KEY_ID") or spec.profile not in files.names):
        return spec  # environment keys (or no profile at all) win: only STS can tell
    account = files.account(spec.profile)
    if account is None:
        return spec
    return replace(spec, endpoints=(AccountEndpoint(account=account, raw=account),))


def _read_file(name: str) -> str:
    if name == "-":
        return sys.stdin.read()
    try:
        return Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise UsageError(f"cannot read --file {show(name)}: {reason}") from e


def _sessions_and_plan(
    specs: list[LoginSpec],
    region: str | None,
    env: Mapping[str, str],
    preconnected: Preconnected | None,
    files: AwsFiles,
) -> _Prepared:
    from runas_async.aws.tokens import new_session, profile_region
    from runas_async.core.partitions import load_partitions
    from runas_async.core.plan import plan_logins

    sessions: dict[str, AioSession] = {}
    regions: dict[str, str | None] = {}
    resolved = []
    for spec in specs:
        try:
            if spec.profile not in sessions:
                sessions[spec.profile] = new_session(spec.profile if spec.explicit else None)
                regions[spec.profile] = profile_region(sessions[spec.profile], region, env)
        except AwsError as e:
            if spec.origin:
                raise type(e)(f"{spec.origin}: {e}") from e
            raise
        resolved.append(replace(spec, region=spec.region or regions[spec.profile]))
    try:
        plan = plan_logins(resolved, load_partitions())
    except NoRegion as e:
        from runas_async.aws.config import nothing_found

        raise NoRegion(nothing_found(files, env) or str(e)) from e
    log.debug(
        "plan: %d registries, %d token requests, profiles %s",
        len(plan.targets),
        len(plan.keys),
        ", ".join(repr(p) for p in sessions),
    )
    return _Prepared(plan=plan, sessions=sessions, files=files, preconnected=preconnected)


def _find_client(opts: RunOptions, env: Mapping[str, str]) -> str:
    from runas_async.core.places import find_client  # not login.py: it imports anyio

    return find_client(opts.client.name, env)


def _dry_run(plan: Plan, output: Output, stdout: TextIO, *, logout: bool) -> Outcome:
    from runas_async.cli.report import render_plan

    render_plan(plan, output.value, stdout, logout=logout)
    return DONE


def _auth_file(
    opts: RunOptions, env: Mapping[str, str], plan: Plan
) -> tuple[AuthFile, bytes | None]:
    """The client's real auth file, checked before anything runs, and its content.

    Checked too: every credential helper that would store one of the plan's logins is
    on PATH.
    """
    from runas_async.auth.authfile import AuthFile
    from runas_async.auth.runners import check_helpers

    auth = AuthFile(opts.client.auth_path(env))
    seed = auth.preflight()
    hosts = [t.registry.host if t.registry else None for t in plan.targets]
    check_helpers(hosts, auth, seed, env)
    return auth, seed


def _client_runner(
    opts: RunOptions,
    executable: str,
    auth: AuthFile,
    seed: bytes | None,
    env: Mapping[str, str],
    recorder: Recorder | None = None,
) -> ClientRunner:
    from runas_async.auth.runners import ClientRunner

    return ClientRunner(opts.client, executable, auth, seed, env, recorder)


def _tokens(
    prepared: _Prepared,
    credentials: CredentialOptions,
    env: Mapping[str, str],
    reporter: Reporter | None,
) -> AwsTokenProvider:
    from runas_async.aws.tokens import AwsTokenProvider

    return AwsTokenProvider(
        prepared.sessions,
        resolver=_resolver(credentials, env, reporter),
        preconnected=prepared.preconnected,
        env=env,
        notify=getattr(reporter, "note", None),
    )


def _resolver(
    credentials: CredentialOptions, env: Mapping[str, str], reporter: object = None
) -> CredentialResolver:
    """Credentials with awscli's cache and one MFA prompt per device (the live table paused)."""
    from runas_async.aws.credentials import default_resolver

    return default_resolver(
        env,
        mfa_code=credentials.mfa_code,
        refresh=credentials.refresh,
        pause=getattr(reporter, "paused", None),
        waiting=getattr(reporter, "note", None),
    )


def _reporter(
    output: Output, stream: TextIO, env: Mapping[str, str], *, logout: bool = False
) -> Reporter:
    from runas_async.cli.report import JsonReporter, PlainReporter

    if output is Output.JSON:
        return JsonReporter(stream)
    if stream.isatty() and env.get("TERM") != "dumb":
        from rich.console import Console

        from runas_async.cli.report import LiveTableReporter

        # NO_COLOR (no-color.org) takes the colours away; bold stays, as rich does.
        no_color = bool(env.get("NO_COLOR"))
        console = Console(file=stream, stderr=False, no_color=no_color)
        return LiveTableReporter(console, logout=logout)
    return PlainReporter(stream)


def _until_signalled(
    work: Callable[[anyio.Event], Awaitable[list[LoginResult]]], reporter: Reporter
) -> Outcome:
    """Run ``work`` in an event loop; SIGINT, SIGTERM and SIGHUP set its ``stop`` event.

    The signal receiver outlives ``work`` (whose clean-up merges the logins done and removes
    the temporary files), so a signal cannot interrupt that; after the first signal, later
    ones are ignored. The live display is left as it stands, whatever happens.
    """
    import anyio

    received: list[int] = []

    async def watch(
        stop: anyio.Event, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        try:
            with anyio.open_signal_receiver(*STOPPING) as signals:
                task_status.started()
                async for signum in signals:
                    log.debug("received signal %d; stopping", signum)
                    received.append(signum)
                    stop.set()
        finally:
            if received:
                # Stopping already: a second Ctrl-C must not cut the clean-up short.
                for signum in STOPPING:
                    signal.signal(signum, signal.SIG_IGN)

    async def go() -> list[LoginResult]:
        stop = anyio.Event()
        async with anyio.create_task_group() as tg:
            await tg.start(watch, stop)
            results = await work(stop)
            tg.cancel_scope.cancel()
        return results

    _fast_child_watcher()
    try:
        results = anyio.run(go)
    finally:
        stop_display = getattr(reporter, "stop", None)
        if stop_display is not None:
            stop_display()
    return Outcome(results=results, signum=received[0] if received else None)


def _fast_child_watcher() -> None:
    """On Python 3.11, watch children with pidfds instead of one thread per child.

    asyncio's default watcher before 3.12 starts a thread for every process
    spawned; with dozens of logins at once that alone costs a few hundred ms.
    """
    if sys.version_info >= (3, 12) or not hasattr(os, "pidfd_open"):
        return
    import asyncio

    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:  # kernel without pidfd
        return
    asyncio.set_child_watcher(asyncio.PidfdChildWatcher())


def _identities(
    specs: list[LoginSpec], files: AwsFiles, env: Mapping[str, str]
) -> dict[str, str | None]:
    """Per profile, what identifies its credentials without botocore (see AwsFiles.identity)."""
    out: dict[str, str | None] = {}
    for spec in specs:
        if spec.explicit:
            out[spec.profile] = files.identity(spec.profile)
        else:  # the default chain: environment keys first, then the profile
            out[spec.profile] = env.get("AWS_ACCESS_KEY_ID") or files.identity(spec.profile)
    return out


def _recorder(
    opts: RunOptions,
    env: Mapping[str, str],
    auth: AuthFile,
    specs: list[LoginSpec],
    files: AwsFiles | None = None,
) -> Recorder:
    """The login records' writer; ``files`` are needed when there are ``specs``."""
    from runas_async.auth.state import Recorder, StateFile
    from runas_async.core.places import state_file

    identities = _identities(specs, files, env) if specs and files is not None else {}
    return Recorder(StateFile(state_file(env)), auth.path, opts.client.name, identities)


def _status_rows(path: Path, env: Mapping[str, str]) -> list[StatusRow]:
    import time

    from runas_async.auth.authfile import AuthFile
    from runas_async.auth.state import StateFile, status_rows
    from runas_async.core.partitions import load_partitions
    from runas_async.core.places import state_file

    doc = AuthFile(path).document()
    state = StateFile(state_file(env)).load()
    return status_rows(doc, path, state, time.time(), load_partitions())
