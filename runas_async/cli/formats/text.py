"""``-o text``: a live table on a terminal (table.py), one line per registry otherwise."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, TextIO

from runas_async.cli.formats._quiet import Quiet

if TYPE_CHECKING:
    from pathlib import Path

    from runas_async.auth.freshness import EcrLogin
    from runas_async.core.models import LoginResult
    from runas_async.core.plan import Plan
    from runas_async.engine import Reporter

DESCRIPTION = "one line per registry (a live table while a run goes on a terminal)"


def reporter(
    stream: TextIO, env: Mapping[str, str], *, logout: bool, live: bool, defer: bool
) -> Reporter:
    """The live table when ``stream`` is a terminal (and ``live``), else plain lines."""
    if live and stream.isatty() and env.get("TERM") != "dumb":
        from rich.console import Console

        from runas_async.cli.formats.table import LiveTableReporter

        # NO_COLOR (no-color.org) takes the colours away; bold stays, as rich does.
        no_color = bool(env.get("NO_COLOR"))
        console = Console(file=stream, stderr=False, no_color=no_color)
        return LiveTableReporter(console, logout=logout, defer=defer)
    return PlainReporter(stream)


def plan(plan: Plan, stream: TextIO, *, logout: bool) -> None:
    """One line per planned registry, and a count."""
    for target in plan.targets:
        registry = target.registry
        account = "(from STS)" if registry is None else registry.account or "(public)"
        line = f"planned {target.label}  account {account}  region {target.key.region}"
        if not logout:
            api = "ecr-public" if target.key.public else "ecr"
            line += f"  token: {api} GetAuthorizationToken as {target.key.profile}"
            line += f" in {target.key.region}"
        stream.write(line + "\n")
    if logout:
        n = len(plan.targets)
        stream.write(f"{n} registr{'y' if n == 1 else 'ies'} to log out of\n")
        return
    n_keys = len(plan.keys)
    stream.write(
        f"{len(plan.targets)} registr{'y' if len(plan.targets) == 1 else 'ies'}, "
        f"{n_keys} token request{'' if n_keys == 1 else 's'}\n"
    )


def status(rows: Sequence[EcrLogin], auth_file: Path, stream: TextIO) -> None:
    """One aligned line per registry."""
    from runas_async.auth.freshness import time_left

    lines = [("registry", "where", "logged in by", "state")]
    for row in rows:
        who, state = _status_who(row), row.freshness.value
        if row.seconds_left is not None and row.seconds_left > 0:
            state = f"{time_left(row.seconds_left)} left"
        elif who.startswith(_HELPER_ROW):
            state = "no token yet" if row.record is None else "expired, renewed at next pull"
        where = "(nowhere)" if row.place is None else row.place.shown
        lines.append((row.host, where, who, state))
    widths = [max(len(line[i]) for line in lines) for i in range(3)]
    for line in lines:
        stream.write("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=False)))
        stream.write(f"  {line[3]}\n")


_HELPER_ROW = "runas-async helper"


def _status_who(row: EcrLogin) -> str:
    """Who logged a status row in: runas-async (with the profile), its credential helper
    (credHelpers sends the registry to runas-async), or someone else."""
    from runas_async.core.clients import HELPER

    helper = row.place is not None and row.place.helper == HELPER
    who = _HELPER_ROW if helper else "runas-async"
    if row.record is not None:
        return f"{who} ({row.record.profile})"
    return who if helper else "(not runas-async)"


def error(line: str, stream: TextIO) -> None:
    """Nothing more: the line is on stderr."""


class PlainReporter(Quiet):
    """One line per registry as it finishes; for logs and pipes."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def start(self, plan: Plan) -> None:
        pass

    def update(self, result: LoginResult) -> None:
        if not result.status.done:
            return
        # Not before: the first updates (pending, started) come before the first request.
        from runas_async.auth.freshness import time_left
        from runas_async.cli.formats._records import result_record, safe
        from runas_async.core.models import Status

        rec = result_record(result)
        where = f"(profile {rec['profile']}, region {rec['region']}, {result.seconds:.2f}s)"
        name = rec["registry"] or safe(result.target.label)
        if result.status is Status.FRESH:
            left = time_left(result.expires_in or 0)
            self.stream.write(f"fresh   {name} (profile {rec['profile']}, {left} left)\n")
        elif result.status is Status.OK:
            self.stream.write(f"ok      {name} {where}\n")
        else:
            self.stream.write(f"failed  {name} {where}: {result.error}\n")
        self.stream.flush()

    def finish(self, results: Sequence[LoginResult]) -> None:
        pass
