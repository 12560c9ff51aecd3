"""Planning and running logins with stand-in collaborators: no network, no subprocesses.

The stand-ins force what real AWS and a real docker cannot produce on demand: a token request
that fails in one region only, a login that never finishes, exact concurrency measurements.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

import anyio
import pytest

from runas_async.cli.formats._quiet import Quiet
from runas_async.core.endpoints import Endpoint, parse_endpoint
from runas_async.core.errors import CredentialsError, LoginError, NoRegion, TokenError
from runas_async.core.models import LoginResult, Registry, Status, Target, Token, TokenKey
from runas_async.core.partitions import load_partitions
from runas_async.core.plan import LoginSpec, Plan, plan_logins
from runas_async.engine import run_logouts, run_plan

PARTITIONS = load_partitions()
PROFILE = "dev"
OWN_ACCOUNT = "210987654321"
A1 = "111111111111"
A2 = "222222222222"
A3 = "333333333333"
GENEROUS = 10.0
"""A login timeout that no healthy fake login comes near."""


def host(account: str, region: str) -> str:
    return f"{account}.dkr.ecr.{region}.amazonaws.com"


def endpoints(*raws: str) -> list[Endpoint]:
    return [parse_endpoint(raw, PARTITIONS) for raw in raws]


def plan_for(*raws: str, region: str | None = "us-east-1") -> Plan:
    return plan_logins([LoginSpec(PROFILE, region, tuple(endpoints(*raws)))], PARTITIONS)


def password(region: str) -> str:
    return f"secret-for-{region}"


class FakeTokens:
    """A token provider: one token per region, with failures and delays on request."""

    def __init__(
        self,
        *,
        account: str = OWN_ACCOUNT,
        fail: Mapping[str, Exception] | None = None,
        fail_account: Mapping[str, Exception] | None = None,
        delay: Mapping[str, float] | None = None,
    ) -> None:
        self.own_account = account
        self.fail = dict(fail or {})
        self.fail_account = dict(fail_account or {})
        self.delay = dict(delay or {})
        self.token_calls: list[TokenKey] = []
        self.account_calls: list[tuple[str, str]] = []
        self.answered: dict[str, float] = {}

    async def token(self, key: TokenKey) -> Token:
        self.token_calls.append(key)
        await anyio.sleep(self.delay.get(key.region, 0))
        self.answered[key.region] = anyio.current_time()
        if key.region in self.fail:
            raise self.fail[key.region]
        return Token(username="AWS", password=password(key.region))

    async def account(self, profile: str, region: str) -> str:
        self.account_calls.append((profile, region))
        await anyio.sleep(self.delay.get(region, 0))
        if region in self.fail_account:
            raise self.fail_account[region]
        return self.own_account


class FakeRunner:
    """A login runner that records calls and how many logins ran at once."""

    def __init__(
        self,
        *,
        fail: Mapping[str, Exception] | None = None,
        hang: Iterable[str] = (),
        delay: Mapping[str, float] | None = None,
        default_delay: float = 0.0,
        gate: int = 0,
    ) -> None:
        self.fail = dict(fail or {})
        self.hang = frozenset(hang)
        self.delay = dict(delay or {})
        self.default_delay = default_delay
        self.gate = gate
        self._gate_open = anyio.Event()
        self.calls: list[tuple[Registry, Token]] = []
        self.entered: dict[str, float] = {}
        self.unfed: list[str] = []
        self.finished: list[str] = []
        self.active = 0
        self.peak = 0

    async def login(self, registry: Registry, source: Callable[[], Awaitable[Token]]) -> None:
        # Like a real client: started first, fed its password when the token comes.
        self.entered[registry.host] = anyio.current_time()
        try:
            token = await source()
        except BaseException:
            self.unfed.append(registry.host)
            raise
        self.calls.append((registry, token))
        self.active += 1
        self.peak = max(self.peak, self.active)
        if self.peak >= self.gate:
            self._gate_open.set()
        try:
            # Wait (bounded) until `gate` logins have been in here together.
            with anyio.move_on_after(GENEROUS / 2):
                await self._gate_open.wait()
            if registry.host in self.hang:
                await anyio.sleep_forever()
            await anyio.sleep(self.delay.get(registry.host, self.default_delay))
            if registry.host in self.fail:
                raise self.fail[registry.host]
        finally:
            self.active -= 1
        self.finished.append(registry.host)


class RecordingReporter(Quiet):
    """A reporter that remembers everything it was told (no notes, nothing to pause)."""

    def __init__(self) -> None:
        self.started: list[Plan] = []
        self.updates: list[LoginResult] = []
        self.finished: list[Sequence[LoginResult]] = []

    def start(self, plan: Plan) -> None:
        self.started.append(plan)

    def update(self, result: LoginResult) -> None:
        assert self.started, "update() before start()"
        assert not self.finished, "update() after finish()"
        self.updates.append(result)

    def finish(self, results: Sequence[LoginResult]) -> None:
        self.finished.append(results)

    def states(self, target: Target) -> list[Status]:
        return [u.status for u in self.updates if u.target == target]


async def run(
    plan: Plan,
    tokens: FakeTokens | None = None,
    runner: FakeRunner | None = None,
    reporter: RecordingReporter | None = None,
    *,
    jobs: int = 8,
    login_timeout: float = GENEROUS,
) -> list[LoginResult]:
    with anyio.fail_after(GENEROUS * 2):
        return await run_plan(
            plan,
            tokens or FakeTokens(),
            runner or FakeRunner(),
            reporter or RecordingReporter(),
            jobs=jobs,
            login_timeout=login_timeout,
        )


def hosts(targets: Iterable[Target]) -> list[str]:
    """The hosts of targets that must all have a known registry."""
    out = []
    for t in targets:
        assert t.registry is not None, t
        out.append(t.registry.host)
    return out


def by_host(results: Iterable[LoginResult]) -> dict[str, LoginResult]:
    out: dict[str, LoginResult] = {}
    for r in results:
        assert r.registry is not None
        out[r.registry.host] = r
    return out


# ---------------------------------------------------------------------------------------------
# plan_logins
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raws",
    [
        pytest.param([A1, host(A1, "us-east-1")], id="account-then-its-host"),
        pytest.param([host(A1, "us-east-1"), A1], id="host-then-its-account"),
        pytest.param([A1, A1, A1], id="same-account-thrice"),
        pytest.param(
            [f"https://{host(A1, 'us-east-1').upper()}/", f"{host(A1, 'us-east-1')}/repo:tag", A1],
            id="differently-written-host",
        ),
    ],
)
def test_duplicates_are_planned_once(raws: list[str]) -> None:
    """An account number and its full host, however written, are one registry in the plan."""
    plan = plan_for(*raws)

    assert plan.targets == (
        Target(
            key=TokenKey(PROFILE, "us-east-1"),
            registry=Registry(host=host(A1, "us-east-1"), account=A1, region="us-east-1"),
        ),
    )
    assert plan.keys == (TokenKey(PROFILE, "us-east-1"),)


def test_distinct_hosts_of_one_account_and_region_share_one_token_request() -> None:
    """Standard, FIPS and dual-stack hosts are separate registries served by one token request."""
    plan = plan_for(
        host(A1, "us-east-1"),
        f"{A1}.dkr.ecr-fips.us-east-1.amazonaws.com",
        f"{A1}.dkr-ecr.us-east-1.on.aws",
    )

    assert hosts(plan.targets) == [
        host(A1, "us-east-1"),
        f"{A1}.dkr.ecr-fips.us-east-1.amazonaws.com",
        f"{A1}.dkr-ecr.us-east-1.on.aws",
    ]
    assert plan.keys == (TokenKey(PROFILE, "us-east-1"),)


def test_plan_keeps_argument_order_and_groups_by_region() -> None:
    """Targets keep the order of the arguments; each token request lists its registries."""
    plan = plan_for(A2, host(A1, "eu-west-1"), A1, host(A3, "eu-west-1"), region="us-east-1")

    assert hosts(plan.targets) == [
        host(A2, "us-east-1"),
        host(A1, "eu-west-1"),
        host(A1, "us-east-1"),
        host(A3, "eu-west-1"),
    ]
    assert plan.keys == (TokenKey(PROFILE, "us-east-1"), TokenKey(PROFILE, "eu-west-1"))
    assert hosts(plan.targets_for(TokenKey(PROFILE, "eu-west-1"))) == [
        host(A1, "eu-west-1"),
        host(A3, "eu-west-1"),
    ]


@pytest.mark.parametrize(
    ("region", "expected"),
    [
        pytest.param("us-east-1", host(A1, "us-east-1"), id="aws"),
        pytest.param("cn-north-1", f"{A1}.dkr.ecr.cn-north-1.amazonaws.com.cn", id="china"),
        pytest.param("us-iso-east-1", f"{A1}.dkr.ecr.us-iso-east-1.c2s.ic.gov", id="iso"),
    ],
)
def test_account_endpoint_resolves_in_the_profile_region(region: str, expected: str) -> None:
    """A bare account becomes its registry in the profile's region, with that partition's suffix."""
    plan = plan_for(A1, region=region)

    assert [t.registry for t in plan.targets] == [
        Registry(host=expected, account=A1, region=region)
    ]
    assert plan.keys == (TokenKey(PROFILE, region),)


def test_host_endpoint_needs_no_profile_region() -> None:
    """A full host carries its own region, so a profile without one is fine."""
    plan = plan_for(host(A1, "eu-west-1"), region=None)

    assert plan.keys == (TokenKey(PROFILE, "eu-west-1"),)


def test_default_registry_is_planned_without_an_account() -> None:
    """With no endpoints the plan has one row: the profile's own registry, account unknown yet."""
    plan = plan_for(region="eu-central-1")

    assert plan.targets == (Target(key=TokenKey(PROFILE, "eu-central-1"), registry=None),)


