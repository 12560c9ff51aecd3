"""What the user sees: one JSON document, plain lines, a dry-run plan and the live rich table."""

from __future__ import annotations

import io
import json
import re
import threading
from typing import Any

import pytest
from rich.console import Console

from runas_async.cli.report import JsonReporter, LiveTableReporter, PlainReporter, render_plan
from runas_async.core.endpoints import parse_endpoint
from runas_async.core.errors import LoginError
from runas_async.core.models import LoginResult, Registry, Status, Target, TokenKey
from runas_async.core.partitions import load_partitions
from runas_async.core.plan import LoginSpec, Plan, plan_logins
from runas_async.engine import run_plan
from tests.test_orchestrate import FakeRunner, FakeTokens, hosts

PARTITIONS = load_partitions()
RECORD_KEYS = {"registry", "account", "region", "profile", "status", "error", "seconds"}
A1 = "111111111111"
A2 = "222222222222"
H1 = f"{A1}.dkr.ecr.us-east-1.amazonaws.com"
H2 = f"{A2}.dkr.ecr.eu-west-1.amazonaws.com"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

OK_TARGET = Target(TokenKey("dev", "us-east-1"), Registry(H1, A1, "us-east-1"))
BAD_TARGET = Target(TokenKey("dev", "eu-west-1"), Registry(H2, A2, "eu-west-1"))
DEFAULT_TARGET = Target(TokenKey("ops", "us-east-2"), None)
ALL_STATES_BUT_DONE = [
    Status.PLANNED,
    Status.WAITING,
    Status.TOKEN,
    Status.LOGIN,
    Status.LOGOUT,
]


def plan_of(*targets: Target) -> Plan:
    return Plan(targets=targets, partitions=PARTITIONS)


def ok(target: Target, seconds: float = 0.5) -> LoginResult:
    return LoginResult(target=target, status=Status.OK, seconds=seconds)


def failed(target: Target, error: str, seconds: float = 1.25) -> LoginResult:
    return LoginResult(target=target, status=Status.FAILED, error=error, seconds=seconds)


# ---------------------------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------------------------


def test_json_reporter_writes_one_document_only_at_finish() -> None:
    """start and update write nothing; finish writes exactly one JSON document with every row."""
    stream = io.StringIO()
    reporter = JsonReporter(stream)
    results = [ok(OK_TARGET), failed(BAD_TARGET, "docker login: 401 Unauthorized")]

    reporter.start(plan_of(OK_TARGET, BAD_TARGET))
    for status in ALL_STATES_BUT_DONE:
        reporter.update(LoginResult(target=OK_TARGET, status=status))
    reporter.update(results[0])
    assert stream.getvalue() == ""
    reporter.finish(results)

    document = json.loads(stream.getvalue())  # raises on trailing data: one document only
    assert document == {
        "results": [
            {
                "registry": H1,
                "account": A1,
                "region": "us-east-1",
                "profile": "dev",
                "status": "ok",
                "error": None,
                "seconds": 0.5,
            },
            {
                "registry": H2,
                "account": A2,
                "region": "eu-west-1",
                "profile": "dev",
                "status": "failed",
                "error": "docker login: 401 Unauthorized",
                "seconds": 1.25,
            },
        ]
    }


def test_json_error_is_null_unless_failed() -> None:
    """An ok row reports error null even if the result carried a stale message."""
    stream = io.StringIO()

    JsonReporter(stream).finish(
        [LoginResult(target=OK_TARGET, status=Status.OK, error="stale", seconds=0.1234567)]
    )

    (record,) = json.loads(stream.getvalue())["results"]
    assert record["error"] is None
    assert record["status"] == "ok"
    assert record["seconds"] == 0.123


async def test_json_reporter_after_a_real_run() -> None:
    """Driven by run_plan, the document has one record per registry with the documented keys."""
    endpoints = [parse_endpoint(raw, PARTITIONS) for raw in (A1, H2, A2)]
    plan = plan_logins([LoginSpec("dev", "us-east-1", tuple(endpoints))], PARTITIONS)
    stream = io.StringIO()
    bad = f"{A2}.dkr.ecr.us-east-1.amazonaws.com"
    await run_plan(
        plan,
        FakeTokens(),
        FakeRunner(fail={bad: LoginError("denied")}),
        JsonReporter(stream),
        jobs=4,
        login_timeout=5,
    )

    records: list[dict[str, Any]] = json.loads(stream.getvalue())["results"]
    assert [set(r) for r in records] == [RECORD_KEYS] * 3
    assert [(r["registry"], r["status"], r["error"]) for r in records] == [
        (H1, "ok", None),
        (H2, "ok", None),
        (bad, "failed", "denied"),
    ]
    assert all(isinstance(r["seconds"], float) and r["seconds"] >= 0 for r in records)


# ---------------------------------------------------------------------------------------------
# Dry-run plan
# ---------------------------------------------------------------------------------------------


