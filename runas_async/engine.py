"""The engine: one token request per (credentials, region), logins fanned out.

:func:`run_plan` logs into every registry of a plan (plan.py) concurrently;
:func:`run_logouts` logs out of them. Both talk to the world only through the
collaborators they are given (a token or account provider, a runner, a reporter) and
share one frame (:func:`_drive`): the overall deadline, the stop event, and the rule
that a registry's failure is its result, never an exception that cancels the others.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio
from anyio.abc import TaskGroup

from runas_async.core.endpoints import registry_for
from runas_async.core.errors import CredentialsError, LoginError, TokenError
from runas_async.core.models import LoginResult, Registry, Status, Target, Token, TokenKey
from runas_async.core.plan import Plan
from runas_async.core.sanitize import clean

log = logging.getLogger(__name__)


class AccountProvider(Protocol):
    async def account(self, profile: str, region: str) -> str: ...


class TokenProvider(AccountProvider, Protocol):
    async def token(self, key: TokenKey) -> Token: ...


TokenSource = Callable[[], Awaitable[Token]]
"""Waits for a token. A login runner may start its client first and call it when the
client is ready for the password: the client's start-up then overlaps the token request."""


class LoginRunner(Protocol):
    async def login(self, registry: Registry, token: TokenSource) -> None: ...


class LogoutRunner(Protocol):
    async def logout(self, host: str) -> None: ...


class Reporter(Protocol):
    """What a run shows as it goes: the one protocol every output format (cli/formats/)
    implements. The engine calls ``start``, ``update`` and ``finish``; the credentials and
    the command call the rest."""

    def start(self, plan: Plan) -> None: ...

    def update(self, result: LoginResult) -> None: ...

    def finish(self, results: Sequence[LoginResult]) -> None: ...

    def note(self, key: TokenKey | str, text: str | None) -> None:
        """What a token request (or every one of a profile) waits for now; None clears it."""

    def paused(self) -> AbstractContextManager[None]:
        """The display taken off the terminal while something else uses it (an MFA prompt)."""

    def begin(self) -> None:
        """A display that waits (``defer``) goes on screen: the first request has left."""

    def stop(self) -> None:
        """The display left as it stands (also on errors and Ctrl-C)."""


RUN_TIME_FAILURES = (TokenError, CredentialsError)
"""What a token or account request can fail with that is one profile's, not the run's."""


def _unexpected(error: Exception, doing: str, host: str, token: Token | None = None) -> str:
    """The one-line failure of a registry whose runner raised something none of ours (a
    library's surprise, a bug): that registry fails, the others go on. Its traceback only
    under ``--debug``; its text sanitized, the token's password and ``auth`` value redacted."""
    log.debug("%s %s raised", doing, host, exc_info=error)
    secrets: tuple[str, ...] = ()
    if token is not None:
        # docker's ``auth`` value (auth/ builds it too; the engine imports nothing of auth/)
        auth = base64.b64encode(f"{token.username}:{token.password}".encode()).decode()
        secrets = (token.password, auth)
    reason = clean(str(error), secrets) or "no message"
    return f"unexpected error: {type(error).__name__}: {reason} (--debug shows where)"


class _NoToken(Exception):
    """The token request of a login's key failed; the key's rows already say why."""


class _PendingToken:
    """One key's token, awaited by the logins started before it arrived."""

    def __init__(self) -> None:
        self._done = anyio.Event()
        self.token: Token | None = None

    def settle(self, token: Token | None) -> None:
        self.token = token
        self._done.set()

    @property
    def failed(self) -> bool:
        return self._done.is_set() and self.token is None

    async def wait(self) -> Token:
        await self._done.wait()
        if self.token is None:
            raise _NoToken
        return self.token


@dataclass
class _Run:
    reporter: Reporter
    clock: Callable[[], float]
    started: float
    results: dict[Target, LoginResult] = field(default_factory=dict)

    def set(
        self,
        target: Target,
        status: Status,
        registry: Registry | None = None,
        error: str | None = None,
    ) -> None:
        result = LoginResult(
            target=target,
            status=status,
            registry=registry or target.registry,
            error=error,
            seconds=self.clock() - self.started,
        )
        self.results[target] = result
        self.reporter.update(result)


def _begin_when(tg: TaskGroup, reporter: Reporter, event: anyio.Event | None) -> None:
    """Call the reporter's ``begin`` (a live display that waits goes on screen) in ``tg``
    once ``event`` is set."""
    if event is None:
        return

    async def when_set() -> None:
        await event.wait()
        reporter.begin()

    tg.start_soon(when_set)


Serve = Callable[[TokenKey, tuple[Target, ...], TaskGroup], Coroutine[Any, Any, None]]
"""Starts the work for one token key's registries in the task group."""