@pytest.mark.parametrize(
    ("raws", "names"),
    [
        pytest.param([], "its own registry", id="no-endpoints"),
        pytest.param([A1], f"account {A1}", id="account-endpoint"),
        pytest.param([host(A2, "us-east-1"), A1], f"account {A1}", id="host-and-account"),
    ],
)
def test_no_region_when_one_is_needed(raws: list[str], names: str) -> None:
    """Without a region, the default registry and bare accounts raise NoRegion naming the need."""
    with pytest.raises(NoRegion) as info:
        plan_for(*raws, region=None)

    message = str(info.value)
    assert repr(PROFILE) in message
    assert names in message
    assert "--region" in message
    assert "\n" not in message


# ---------------------------------------------------------------------------------------------
# run_plan: tokens
# ---------------------------------------------------------------------------------------------


async def test_one_token_request_per_profile_and_region() -> None:
    """Many registries sharing a (profile, region) cost one token call; each gets that token."""
    plan = plan_for(
        A1,
        A2,
        A3,
        host(A1, "eu-west-1"),
        host(A2, "eu-west-1"),
        f"{A3}.dkr.ecr-fips.us-east-1.amazonaws.com",
    )
    tokens = FakeTokens()
    runner = FakeRunner()

    results = await run(plan, tokens, runner)

    assert collections.Counter(tokens.token_calls) == {
        TokenKey(PROFILE, "us-east-1"): 1,
        TokenKey(PROFILE, "eu-west-1"): 1,
    }
    assert tokens.account_calls == []  # every account is known
    assert [r.status for r in results] == [Status.OK] * 6
    assert sorted(reg.host for reg, _ in runner.calls) == sorted(hosts(plan.targets))
    for registry, token in runner.calls:
        assert token.password == password(registry.region)