def test_render_plan_json_lists_planned_rows_and_their_token_requests() -> None:
    """The dry-run document says 'planned', leaves a default registry's account null, and names
    the token request serving each row."""
    stream = io.StringIO()

    render_plan(plan_of(DEFAULT_TARGET, OK_TARGET), "json", stream)

    assert json.loads(stream.getvalue()) == {
        "results": [
            {
                "registry": None,
                "account": None,
                "region": "us-east-2",
                "profile": "ops",
                "status": "planned",
                "error": None,
                "seconds": 0.0,
                "token_request": {"profile": "ops", "region": "us-east-2"},
            },
            {
                "registry": H1,
                "account": A1,
                "region": "us-east-1",
                "profile": "dev",
                "status": "planned",
                "error": None,
                "seconds": 0.0,
                "token_request": {"profile": "dev", "region": "us-east-1"},
            },
        ]
    }


@pytest.mark.parametrize(
    ("targets", "summary"),
    [
        pytest.param((OK_TARGET,), "1 registry, 1 token request", id="one"),
        pytest.param((OK_TARGET, BAD_TARGET), "2 registries, 2 token requests", id="two-regions"),
        pytest.param(
            (OK_TARGET, Target(OK_TARGET.key, Registry(f"{A2}.x", A2, "us-east-1"))),
            "2 registries, 1 token request",
            id="shared-token",
        ),
    ],
)
def test_render_plan_text(targets: tuple[Target, ...], summary: str) -> None:
    """The text plan has a line per registry and a count of registries and token requests."""
    stream = io.StringIO()

    render_plan(plan_of(*targets), "text", stream)

    lines = stream.getvalue().splitlines()
    assert len(lines) == len(targets) + 1
    for line, target in zip(lines, targets, strict=False):
        assert line.startswith(f"planned {target.label} ")
        assert f"as {target.key.profile} in {target.key.region}" in line
    assert lines[-1] == summary


def test_render_plan_text_default_registry_account_from_sts() -> None:
    """The profile's own registry is shown by its label, with its account still to come."""
    stream = io.StringIO()

    render_plan(plan_of(DEFAULT_TARGET), "text", stream)

    first = stream.getvalue().splitlines()[0]
    assert first.startswith("planned ops's own registry in us-east-2 ")
    assert "account (from STS)" in first


# ---------------------------------------------------------------------------------------------
# Plain lines
# ---------------------------------------------------------------------------------------------


def test_plain_reporter_prints_only_finished_rows() -> None:
    """Intermediate states print nothing; each finished registry prints exactly one line."""
    stream = io.StringIO()
    reporter = PlainReporter(stream)

    reporter.start(plan_of(OK_TARGET, BAD_TARGET))
    for target in (OK_TARGET, BAD_TARGET):
        for status in ALL_STATES_BUT_DONE:
            reporter.update(LoginResult(target=target, status=status))
    assert stream.getvalue() == ""

    reporter.update(ok(OK_TARGET))
    reporter.update(failed(BAD_TARGET, "GetAuthorizationToken failed: AccessDenied"))
    reporter.finish([ok(OK_TARGET), failed(BAD_TARGET, "x")])

    assert stream.getvalue().splitlines() == [
        f"ok      {H1} (profile dev, region us-east-1, 0.50s)",
        f"failed  {H2} (profile dev, region eu-west-1, 1.25s): "
        "GetAuthorizationToken failed: AccessDenied",
    ]


def test_plain_reporter_names_an_unresolved_default_registry() -> None:
    """A default registry that failed before its account was known is named by its label."""
    stream = io.StringIO()

    PlainReporter(stream).update(failed(DEFAULT_TARGET, "no credentials"))

    assert stream.getvalue() == (
        "failed  ops's own registry in us-east-2 (profile ops, region us-east-2, 1.25s): "
        "no credentials\n"
    )


async def test_plain_reporter_after_a_real_run() -> None:
    """Driven by run_plan, the plain output is one line per registry, nothing more."""
    endpoints = [parse_endpoint(raw, PARTITIONS) for raw in (A1, A2, H2)]
    plan = plan_logins([LoginSpec("dev", "us-east-1", tuple(endpoints))], PARTITIONS)
    stream = io.StringIO()

    await run_plan(plan, FakeTokens(), FakeRunner(), PlainReporter(stream), jobs=2, login_timeout=5)

    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    assert all(line.startswith("ok      ") for line in lines)
    assert {line.split()[1] for line in lines} == set(hosts(plan.targets))


# ---------------------------------------------------------------------------------------------
# Live table
# ---------------------------------------------------------------------------------------------


def new_console() -> tuple[Console, io.StringIO]:
    stream = io.StringIO()
    return Console(file=stream, force_terminal=True, width=200), stream


def final_frame(output: str) -> list[str]:
    """The lines after the header of the last table drawn, without colours or cursor moves."""
    plain = ANSI.sub("", output).replace("\r", "")
    header = [m.end() for m in re.finditer(r"(?m)^registry .*$", plain)][-1]
    return [line.rstrip() for line in plain[header + 1 :].splitlines()]