async def _drive(
    plan: Plan,
    run: _Run,
    serve: Serve,
    *,
    deadline: float | None,
    stop: anyio.Event | None,
    shown_after: anyio.Event | None = None,
) -> list[LoginResult]:
    """Serve every key of the plan concurrently, within ``deadline`` and until ``stop``.

    The registries not done when the deadline passes or ``stop`` is set fail with the
    reason; everything already done is kept. The reporter's ``begin`` (a live display that
    waits goes on screen) is called once ``shown_after`` is set: the first request has left.
    """
    run.reporter.start(plan)
    for target in plan.targets:
        run.set(target, Status.WAITING)

    async def stop_on(event: anyio.Event, scope: anyio.CancelScope) -> None:
        await event.wait()
        scope.cancel()

    with anyio.move_on_after(deadline) as deadline_scope:
        async with anyio.create_task_group() as outer:
            if stop is not None:
                outer.start_soon(stop_on, stop, outer.cancel_scope)
            _begin_when(outer, run.reporter, shown_after)
            async with anyio.create_task_group() as tg:
                for key in plan.keys:
                    tg.start_soon(serve, key, plan.targets_for(key), tg)
            outer.cancel_scope.cancel()
    cut_short = None
    if deadline_scope.cancelled_caught:
        cut_short = f"overall deadline of {deadline:g}s reached"
    elif stop is not None and stop.is_set():
        cut_short = "interrupted"
    if cut_short is not None:
        for target in plan.targets:
            if not run.results[target].status.done:
                run.set(target, Status.FAILED, run.results[target].registry, cut_short)

    results = [run.results[t] for t in plan.targets]
    run.reporter.finish(results)
    return results