@pytest.mark.parametrize(
    ("region", "expected_host"),
    [
        pytest.param("eu-central-1", host(OWN_ACCOUNT, "eu-central-1"), id="aws"),
        pytest.param(
            "cn-northwest-1", f"{OWN_ACCOUNT}.dkr.ecr.cn-northwest-1.amazonaws.com.cn", id="china"
        ),
    ],
)
async def test_default_registry_account_comes_from_the_token_provider(
    region: str, expected_host: str
) -> None:
    """With no endpoints the account is looked up once and its registry in the region logged in."""
    tokens = FakeTokens(account=OWN_ACCOUNT)
    runner = FakeRunner()

    (result,) = await run(plan_for(region=region), tokens, runner)

    assert tokens.account_calls == [(PROFILE, region)]
    assert tokens.token_calls == [TokenKey(PROFILE, region)]
    expected = Registry(host=expected_host, account=OWN_ACCOUNT, region=region)
    assert [reg for reg, _ in runner.calls] == [expected]
    assert result.status is Status.OK
    assert result.registry == expected
    assert result.target.registry is None


async def test_token_error_fails_only_that_regions_rows() -> None:
    """A failed token request fails its own registries with the reason; other regions log in."""
    reason = "GetAuthorizationToken in eu-west-1 failed: AccessDeniedException"
    plan = plan_for(A1, A2, host(A1, "eu-west-1"), host(A3, "eu-west-1"))
    runner = FakeRunner()

    results = await run(plan, FakeTokens(fail={"eu-west-1": TokenError(reason)}), runner)

    outcome = {h: (r.status, r.error) for h, r in by_host(results).items()}
    assert outcome == {
        host(A1, "us-east-1"): (Status.OK, None),
        host(A2, "us-east-1"): (Status.OK, None),
        host(A1, "eu-west-1"): (Status.FAILED, reason),
        host(A3, "eu-west-1"): (Status.FAILED, reason),
    }
    assert {reg.region for reg, _ in runner.calls} == {"us-east-1"}


