"""The plan and its run: one token request per (credentials, region), logins fanned out.

Pure planning (:func:`build_plan`) plus the concurrent run (:func:`run_plan`),
which talks to the world only through the collaborators it is given: a token
provider, a login runner and a reporter.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import anyio

from runas_async.endpoints import AccountEndpoint, Endpoint, PublicEndpoint, registry_for
from runas_async.errors import LoginError, NoRegion, TokenError
from runas_async.models import LoginResult, Registry, Status, Target, Token, TokenKey
from runas_async.partitions import Partition, partition_for_region

log = logging.getLogger(__name__)


class TokenProvider(Protocol):
    async def token(self, key: TokenKey) -> Token: ...

    async def account(self, profile: str, region: str) -> str: ...


class LoginRunner(Protocol):
    async def login(self, registry: Registry, token: Token) -> None: ...


class LogoutRunner(Protocol):
    async def logout(self, host: str) -> None: ...


class Reporter(Protocol):
    def start(self, plan: Plan) -> None: ...

    def update(self, result: LoginResult) -> None: ...

    def finish(self, results: Sequence[LoginResult]) -> None: ...


@dataclass(frozen=True)
class Plan:
    """Every registry to log into, grouped by the token request that serves it."""

    targets: tuple[Target, ...]
    partitions: tuple[Partition, ...] = ()

    @property
    def keys(self) -> tuple[TokenKey, ...]:
        return tuple(dict.fromkeys(t.key for t in self.targets))

    def targets_for(self, key: TokenKey) -> tuple[Target, ...]:
        return tuple(t for t in self.targets if t.key == key)


@dataclass(frozen=True)
class LoginSpec:
    """One profile's part of a run: its region and the endpoints asked of it.

    ``origin`` says where it came from, for messages ("" for the command line,
    ``FILE: login[N]`` for an entry of a --file).
    """

    profile: str
    region: str | None
    endpoints: tuple[Endpoint, ...] = ()
    origin: str = ""


def build_plan(
    profile: str,
    region: str | None,
    endpoints: Sequence[Endpoint],
    partitions: tuple[Partition, ...],
) -> Plan:
    """The plan for one profile (the ``ecr login PROFILE [ENDPOINT ...]`` form)."""
    return plan_logins([LoginSpec(profile, region, tuple(endpoints))], partitions)


def plan_logins(specs: Sequence[LoginSpec], partitions: tuple[Partition, ...]) -> Plan:
    """Resolve every spec's endpoints against its region; each registry appears once.

    A spec with no endpoints stands for its profile's own registry (account
    from STS at run time). The same registry asked twice, by one profile or by
    several, is logged into once, by the first that asked.
    """
    seen: dict[object, Target] = {}
    for spec in specs:
        where = f"{spec.origin}: " if spec.origin else ""
        if not spec.endpoints:
            if spec.region is None:
                raise NoRegion(where + _no_region(spec.profile, "its own registry"))
            if partition_for_region(spec.region, partitions) is None:
                raise NoRegion(
                    f"{where}region {spec.region!r} of profile {spec.profile!r} is not a "
                    "region of any AWS partition"
                )
            key = TokenKey(spec.profile, spec.region)
            seen.setdefault(key, Target(key=key, registry=None))
        for ep in spec.endpoints:
            if isinstance(ep, AccountEndpoint):
                if spec.region is None:
                    raise NoRegion(where + _no_region(spec.profile, f"account {ep.account}"))
                registry = registry_for(ep.account, spec.region, partitions)
            else:
                registry = ep.registry
            public = isinstance(ep, PublicEndpoint)
            key = TokenKey(spec.profile, registry.region, public=public)
            seen.setdefault(registry.host, Target(key=key, registry=registry))
    return Plan(targets=tuple(seen.values()), partitions=partitions)


def _no_region(profile: str, what: str) -> str:
    return (
        f"profile {profile!r} has no region, needed for {what}: "
        "pass --region, set AWS_REGION, or add region = ... to the profile"
    )


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
    clock: Callable[[], float] = time.monotonic,
) -> list[LoginResult]:
    """Fetch every token in parallel, then log into each registry as its token arrives.

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
    reporter.start(plan)
    for target in plan.targets:
        run.set(target, Status.WAITING)

    async def login_one(target: Target, registry: Registry, token: Token | None) -> None:
        async with limiter:
            run.set(target, Status.LOGIN, registry)
            started = clock()
            try:
                with anyio.fail_after(login_timeout):
                    if logout is not None:
                        await logout.logout(registry.host)
                    elif token is not None:
                        await runner.login(registry, token)
            except LoginError as e:
                log.debug("login %s failed after %.3fs", registry.host, clock() - started)
                run.set(target, Status.FAILED, registry, str(e))
            except TimeoutError:
                log.debug("login %s killed at its timeout", registry.host)
                run.set(target, Status.FAILED, registry, f"timed out after {login_timeout:g}s")
            else:
                log.debug("login %s ok in %.3fs", registry.host, clock() - started)
                run.set(target, Status.OK, registry)

    async def serve_key(
        key: TokenKey, targets: tuple[Target, ...], tg: anyio.abc.TaskGroup
    ) -> None:
        if logout is None:
            for target in targets:
                run.set(target, Status.TOKEN)
        token: Token | None = None
        account: str | None = None
        failure: TokenError | None = None

        async def fetch_token() -> None:
            nonlocal token, failure
            started = clock()
            try:
                token = await tokens.token(key)
            except TokenError as e:
                failure = failure or e
            log.debug(
                "token for %s in %s: %s in %.3fs",
                key.profile,
                key.region,
                "failed" if token is None else "ok",
                clock() - started,
            )

        async def fetch_account() -> None:
            nonlocal account, failure
            try:
                account = await tokens.account(key.profile, key.region)
            except TokenError as e:
                failure = failure or e

        async with anyio.create_task_group() as inner:
            if logout is None:
                inner.start_soon(fetch_token)
            if any(t.registry is None for t in targets):
                inner.start_soon(fetch_account)
        if failure is not None:
            for target in targets:
                run.set(target, Status.FAILED, error=str(failure))
            return
        if token is None and logout is None:
            return  # unreachable: fetch_token either set it or recorded a failure
        for target in targets:
            registry = target.registry
            if registry is None:
                if account is None:
                    return
                registry = registry_for(account, key.region, plan.partitions)
            tg.start_soon(login_one, target, registry, token)

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