async def run_plan(
    plan: Plan,
    tokens: TokenProvider,
    runner: LoginRunner,
    reporter: Reporter,
    *,
    jobs: int,
    login_timeout: float,
    deadline: float | None = None,
    stop: anyio.Event | None = None,
    prestart: anyio.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> list[LoginResult]:
    """Fetch every token in parallel and log into each registry as its token arrives.

    A login whose registry is known up front starts its client early (within
    ``jobs``), and the client gets its password when the token comes: its start-up
    overlaps the token request instead of following it. "Early" is when ``prestart``
    is set (the caller sets it once the first AWS connection is under way, so that
    spawning clients does not delay it) or when the first token arrives, whichever
    comes first; without ``prestart``, at once. Clients are spawned one at a time.

    A failure known only at run time (a token request refused, credentials that cannot
    be had: a denied role, an expired SSO session, a refused MFA code) fails the
    registries that needed it and is recorded as their result, never raised: every
    other registry is still tried. Only configuration errors propagate.

    ``deadline`` bounds the whole run and ``stop`` (set on a signal) ends it
    early; either way the registries not done by then are failed with the
    reason, and everything already done is kept.
    """
    run = _Run(reporter=reporter, clock=clock, started=clock())
    engine = _Logins(plan, tokens, runner, run, jobs, login_timeout, prestart)
    return await _drive(
        plan, run, engine.serve_key, deadline=deadline, stop=stop, shown_after=engine.gate
    )


class _Logins:
    """The login side of one run: a key's token and account fetched, its logins fanned out."""

    def __init__(
        self,
        plan: Plan,
        tokens: TokenProvider,
        runner: LoginRunner,
        run: _Run,
        jobs: int,
        login_timeout: float,
        prestart: anyio.Event | None,
    ) -> None:
        self.plan = plan
        self.tokens = tokens
        self.runner = runner
        self.run = run
        self.limiter = anyio.CapacityLimiter(jobs)
        self.login_timeout = login_timeout
        self.gate = prestart if prestart is not None else anyio.Event()
        if prestart is None:
            self.gate.set()

    async def serve_key(self, key: TokenKey, targets: tuple[Target, ...], tg: TaskGroup) -> None:
        """Fetch ``key``'s token (and account, for a profile's own registry); log in."""
        pending = _PendingToken()
        own = [t for t in targets if t.registry is None]
        for target in targets:
            self.run.set(target, Status.TOKEN)
            if target.registry is not None:
                # Its client starts now and waits for the password on stdin.
                tg.start_soon(self.login_one, target, target.registry, pending)
        account = _Account()
        async with anyio.create_task_group() as inner:
            inner.start_soon(self.fetch_token, key, targets, pending)
            if own:
                inner.start_soon(account.fetch, self.tokens, key)
        if pending.failed:
            return
        for target in own:
            if account.value is None:
                self.run.set(target, Status.FAILED, error=str(account.failure))
                continue
            registry = registry_for(account.value, key.region, self.plan.partitions)
            tg.start_soon(self.login_one, target, registry, pending)

    async def fetch_token(
        self, key: TokenKey, targets: tuple[Target, ...], pending: _PendingToken
    ) -> None:
        """The key's token for its logins; a failure fails every registry of the key."""
        clock = self.run.clock
        started = clock()
        token: Token | None = None
        try:
            token = await self.tokens.token(key)
        except RUN_TIME_FAILURES as e:
            for target in targets:
                self.run.set(target, Status.FAILED, error=str(e))
        log.debug(
            "token for %s in %s: %s in %.3fs",
            key.profile,
            key.region,
            "failed" if token is None else "ok",
            clock() - started,
        )
        pending.settle(token)
        self.gate.set()

    async def login_one(self, target: Target, registry: Registry, pending: _PendingToken) -> None:
        """Start the client as soon as there is a slot, give it the token when it comes.

        ``--timeout`` counts from the moment the token is there: waiting for it is
        the token request's time, not the login's.
        """
        await self.gate.wait()
        async with self.limiter:
            if pending.failed:
                return  # its rows already carry the token error
            await self._login(target, registry, pending)

    async def _login(self, target: Target, registry: Registry, pending: _PendingToken) -> None:
        run, clock = self.run, self.run.clock
        scope = anyio.CancelScope()
        started = clock()

        async def token_for_login() -> Token:
            nonlocal started
            token = await pending.wait()
            run.set(target, Status.LOGIN, registry)
            started = clock()
            scope.deadline = anyio.current_time() + self.login_timeout
            return token

        try:
            with scope:
                await self.runner.login(registry, token_for_login)
        except _NoToken:
            return
        except LoginError as e:
            log.debug("login %s failed after %.3fs", registry.host, clock() - started)
            run.set(target, Status.FAILED, registry, str(e))
            return
        except Exception as e:  # one registry's surprise is its row, never the run's end
            run.set(
                target,
                Status.FAILED,
                registry,
                _unexpected(e, "login", registry.host, pending.token),
            )
            return
        if scope.cancelled_caught:
            log.debug("login %s killed at its timeout", registry.host)
            run.set(target, Status.FAILED, registry, f"timed out after {self.login_timeout:g}s")
        else:
            log.debug("login %s ok in %.3fs", registry.host, clock() - started)
            run.set(target, Status.OK, registry)


class _Account:
    """The account of a key's credentials, or why it could not be had."""

    def __init__(self) -> None:
        self.value: str | None = None
        self.failure: TokenError | CredentialsError | None = None

    async def fetch(self, accounts: AccountProvider, key: TokenKey) -> None:
        try:
            self.value = await accounts.account(key.profile, key.region)
        except RUN_TIME_FAILURES as e:
            self.failure = e


async def run_logouts(
    plan: Plan,
    accounts: AccountProvider,
    runner: LogoutRunner,
    reporter: Reporter,
    *,
    jobs: int,
    logout_timeout: float,
    deadline: float | None = None,
    stop: anyio.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> list[LoginResult]:
    """Log out of every registry of the plan, concurrently within ``jobs``.

    No token is fetched: a profile's own registry only needs its account (STS).
    ``logout_timeout`` bounds each logout. Failures, the deadline and ``stop`` are handled as
    in :func:`run_plan`.
    """
    run = _Run(reporter=reporter, clock=clock, started=clock())
    engine = _Logouts(plan, accounts, runner, run, jobs, logout_timeout)
    return await _drive(plan, run, engine.serve_key, deadline=deadline, stop=stop)


class _Logouts:
    """The logout side of one run: a key's registries logged out, its own registry once
    its account is known."""

    def __init__(
        self,
        plan: Plan,
        accounts: AccountProvider,
        runner: LogoutRunner,
        run: _Run,
        jobs: int,
        logout_timeout: float,
    ) -> None:
        self.plan = plan
        self.accounts = accounts
        self.runner = runner
        self.run = run
        self.limiter = anyio.CapacityLimiter(jobs)
        self.timeout = logout_timeout

    async def serve_key(self, key: TokenKey, targets: tuple[Target, ...], tg: TaskGroup) -> None:
        """Log out of ``key``'s known registries at once; of its own one after STS."""
        for target in targets:
            if target.registry is not None:
                tg.start_soon(self.logout_one, target, target.registry)
        own = [t for t in targets if t.registry is None]
        if not own:
            return
        account = _Account()
        await account.fetch(self.accounts, key)
        for target in own:
            if account.value is None:
                self.run.set(target, Status.FAILED, error=str(account.failure))
                continue
            registry = registry_for(account.value, key.region, self.plan.partitions)
            tg.start_soon(self.logout_one, target, registry)

    async def logout_one(self, target: Target, registry: Registry) -> None:
        """One logout within ``jobs`` and its ``timeout``; a failure is its row."""
        async with self.limiter:
            self.run.set(target, Status.LOGOUT, registry)
            try:
                with anyio.fail_after(self.timeout):
                    await self.runner.logout(registry.host)
            except LoginError as e:
                self.run.set(target, Status.FAILED, registry, str(e))
            except TimeoutError:
                self.run.set(target, Status.FAILED, registry, f"timed out after {self.timeout:g}s")
            except Exception as e:  # one registry's surprise is its row, never the run's end
                self.run.set(
                    target, Status.FAILED, registry, _unexpected(e, "logout", registry.host)
                )
            else:
                self.run.set(target, Status.OK, registry)