async def test_account_lookup_token_error_fails_the_default_registry() -> None:
    """When the account of the default registry cannot be found, that row fails with the reason."""
    reason = "GetCallerIdentity failed: ExpiredToken"
    runner = FakeRunner()

    (result,) = await run(
        plan_for(region="us-east-1"),
        FakeTokens(fail_account={"us-east-1": TokenError(reason)}),
        runner,
    )

    assert result.status is Status.FAILED
    assert result.error == reason
    assert result.registry is None
    assert runner.calls == []


@pytest.mark.parametrize(
    "where",
    [pytest.param("token", id="token-call"), pytest.param("account", id="account-call")],
)
async def test_credentials_error_fails_only_the_registries_that_needed_them(where: str) -> None:
    """A CredentialsError at run time (a denied role, an expired SSO session) is the result
    of the registries that needed those credentials; every other registry is still done.
    """
    error = CredentialsError("profile 'dev': the security token has expired")
    tokens = (
        FakeTokens(fail={"eu-west-1": error}, delay={"eu-west-1": 0.05})
        if where == "token"
        else FakeTokens(fail_account={"eu-west-1": error}, delay={"eu-west-1": 0.05})
    )
    # The profile's own registry in eu-west-1 (needs token and account) plus a registry in
    # us-east-1 whose login is under way when the error arrives.
    plan = plan_logins([LoginSpec(PROFILE, "eu-west-1")], PARTITIONS)
    plan = Plan(
        targets=(*plan.targets, *plan_for(host(A1, "us-east-1")).targets),
        partitions=PARTITIONS,
    )
    runner = FakeRunner()
    reporter = RecordingReporter()

    results = await run(plan, tokens, runner, reporter, login_timeout=GENEROUS)

    own, other = results
    assert own.status is Status.FAILED
    assert own.error == str(error)
    assert other.status is Status.OK
    assert reporter.finished == [results]
    assert [reg.host for reg, _ in runner.calls] == [host(A1, "us-east-1")]


# ---------------------------------------------------------------------------------------------
# run_plan: logins
# ---------------------------------------------------------------------------------------------


async def test_clients_start_before_their_token_arrives() -> None:
    """Logins to known registries are under way while their token request is still out."""
    plan = plan_for(A1, A2, host(A1, "eu-west-1"))
    tokens = FakeTokens(delay={"us-east-1": 0.2, "eu-west-1": 0.3})
    runner = FakeRunner()

    results = await run(plan, tokens, runner)

    assert [r.status for r in results] == [Status.OK] * 3
    for reg, _ in runner.calls:
        assert runner.entered[reg.host] < tokens.answered[reg.region] - 0.1, reg.host


@pytest.mark.parametrize(
    "set_at", [pytest.param(0.05, id="set-early"), pytest.param(None, id="never-set")]
)
async def test_clients_start_at_prestart_or_the_first_token(set_at: float | None) -> None:
    """Clients wait for `prestart` (the first request on the wire) or, failing it, any token."""
    plan = plan_for(A1, host(A1, "eu-west-1"))
    tokens = FakeTokens(delay={"us-east-1": 0.2, "eu-west-1": 0.4})
    runner = FakeRunner()
    prestart = anyio.Event()
    began = anyio.current_time()

    async def set_later(when: float) -> None:
        await anyio.sleep(when)
        prestart.set()

    with anyio.fail_after(GENEROUS):
        async with anyio.create_task_group() as tg:
            if set_at is not None:
                tg.start_soon(set_later, set_at)
            results = await run_plan(
                plan,
                tokens,
                runner,
                RecordingReporter(),
                jobs=8,
                login_timeout=GENEROUS,
                prestart=prestart,
            )

    assert [r.status for r in results] == [Status.OK] * 2
    opened = set_at if set_at is not None else tokens.answered["us-east-1"] - began
    for started in runner.entered.values():
        assert opened <= started - began < opened + 0.1
    assert runner.entered[host(A1, "eu-west-1")] < tokens.answered["eu-west-1"] - 0.1