def row_cells(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def test_live_table_shows_a_row_per_registry_then_the_failures_in_full() -> None:
    """The table left on screen has one row per registry (host, profile, state, time); each
    failure is then listed with its full host and reason, then the summary."""
    console, stream = new_console()
    reporter = LiveTableReporter(console)
    error = "GetAuthorizationToken failed: AccessDenied"
    results = [ok(OK_TARGET), failed(BAD_TARGET, error), failed(DEFAULT_TARGET, "no credentials")]

    reporter.start(plan_of(OK_TARGET, BAD_TARGET, DEFAULT_TARGET))
    for target in (OK_TARGET, BAD_TARGET, DEFAULT_TARGET):
        reporter.update(LoginResult(target=target, status=Status.WAITING))
        reporter.update(LoginResult(target=target, status=Status.LOGIN))
    for result in results:
        reporter.update(result)
    reporter.finish(results)

    lines = final_frame(stream.getvalue())
    assert [row_cells(line) for line in lines[:3]] == [
        [H1, "dev", "ok", "0.5s"],
        [H2, "dev", "failed", "1.2s"],
        ["ops's own registry in us-east-2", "ops", "failed", "1.2s"],
    ]
    assert lines[3:] == [
        "",
        f"failed  {H2}",
        f"    {error}",
        "failed  ops's own registry in us-east-2",
        "    no credentials",
        "1 logged in, 2 failed",
    ]


@pytest.mark.parametrize(
    ("status", "note", "shown"),
    [
        pytest.param(Status.TOKEN, None, "waiting for token", id="token"),
        pytest.param(Status.TOKEN, "waiting for MFA code", "waiting for MFA code", id="mfa"),
        pytest.param(Status.TOKEN, "retrying 2/5", "retrying 2/5", id="retrying"),
        pytest.param(Status.LOGIN, "retrying 2/5", "logging in", id="note-only-while-token"),
    ],
)
def test_live_table_says_what_a_row_waits_for(status: Status, note: str | None, shown: str) -> None:
    """Before finishing, a row says what it waits for: its token, an MFA code, a retry."""
    console, stream = new_console()
    reporter = LiveTableReporter(console)

    reporter.start(plan_of(OK_TARGET))
    reporter.update(LoginResult(target=OK_TARGET, status=status))
    reporter.note(OK_TARGET.key, note)
    reporter.stop()

    (row,) = final_frame(stream.getvalue())
    assert row_cells(row)[:3] == [H1, "dev", shown]


def test_live_table_of_a_logout_speaks_of_logging_out() -> None:
    """`ecr logout`'s table says "logging out" while it runs and "N logged out" at the end."""
    console, stream = new_console()
    reporter = LiveTableReporter(console, logout=True)

    reporter.start(plan_of(OK_TARGET, BAD_TARGET))
    reporter.update(LoginResult(target=OK_TARGET, status=Status.LOGOUT))
    reporter.update(ok(BAD_TARGET))
    running = reporter.rows()
    reporter.finish([ok(OK_TARGET), ok(BAD_TARGET)])

    assert [(r.host, r.state) for r in running] == [(H1, "logging out"), (H2, "ok")]
    assert final_frame(stream.getvalue())[-1] == "2 logged out"


def test_live_table_stop_is_idempotent_and_ends_the_refresh_thread() -> None:
    """stop() can be called before start, after finish and twice; it leaves no thread running."""
    console, stream = new_console()
    reporter = LiveTableReporter(console)
    reporter.stop()  # before start: nothing to stop
    assert stream.getvalue() == ""

    before = set(threading.enumerate())
    reporter.start(plan_of(OK_TARGET))
    started = set(threading.enumerate()) - before
    reporter.update(ok(OK_TARGET))
    reporter.finish([ok(OK_TARGET)])
    shown = stream.getvalue()
    reporter.stop()
    reporter.stop()

    assert started, "the live table should refresh from a thread while running"
    for thread in started:  # rich signals its refresh thread to end but does not join it
        thread.join(timeout=2)
    assert not any(t.is_alive() for t in started), started
    assert stream.getvalue() == shown
    assert final_frame(shown)[-1] == "1 logged in"


async def test_live_table_after_a_real_run() -> None:
    """Driven by run_plan, every registry ends as a row in the final table."""
    endpoints = [parse_endpoint(raw, PARTITIONS) for raw in (A1, A2, H2)]
    plan = plan_logins([LoginSpec("dev", "us-east-1", tuple(endpoints))], PARTITIONS)
    console, stream = new_console()
    reporter = LiveTableReporter(console)

    try:
        await run_plan(plan, FakeTokens(), FakeRunner(), reporter, jobs=2, login_timeout=5)
    finally:
        reporter.stop()

    lines = final_frame(stream.getvalue())
    rows = [row_cells(line) for line in lines[:-1]]
    assert sorted((cells[0], cells[2]) for cells in rows) == sorted(
        (h, "ok") for h in hosts(plan.targets)
    )
    assert lines[-1] == "3 logged in"
