"""One command's context, built once: what a command works with, each piece made once.

:meth:`Context.of` takes what the command's registration read off its options, once
(:class:`Needs`: the client, the targets, the run's options, how credentials are resolved);
the command's function then asks the context for what it needs, and each piece is made the
first time it is asked for and kept:

- the environment and stdout (and :meth:`~Context.redirect`, for ``-- CMD``'s private
  auth file);
- the AWS config files (read once), the targets as specs, the plan and a session per
  profile, the start-up connections (:meth:`~Context.connecting`), the token provider;
- the client's auth file: its path computed once, checked and read once
  (:attr:`~Context.seed`, :meth:`~Context.check_auth`), its document;
- the state file, its content and the recorder of this run's logins;
- the reporter, and the runner (the client's or the built-in one).

Nothing climbs back up to rebuild any of it. Heavy modules (aiobotocore, rich, anyio) are
imported inside the members, after the start-up connections are opened (preconnect.py):
importing this module imports none of them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from runas_async.core.errors import AwsError, ConfigError, NoRegion, UsageError
from runas_async.core.options import (
    CredentialOptions,
    Output,
    RunOptions,
    Targets,
)
from runas_async.core.sanitize import show

if TYPE_CHECKING:
    import anyio
    from aiobotocore.session import AioSession
    from anyio.abc import TaskStatus

    from runas_async.auth.authfile import AuthFile
    from runas_async.auth.freshness import EcrLogin
    from runas_async.auth.recording import Recorder
    from runas_async.auth.registry import BuiltinRunner
    from runas_async.auth.runners import ClientRunner
    from runas_async.auth.state import State, StateFile
    from runas_async.aws.config import AwsFiles
    from runas_async.aws.credentials import CredentialResolver
    from runas_async.aws.preconnect import Preconnected
    from runas_async.aws.tokens import AwsTokenProvider
    from runas_async.core.clients import Client
    from runas_async.core.models import LoginResult
    from runas_async.core.partitions import Partition
    from runas_async.core.plan import LoginSpec, Plan
    from runas_async.engine import Reporter

log = logging.getLogger("runas_async")

STOPPING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
COLLECT_AFTER = 2.0
"""Seconds into the event loop after which the garbage collector is on again, whether or
not the first request has left (a run that never sends one: cached credentials, say)."""
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
class Needs:
    """What a command's :class:`Context` is built from: each command's registration
    (cli/args.py, ``Registration.needs``) reads it off its typed command. Nothing: a
    command that needs only the environment and stdout."""

    client: Client | None = None
    targets: Targets | None = None
    run: RunOptions | None = None
    credentials: CredentialOptions | None = None
    logout: bool = False
    """A logout: the reporter speaks of logging out."""
    secrets_out: bool = False
    """The run's stdout carries the logins' secrets."""
    recorded: bool = True
    """The logins are recorded in the state file (not a job's private ones)."""


@dataclass(frozen=True)
class _Sessions:
    """The plan, and a session per profile."""

    plan: Plan
    sessions: dict[str, AioSession]


class Context:
    """One command's world; build it with :meth:`of`, then ask it for what is needed."""

    def __init__(
        self,
        env: Mapping[str, str],
        stdout: TextIO,
        *,
        client: Client | None = None,
        targets: Targets | None = None,
        run: RunOptions | None = None,
        credentials: CredentialOptions | None = None,
        logout: bool = False,
        secrets_out: bool = False,
        recorded: bool = True,
    ) -> None:
        self.env = env
        """The user's environment."""
        self.stdout = stdout
        self.client = client
        self.targets = targets
        self.run = run
        self.credentials = credentials or CredentialOptions()
        self.logout = logout
        """A logout: the reporter speaks of logging out."""
        self.secrets_out = secrets_out
        """The run's stdout carries the logins' secrets: no auth file, the built-in client
        keeps them, and the run reports in text on stderr."""
        self.recorded = recorded
        """The logins are recorded in the state file (not a job's private ones)."""
        self.run_env: Mapping[str, str] = env
        """What the clients, the auth file and AWS see: ``env``, or a job's (:meth:`redirect`)."""
        self.preconnected: Preconnected | None = None
        self._checked = False
        self._executable: str | None = None
        self._found = False

    @classmethod
    def of(cls, needs: Needs, env: Mapping[str, str], stdout: TextIO) -> Context:
        """The context of a command, from what its registration read off it (:class:`Needs`)."""
        return cls(
            env,
            stdout,
            client=needs.client,
            targets=needs.targets,
            run=needs.run,
            credentials=needs.credentials,
            logout=needs.logout,
            secrets_out=needs.secrets_out,
            recorded=needs.recorded,
        )

    def redirect(self, env: Mapping[str, str]) -> None:
        """From now on the clients, the auth file and AWS see ``env`` (a job's private auth
        file); before any of them is made."""
        if "auth" in self.__dict__:
            raise RuntimeError("redirect() after the auth file was made")
        self.run_env = env

    # --- the AWS side -------------------------------------------------------------------

    @cached_property
    def files(self) -> AwsFiles:
        """The AWS config files, read once for the whole command."""
        from runas_async.aws import config as awsconfig

        return awsconfig.read(self.env)

    @cached_property
    def partitions(self) -> tuple[Partition, ...]:
        from runas_async.core.partitions import load_partitions

        return load_partitions()

    @cached_property
    def region(self) -> str | None:
        """``--region``, if given."""
        return None if self.targets is None else self.targets.region

    @cached_property
    def specs(self) -> list[LoginSpec]:
        """The profiles and registries asked for, from --file, -p, or [PROFILE] [ENDPOINT ...]."""
        targets = self._targets()
        text = None if targets.file is None else _read_file(targets.file)
        return specs_for(targets, text, self.files, self.env, self.partitions)

    def _targets(self) -> Targets:
        if self.targets is None:
            raise RuntimeError("this command names no targets")
        return self.targets

    @contextlib.contextmanager
    def connecting(self, *, registries: bool = False) -> Iterator[None]:
        """The start-up connections (preconnect.py), opened before the heavy imports so that
        they connect while those run (with ``registries``, the built-in client's to the
        registries too); closed on the way out, used or not."""
        from runas_async.aws import _lazyca, preconnect

        # aiohttp's import-time CA loading, off the way to the first request (_lazyca.py);
        # loaded ahead in a thread when the built-in client will use it.
        _lazyca.defer(load_after=registries)
        self.preconnected = preconnect.start(
            self.specs, self.env, self.partitions, self.region, self.files, registries=registries
        )
        log.debug("connecting at start-up to %s", self.preconnected.targets or "nothing")
        try:
            yield
        finally:
            _lazyca.resume()
            self.preconnected.close()

    @property
    def plan(self) -> Plan:
        """One token request per (profile, region, public), with every registry it serves."""
        return self._sessions.plan

    @cached_property
    def _sessions(self) -> _Sessions:
        from runas_async.aws import _lazyca
        from runas_async.aws.tokens import new_session, profile_region
        from runas_async.core.plan import plan_logins

        _lazyca.resume()  # aiohttp is imported (tokens imports it)

        sessions: dict[str, AioSession] = {}
        regions: dict[str, str | None] = {}
        resolved = []
        for spec in self.specs:
            try:
                if spec.profile not in sessions:
                    sessions[spec.profile] = new_session(spec.profile if spec.explicit else None)
                    regions[spec.profile] = profile_region(
                        sessions[spec.profile], self.region, self.env
                    )
            except AwsError as e:
                if spec.origin:
                    raise type(e)(f"{spec.origin}: {e}") from e
                raise
            resolved.append(replace(spec, region=spec.region or regions[spec.profile]))
        try:
            plan = plan_logins(resolved, self.partitions)
        except NoRegion as e:
            from runas_async.aws.config import nothing_found

            raise NoRegion(nothing_found(self.files, self.env) or str(e)) from e
        log.debug(
            "plan: %d registries, %d token requests, profiles %s",
            len(plan.targets),
            len(plan.keys),
            ", ".join(repr(p) for p in sessions),
        )
        return _Sessions(plan=plan, sessions=sessions)

    def resolver(self, reporter: Reporter | None = None) -> CredentialResolver:
        """Credentials with awscli's cache and one MFA prompt per device (``reporter``'s
        live table paused meanwhile)."""
        from runas_async.aws.credentials import default_resolver

        return default_resolver(
            self.run_env,
            mfa_code=self.credentials.mfa_code,
            refresh=self.credentials.refresh,
            pause=None if reporter is None else reporter.paused,
            waiting=None if reporter is None else reporter.note,
        )

    def tokens(self, reporter: Reporter | None = None) -> AwsTokenProvider:
        """The token provider of the plan's sessions (``reporter`` hears its notes)."""
        from runas_async.aws.tokens import AwsTokenProvider

        return AwsTokenProvider(
            self._sessions.sessions,
            resolver=self.resolver(reporter),
            preconnected=self.preconnected,
            env=self.run_env,
            notify=None if reporter is None else reporter.note,
        )

    def identities(self) -> dict[str, str | None]:
        """Per profile, what identifies its credentials without botocore (see
        AwsFiles.identity)."""
        out: dict[str, str | None] = {}
        for spec in self.specs:
            if spec.explicit:
                out[spec.profile] = self.files.identity(spec.profile)
            else:  # the default chain: environment keys first, then the profile
                out[spec.profile] = self.env.get("AWS_ACCESS_KEY_ID") or self.files.identity(
                    spec.profile
                )
        return out

    # --- the client and its auth file ----------------------------------------------------

    def _client(self) -> Client:
        if self.client is None:
            raise RuntimeError("this command names no client")
        return self.client

    def find_client(self) -> str | None:
        """The client program found on PATH (ClientNotFound if it is not), once; None for
        the built-in client."""
        from runas_async.core.places import find_client  # not runners.py: it imports anyio

        if not self._found:
            client = self._client()
            self._executable = find_client(client.name, self.env) if client.program else None
            self._found = True
        return self._executable

    @cached_property
    def auth(self) -> AuthFile:
        """The client's auth file (where ``run_env`` puts it)."""
        from runas_async.auth.authfile import AuthFile

        return AuthFile(self._client().auth_path(self.run_env))

    @cached_property
    def seed(self) -> bytes | None:
        """The auth file checked to be readable and replaceable, and its content: once."""
        return self.auth.preflight()

    @cached_property
    def document(self) -> dict[str, Any]:
        """The auth file's content: read once (from :attr:`seed` when it was checked)."""
        from runas_async.auth.authfile import parse_document

        if "seed" in self.__dict__:
            return parse_document(self.seed)
        return self.auth.document()

    def check_auth(self, plan: Plan | None = None) -> None:
        """The auth file checked before anything runs (once: :attr:`seed`); with ``plan``,
        also every credential helper that would store one of its logins found on PATH."""
        seed = self.seed
        if plan is None or self._checked:
            return
        # runners imports anyio: not on the path of a run that ends with every login fresh
        from runas_async.auth.runners import check_helpers

        hosts = [t.registry.host if t.registry else None for t in plan.targets]
        check_helpers(hosts, self.auth, seed, self.run_env)
        self._checked = True

    # --- the state file ----------------------------------------------------------------

    @cached_property
    def state_file(self) -> StateFile:
        from runas_async.auth.state import StateFile
        from runas_async.core.places import state_file

        return StateFile(state_file(self.env))

    @cached_property
    def state(self) -> State:
        """The state file's content, read once."""
        return self.state_file.load()

    @cached_property
    def recorder(self) -> Recorder | None:
        """The writer of this run's login records; None when they are not to be kept."""
        from runas_async.auth.recording import Recorder

        if not self.recorded:
            return None
        # What identifies each profile's credentials: for the accounts logins learn.
        identities = self.identities() if not self.logout and self.targets is not None else {}
        return Recorder(self.state_file, self.auth.path, self._client().name, identities)

    def ecr_logins(self) -> list[EcrLogin]:
        """The auth file's ECR registries, with what the state file knows of them."""
        import time

        from runas_async.auth.freshness import ecr_logins

        return ecr_logins(self.document, self.auth.path, self.state, time.time(), self.partitions)

    # --- the run -----------------------------------------------------------------------

    @property
    def output(self) -> Output:
        if self.secrets_out or self.run is None:
            return Output.TEXT
        return self.run.output

    @cached_property
    def reporter(self) -> Reporter:
        """The table, the lines or the JSON document the run reports with (cli/formats/)."""
        from runas_async.cli.formats import reporter

        stream = sys.stderr if self.secrets_out else self.stdout
        # A login's table is drawn once its first request has left (the engine begins it):
        # a logout's engine does not, so its table is drawn at once.
        return reporter(self.output, stream, self.env, logout=self.logout, defer=not self.logout)

    def runner(self, plan: Plan) -> ClientRunner | BuiltinRunner:
        """The client's runner, or the built-in one; the auth file checked for ``plan``
        before any request (no auth file when the secrets are printed)."""
        from runas_async.auth.registry import BuiltinRunner
        from runas_async.aws._transport import RegistryConnections

        jobs = self.run.jobs if self.run is not None else 1
        # The built-in client's pool takes the registry connections opened at start-up,
        # and opens each while its token comes (_transport.py).
        opened = RegistryConnections(self.preconnected)
        runner: ClientRunner | BuiltinRunner
        if self.secrets_out:
            runner = BuiltinRunner(
                None, None, self.run_env, connections=jobs, keep_secrets=True, opened=opened
            )
        else:
            self.check_auth(plan)
            executable = self.find_client()
            if executable is None:
                runner = BuiltinRunner(
                    self.auth,
                    self.seed,
                    self.run_env,
                    connections=jobs,
                    recorder=self.recorder,
                    opened=opened,
                )
            else:
                from runas_async.auth.runners import ClientRunner

                runner = ClientRunner(
                    self._client(),
                    executable,
                    self.auth,
                    self.seed,
                    self.run_env,
                    self.recorder,
                )
        return runner

    def dry_run(self, plan: Plan) -> Outcome:
        """Print ``plan`` instead of running it."""
        from runas_async.cli.formats import render_plan

        render_plan(plan, self.output, self.stdout, logout=self.logout)
        return DONE

    def until_signalled(
        self,
        work: Callable[[anyio.Event], Awaitable[list[LoginResult]]],
        reporter: Reporter | None = None,
        *,
        collect_after: Callable[[], anyio.Event] | None = None,
    ) -> Outcome:
        """Run ``work`` in an event loop; SIGINT, SIGTERM and SIGHUP set its ``stop`` event.

        The signal receiver outlives ``work`` (whose clean-up merges the logins done and
        removes the temporary files), so a signal cannot interrupt that; after the first
        signal, later ones are ignored. The live display (``reporter``, else the context's)
        is left as it stands, whatever happens. The garbage collector, off since start-up
        (cli.pause_gc), comes back on once ``collect_after``'s event is set (the first
        request has left: the clients it needed are made without collections of objects
        that are all kept), or after :data:`COLLECT_AFTER` seconds; without it, at once.
        """
        return _until_signalled(work, reporter or self.reporter, collect_after)


def specs_for(
    targets: Targets,
    file_text: str | None,
    files: AwsFiles,
    env: Mapping[str, str],
    partitions: tuple[Partition, ...],
) -> list[LoginSpec]:
    """What :attr:`Context.specs` reads, decided from the texts at hand (no I/O).

    A PROFILE that names no profile of the config files but is a valid ENDPOINT is an
    ENDPOINT, with the default credentials; a profile of that name wins. A profile whose
    own registry is asked for and whose account the config states (a role's ``role_arn``,
    an ``sso_account_id``) gets that registry without a GetCallerIdentity call. A
    ``source_profile`` chain that is broken is a ConfigError here, before any request.
    """
    from runas_async.core.loginfile import parse_login_file
    from runas_async.core.plan import LoginSpec

    specs: list[LoginSpec] = []
    if targets.file is not None and file_text is not None:
        name = "<stdin>" if targets.file == "-" else targets.file
        specs += parse_login_file(file_text, name, partitions)
    specs += [LoginSpec(p, None) for p in targets.profiles]
    if not specs:
        specs.append(_positional_spec(targets, files, env, partitions))
    for spec in specs:
        problem = files.check(spec.profile)
        if problem is not None:
            raise ConfigError(f"{spec.origin}: {problem}" if spec.origin else problem)
    return [_with_known_account(spec, files, env) for spec in specs]


def _positional_spec(
    targets: Targets, files: AwsFiles, env: Mapping[str, str], partitions: tuple[Partition, ...]
) -> LoginSpec:
    """``[PROFILE] [ENDPOINT ...]`` as one spec."""
    from runas_async.core.endpoints import parse_endpoints
    from runas_async.core.plan import LoginSpec

    profile, raws = targets.profile, list(targets.endpoints)
    if profile is not None and profile not in files.names and _is_endpoint(profile, partitions):
        raws = [profile, *raws]
        profile = None
    endpoints = tuple(parse_endpoints(raws, partitions))
    if profile is None:
        shown = env.get("AWS_PROFILE") or "default"
        return LoginSpec(shown, None, endpoints, explicit=False)
    return LoginSpec(profile, None, endpoints)


def _is_endpoint(text: str, partitions: tuple[Partition, ...]) -> bool:
    from runas_async.core.endpoints import parse_endpoint

    try:
        parse_endpoint(text, partitions)
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
    """``--file``'s text, read within files.py's bounds (a FIFO or /dev/zero: an error)."""
    from runas_async.files import decode, read_stream, read_user

    what = f"--file {show(name)}"
    if name == "-":
        return read_stream(sys.stdin, what="--file from stdin", error=UsageError)
    data = read_user(Path(name), what="--file", error=UsageError)
    if data is None:
        raise UsageError(f"cannot read {what}: No such file or directory")
    return decode(data, what=what, error=UsageError)


def _until_signalled(
    work: Callable[[anyio.Event], Awaitable[list[LoginResult]]],
    reporter: Reporter,
    collect_after: Callable[[], anyio.Event] | None,
) -> Outcome:
    import anyio

    from runas_async.cli import resume_gc

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

    async def collect(event: anyio.Event) -> None:
        with anyio.move_on_after(COLLECT_AFTER):
            await event.wait()
        resume_gc()

    async def go() -> list[LoginResult]:
        stop = anyio.Event()
        async with anyio.create_task_group() as tg:
            await tg.start(watch, stop)
            if collect_after is not None:
                tg.start_soon(collect, collect_after())
            results = await work(stop)
            tg.cancel_scope.cancel()
        return results

    fast_child_watcher()
    if collect_after is None:
        resume_gc()  # the heavy modules are imported, the collaborators made
    try:
        results = anyio.run(go)
    finally:
        resume_gc()
        reporter.stop()
    return Outcome(results=results, signum=received[0] if received else None)


def fast_child_watcher() -> None:
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