async def test_waiting_for_the_token_does_not_count_against_the_timeout() -> None:
    """--timeout starts when the password is there: a slow token request is not a slow login."""
    plan = plan_for(A1, A2)
    tokens = FakeTokens(delay={"us-east-1": 0.4})

    results = await run(plan, tokens, FakeRunner(default_delay=0.05), login_timeout=0.25)

    assert [r.status for r in results] == [Status.OK] * 2


async def test_failed_token_request_stops_the_clients_waiting_for_it() -> None:
    """Clients started for a token that fails never get a password; their rows say why."""
    reason = "ecr GetAuthorizationToken in eu-west-1: AccessDenied"
    plan = plan_for(A1, host(A1, "eu-west-1"), host(A2, "eu-west-1"))
    tokens = FakeTokens(fail={"eu-west-1": TokenError(reason)}, delay={"eu-west-1": 0.05})
    runner = FakeRunner()

    results = await run(plan, tokens, runner)

    outcome = {h: (r.status, r.error) for h, r in by_host(results).items()}
    assert outcome == {
        host(A1, "us-east-1"): (Status.OK, None),
        host(A1, "eu-west-1"): (Status.FAILED, reason),
        host(A2, "eu-west-1"): (Status.FAILED, reason),
    }
    assert sorted(runner.unfed) == sorted([host(A1, "eu-west-1"), host(A2, "eu-west-1")])
    assert runner.active == 0


async def test_failed_account_lookup_fails_only_the_default_registry() -> None:
    """Without the caller's account the profile's own registry fails; its named ones log in."""
    reason = "GetCallerIdentity in us-east-1: AccessDenied"
    plan = plan_logins([LoginSpec(PROFILE, "us-east-1")], PARTITIONS)
    plan = Plan(targets=(*plan.targets, *plan_for(A1).targets), partitions=PARTITIONS)
    tokens = FakeTokens(fail_account={"us-east-1": TokenError(reason)})

    own, named = await run(plan, tokens)

    assert (own.status, own.error, own.registry) == (Status.FAILED, reason, None)
    assert (named.status, named.error) == (Status.OK, None)


async def test_login_error_fails_only_that_row() -> None:
    """A LoginError is that registry's failure, with its message; the others log in."""
    bad = host(A2, "us-east-1")
    plan = plan_for(A1, A2, A3)
    runner = FakeRunner(fail={bad: LoginError(f"docker login {bad}: 401 Unauthorized")})

    results = await run(plan, runner=runner)

    outcome = {h: (r.status, r.error) for h, r in by_host(results).items()}
    assert outcome == {
        host(A1, "us-east-1"): (Status.OK, None),
        bad: (Status.FAILED, f"docker login {bad}: 401 Unauthorized"),
        host(A3, "us-east-1"): (Status.OK, None),
    }


async def test_login_that_never_finishes_times_out_alone() -> None:
    """A hanging login fails with 'timed out' at login_timeout while the others finish."""
    stuck = host(A2, "us-east-1")
    plan = plan_for(A1, A2, A3, host(A1, "eu-west-1"))
    runner = FakeRunner(hang=[stuck], default_delay=0.01)

    started = anyio.current_time()
    results = await run(plan, runner=runner, login_timeout=0.2)
    elapsed = anyio.current_time() - started

    outcome = {h: (r.status, r.error) for h, r in by_host(results).items()}
    assert outcome == {
        host(A1, "us-east-1"): (Status.OK, None),
        stuck: (Status.FAILED, "timed out after 0.2s"),
        host(A3, "us-east-1"): (Status.OK, None),
        host(A1, "eu-west-1"): (Status.OK, None),
    }
    assert 0.2 <= elapsed < GENEROUS / 2
    assert runner.active == 0


