"""The engine: one token request per (credentials, region), logins fanned out.

:func:`run_plan` runs a plan (plan.py) concurrently and talks to the world only through
the collaborators it is given: a token provider, a login runner and a reporter.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import anyio

from runas_async.endpoints import registry_for
from runas_async.errors import LoginError, TokenError
from runas_async.models import LoginResult, Registry, Status, Target, Token, TokenKey
from runas_async.plan import Plan

log = logging.getLogger(__name__)


class TokenProvider(Protocol):
    async def token(self, key: TokenKey) -> Token: ...

    async def account(self, profile: str, region: str) -> str: ...


TokenSource = Callable[[], Awaitable[Token]]
"""Waits for a token. A login runner may start its client first and call it when the
client is ready for the password: the client's start-up then overlaps the token request."""


class LoginRunner(Protocol):
    async def login(self, registry: Registry, token: TokenSource) -> None: ...


class LogoutRunner(Protocol):
    async def logout(self, host: str) -> None: ...


class Reporter(Protocol):
    def start(self, plan: Plan) -> None: ...

    def update(self, result: LoginResult) -> None: ...

    def finish(self, results: Sequence[LoginResult]) -> None: ...


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
    logout: LogoutRunner | None = None,
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

    A failure of one registry is recorded as its result, never raised: the
    others go on. Credential and configuration errors (the whole profile is
    unusable) propagate and cancel the run.

    ``deadline`` bounds the whole run and ``stop`` (set on a signal) ends it
    early; either way the registries not done by then are failed with the
    reason, and everything already done is kept.

    With ``logout`` the registries are logged out instead: no tokens are
    fetched (only the caller's account, for a profile's own registry).
    """
    run = _Run(reporter=reporter, clock=clock, started=clock())
    limiter = anyio.CapacityLimiter(jobs)
    gate = prestart if prestart is not None else anyio.Event()
    if prestart is None:
        gate.set()
    reporter.start(plan)
    for target in plan.targets:
        run.set(target, Status.WAITING)

    async def login_one(target: Target, registry: Registry, pending: _PendingToken) -> None:
        """Start the client as soon as there is a slot, give it the token when it comes.

        ``--timeout`` counts from the moment the token is there: waiting for it is
        the token request's time, not the login's.
        """
        await gate.wait()
        async with limiter:
            if pending.failed:
                return  # its rows already carry the token error
            scope = anyio.CancelScope()
            started = clock()

            async def token_for_login() -> Token:
                nonlocal started
                token = await pending.wait()
                run.set(target, Status.LOGIN, registry)
                started = clock()
                scope.deadline = anyio.current_time() + login_timeout
                return token

            try:
                with scope:
                    await runner.login(registry, token_for_login)
            except _NoToken:
                return
            except LoginError as e:
                log.debug("login %s failed after %.3fs", registry.host, clock() - started)
                run.set(target, Status.FAILED, registry, str(e))
                return
            if scope.cancelled_caught:
                log.debug("login %s killed at its timeout", registry.host)
                run.set(target, Status.FAILED, registry, f"timed out after {login_timeout:g}s")
            else:
                log.debug("login %s ok in %.3fs", registry.host, clock() - started)
                run.set(target, Status.OK, registry)

    async def logout_one(target: Target, registry: Registry, out: LogoutRunner) -> None:
        async with limiter:
            run.set(target, Status.LOGIN, registry)
            try:
                with anyio.fail_after(login_timeout):
                    await out.logout(registry.host)
            except LoginError as e:
                run.set(target, Status.FAILED, registry, str(e))
            except TimeoutError:
                run.set(target, Status.FAILED, registry, f"timed out after {login_timeout:g}s")
            else:
                run.set(target, Status.OK, registry)

    async def serve_key(
        key: TokenKey, targets: tuple[Target, ...], tg: anyio.abc.TaskGroup
    ) -> None:
        pending = _PendingToken()
        own = [t for t in targets if t.registry is None]
        for target in targets:
            if logout is not None:
                if target.registry is not None:
                    tg.start_soon(logout_one, target, target.registry, logout)
                continue
            run.set(target, Status.TOKEN)
            if target.registry is not None:
                # Its client starts now and waits for the password on stdin.
                tg.start_soon(login_one, target, target.registry, pending)
        account: str | None = None
        token_failed = False
        account_failure: TokenError | None = None

        async def fetch_token() -> None:
            nonlocal token_failed
            started = clock()
            token: Token | None = None
            try:
                token = await tokens.token(key)
            except TokenError as e:
                token_failed = True
                for target in targets:
                    run.set(target, Status.FAILED, error=str(e))
            log.debug(
                "token for %s in %s: %s in %.3fs",
                key.profile,
                key.region,
                "failed" if token is None else "ok",
                clock() - started,
            )
            pending.settle(token)
            gate.set()

        async def fetch_account() -> None:
            nonlocal account, account_failure
            try:
                account = await tokens.account(key.profile, key.region)
            except TokenError as e:
                account_failure = e

        async with anyio.create_task_group() as inner:
            if logout is None:
                inner.start_soon(fetch_token)
            if own:
                inner.start_soon(fetch_account)
        if token_failed:
            return
        for target in own:
            if account is None:
                run.set(target, Status.FAILED, error=str(account_failure))
                continue
            registry = registry_for(account, key.region, plan.partitions)
            if logout is not None:
                tg.start_soon(logout_one, target, registry, logout)
            else:
                tg.start_soon(login_one, target, registry, pending)

    async def stop_on(event: anyio.Event, scope: anyio.CancelScope) -> None:
        await event.wait()
        scope.cancel()

    cut_short: str | None = None
    with anyio.move_on_after(deadline) as deadline_scope:
        async with anyio.create_task_group() as outer:
            if stop is not None:
                outer.start_soon(stop_on, stop, outer.cancel_scope)
            async with anyio.create_task_group() as tg:
                for key in plan.keys:
                    tg.start_soon(serve_key, key, plan.targets_for(key), tg)
            outer.cancel_scope.cancel()
    if deadline_scope.cancelled_caught:
        cut_short = f"overall deadline of {deadline:g}s reached"
    elif stop is not None and stop.is_set():
        cut_short = "interrupted"
    if cut_short is not None:
        for target in plan.targets:
            if not run.results[target].status.done:
                run.set(target, Status.FAILED, run.results[target].registry, cut_short)

    results = [run.results[t] for t in plan.targets]
    reporter.finish(results)
    return results