async def test_waiting_for_a_job_slot_does_not_count_against_the_timeout() -> None:
    """With one job slot, queued logins wait their turn instead of timing out."""
    plan = plan_for(A1, A2, A3, host(A1, "eu-west-1"))
    runner = FakeRunner(default_delay=0.1)

    # One at a time the four take 0.4s, well past the 0.25s each one is allowed.
    results = await run(plan, runner=runner, jobs=1, login_timeout=0.25)

    assert [r.status for r in results] == [Status.OK] * 4
    assert runner.peak == 1


MANY = [f"{n:012d}" for n in range(1, 8)] + [host(f"{n:012d}", "eu-west-1") for n in range(1, 4)]


@pytest.mark.parametrize("jobs", [1, 2, 3, 9])
async def test_jobs_bounds_peak_concurrency_exactly(jobs: int) -> None:
    """--jobs N lets exactly N logins run at once when there are more registries than N."""
    plan = plan_for(*MANY)
    assert len(plan.targets) == 10 > jobs
    runner = FakeRunner(gate=jobs, default_delay=0.01)

    results = await run(plan, runner=runner, jobs=jobs)

    assert runner.peak == jobs
    assert [r.status for r in results] == [Status.OK] * 10


@pytest.mark.parametrize("jobs", [10, 64])
async def test_all_registries_log_in_concurrently_when_jobs_allow(jobs: int) -> None:
    """With jobs >= registries every login is in flight at the same time, across regions too."""
    plan = plan_for(*MANY)
    # Each login waits until all ten are inside; run sequentially they would each time out.
    runner = FakeRunner(gate=10)

    results = await run(plan, runner=runner, jobs=jobs, login_timeout=GENEROUS)

    assert runner.peak == 10
    assert [r.status for r in results] == [Status.OK] * 10


async def test_results_come_back_in_plan_order() -> None:
    """Results follow the plan, not the order in which logins finished."""
    plan = plan_for(A1, A2, host(A3, "eu-west-1"), A3)
    planned = hosts(plan.targets)
    # The first registries finish last.
    runner = FakeRunner(delay={h: 0.04 * (len(planned) - i) for i, h in enumerate(planned)})

    results = await run(plan, runner=runner)

    assert [r.target for r in results] == list(plan.targets)
    assert runner.finished == list(reversed(planned))  # so the order above was not an accident


# ---------------------------------------------------------------------------------------------
# run_plan: what the reporter hears
# ---------------------------------------------------------------------------------------------


async def test_reporter_sees_every_state_and_every_result() -> None:
    """start gets the plan, rows walk waiting -> token -> login -> ok/failed, finish gets all."""
    bad = host(A2, "us-east-1")
    plan = plan_for(A1, A2, host(A3, "eu-west-1"))
    reporter = RecordingReporter()
    runner = FakeRunner(fail={bad: LoginError("nope")})
    tokens = FakeTokens(fail={"eu-west-1": TokenError("no token")})

    results = await run(plan, tokens, runner, reporter)

    assert reporter.started == [plan]
    assert reporter.finished == [results]
    assert len(results) == len(plan.targets)
    login_path = [Status.WAITING, Status.TOKEN, Status.LOGIN]
    states = {t.label: reporter.states(t) for t in plan.targets}
    assert states == {
        host(A1, "us-east-1"): [*login_path, Status.OK],
        bad: [*login_path, Status.FAILED],
        host(A3, "eu-west-1"): [Status.WAITING, Status.TOKEN, Status.FAILED],
    }
    last_update = {u.target: u for u in reporter.updates}
    assert [last_update[t] for t in plan.targets] == results


async def test_reporter_sees_the_resolved_default_registry() -> None:
    """The default registry's final update carries the registry resolved from its account."""
    reporter = RecordingReporter()
    plan = plan_for(region="us-east-2")

    (result,) = await run(plan, reporter=reporter)

    final = reporter.updates[-1]
    assert final.status is Status.OK
    assert final.registry == Registry(
        host=host(OWN_ACCOUNT, "us-east-2"), account=OWN_ACCOUNT, region="us-east-2"
    )
    assert final == result


async def test_seconds_come_from_the_injected_clock() -> None:
    """Elapsed seconds are measured with the clock passed in, from the start of the run."""
    ticks = iter(range(100))

    def clock() -> float:
        return float(next(ticks))

    results = await run_plan(
        plan_for(A1),
        FakeTokens(),
        FakeRunner(),
        RecordingReporter(),
        jobs=1,
        login_timeout=GENEROUS,
        clock=clock,
    )

    (result,) = results
    assert result.status is Status.OK
    assert result.seconds > 0
    assert math.isclose(result.seconds, float(int(result.seconds)))


# ---------------------------------------------------------------------------------------------
# run_logouts
# ---------------------------------------------------------------------------------------------


class FakeLogouts:
    """A logout runner: records the hosts, fails or hangs some."""

    def __init__(
        self, *, fail: Mapping[str, Exception] | None = None, hang: Iterable[str] = ()
    ) -> None:
        self.fail = dict(fail or {})
        self.hang = frozenset(hang)
        self.hosts: list[str] = []

    async def logout(self, host: str) -> None:
        self.hosts.append(host)
        if host in self.hang:
            await anyio.sleep_forever()
        if host in self.fail:
            raise self.fail[host]


async def test_a_logout_walks_its_own_states_and_never_a_logins() -> None:
    """Logout rows go waiting -> logout -> ok/failed (never "login"); a profile's own
    registry is logged out once its account is known, without a token."""
    bad = host(A2, "us-east-1")
    plan = Plan(targets=plan_for(A1, A2).targets + plan_for().targets, partitions=PARTITIONS)
    reporter = RecordingReporter()
    tokens = FakeTokens()
    runner = FakeLogouts(fail={bad: LoginError("nope")})

    with anyio.fail_after(GENEROUS):
        results = await run_logouts(plan, tokens, runner, reporter, jobs=4, logout_timeout=GENEROUS)

    assert tokens.token_calls == []
    states = {t.label: reporter.states(t) for t in plan.targets}
    own = f"{PROFILE}'s own registry in us-east-1"
    assert states == {
        host(A1, "us-east-1"): [Status.WAITING, Status.LOGOUT, Status.OK],
        bad: [Status.WAITING, Status.LOGOUT, Status.FAILED],
        own: [Status.WAITING, Status.LOGOUT, Status.OK],
    }
    assert sorted(runner.hosts) == sorted(
        [host(A1, "us-east-1"), bad, host(OWN_ACCOUNT, "us-east-1")]
    )
    assert [r.status for r in results] == [Status.OK, Status.FAILED, Status.OK]


async def test_a_hanging_logout_fails_at_its_timeout_and_the_others_finish() -> None:
    """``logout_timeout`` bounds each logout: the hanging one fails with it, the others are done."""
    stuck = host(A1, "us-east-1")
    plan = plan_for(A1, A2)

    with anyio.fail_after(GENEROUS):
        results = await run_logouts(
            plan,
            FakeTokens(),
            FakeLogouts(hang=[stuck]),
            RecordingReporter(),
            jobs=4,
            logout_timeout=0.2,
        )

    got = by_host(results)
    assert got[stuck].status is Status.FAILED
    assert got[stuck].error == "timed out after 0.2s"
    assert got[host(A2, "us-east-1")].status is Status.OK


class _Surprise(Exception):
    """None of our errors: what a bug or a library's surprise raises."""


async def test_an_unexpected_login_exception_fails_only_that_row() -> None:
    """A runner's exception that is none of ours is that registry's one-line failure,
    sanitized (the password and control characters gone); the others log in."""
    bad = host(A2, "us-east-1")
    secret = password("us-east-1")
    runner = FakeRunner(fail={bad: _Surprise(f"odd\x1b[2J state near {secret}\nline two")})

    results = await run(plan_for(A1, A2, A3), runner=runner)

    got = by_host(results)
    assert got[bad].status is Status.FAILED
    assert got[bad].error == (
        "unexpected error: _Surprise: odd[2J state near <redacted> line two (--debug shows where)"
    )
    assert [got[h].status for h in (host(A1, "us-east-1"), host(A3, "us-east-1"))] == [
        Status.OK,
        Status.OK,
    ]


async def test_an_unexpected_logout_exception_fails_only_that_row() -> None:
    """The same for a logout runner: the surprise is its row, the other logout is done."""
    bad = host(A1, "us-east-1")
    runner = FakeLogouts(fail={bad: _Surprise("odd")})

    with anyio.fail_after(GENEROUS):
        results = await run_logouts(
            plan_for(A1, A2), FakeTokens(), runner, RecordingReporter(), jobs=4, logout_timeout=1
        )

    got = by_host(results)
    assert got[bad].error == "unexpected error: _Surprise: odd (--debug shows where)"
    assert got[host(A2, "us-east-1")].status is Status.OK
