"""The live table ``-o text`` shows on a terminal: one row per registry, laid out for the
terminal's width. rich is imported only when a table is actually shown.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from runas_async.auth.freshness import time_left
from runas_async.cli.formats._records import safe
from runas_async.core.models import LoginResult, Registry, Status, Target, TokenKey
from runas_async.core.sanitize import shorten_middle

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

    from runas_async.core.plan import Plan


_STATE_STYLE = {
    Status.PLANNED: ("planned", "dim"),
    Status.WAITING: ("waiting", "dim"),
    Status.TOKEN: ("waiting for token", "yellow"),
    Status.LOGIN: ("logging in", "cyan"),
    Status.LOGOUT: ("logging out", "cyan"),
    Status.OK: ("ok", "bold green"),
    Status.FAILED: ("failed", "bold red"),
    Status.FRESH: ("fresh", "green"),
}
"""Each state's word on the table (never cut) and its style."""

GAP = "  "
TIME_WIDTH = 6
"""``123.4s``; a longer time pushes the row wider rather than being cut."""
PROFILE_MIN = 10
"""A profile column wider than this is shortened (with an ellipsis) before any host is."""
ONE_LINE_FROM = 80
"""From this width on every row fits one line; below it a row may take two."""


@dataclass(frozen=True)
class Row:
    """One registry's row, as words: what the layout places."""

    host: str
    registry: Registry | None
    profile: str
    state: str
    style: str
    elapsed: str


def shorten_host(host: str, registry: Registry | None, width: int) -> str:
    """A registry host in ``width`` characters if it can be, shortened in the middle.

    The account and the region always stay (``123456789012…ap-southeast-2…``): a host
    becomes no shorter than that, whatever ``width`` says. Any other label (ECR Public, a
    profile's own registry before its account is known) keeps its start and its end.
    """
    if len(host) <= width:
        return host
    if registry is None or registry.account is None or registry.region not in host:
        return shorten_middle(host, max(width, 16))
    account, region = registry.account, registry.region
    after = host[host.index(region) + len(region) :]
    for form in (f"{account}…{region}{after}", f"{account}…{region}…"):
        if len(form) <= width:
            return form
    return f"{account}…{region}…"


def _cell(text: str, width: int) -> str:
    return text + " " * (width - len(text))


def layout(rows: Sequence[Row], width: int) -> list[list[tuple[str, str]]]:
    """The table's lines for a terminal ``width`` wide, each a list of (text, style) pieces.

    Columns: registry, profile, state, time. The state is never cut; the profile is shortened
    first, the host last and only in the middle (:func:`shorten_host`). From
    :data:`ONE_LINE_FROM` columns on a row is one line; below that, a row that does not fit
    puts its host on a line of its own, with the rest indented under it.
    """
    state_w = max([len("state"), *(len(r.state) for r in rows)])
    profile_w = max([len("profile"), *(len(r.profile) for r in rows)])
    host_w = max([len("registry"), *(len(r.host) for r in rows)])
    time_w = max([TIME_WIDTH, *(len(r.elapsed) for r in rows)])
    fixed = state_w + time_w + 3 * len(GAP)
    if host_w + profile_w + fixed > width:
        profile_w = min(profile_w, max(PROFILE_MIN, width - fixed - host_w))
    room = width - fixed - profile_w
    hosts = [shorten_host(r.host, r.registry, room) for r in rows]
    host_w = max([len("registry"), *(len(h) for h in hosts)])
    if host_w + profile_w + fixed <= width or width >= ONE_LINE_FROM:
        return _one_line(rows, hosts, (host_w, profile_w, state_w, time_w))
    return _two_lines(rows, width, (profile_w, state_w, time_w))


def _one_line(
    rows: Sequence[Row], hosts: Sequence[str], widths: tuple[int, int, int, int]
) -> list[list[tuple[str, str]]]:
    host_w, profile_w, state_w, time_w = widths
    head = GAP.join(
        (_cell("registry", host_w), _cell("profile", profile_w), _cell("state", state_w))
    )
    lines = [[(head + GAP + "time".rjust(time_w), "bold")]]
    for row, host in zip(rows, hosts, strict=True):
        lines.append(
            [
                (_cell(host, host_w) + GAP, ""),
                (_cell(shorten_middle(row.profile, profile_w), profile_w) + GAP, ""),
                (_cell(row.state, state_w), row.style),
                (GAP + row.elapsed.rjust(time_w), "dim"),
            ]
        )
    return lines


INDENT = "    "


def _two_lines(
    rows: Sequence[Row], width: int, widths: tuple[int, int, int]
) -> list[list[tuple[str, str]]]:
    profile_w, state_w, time_w = widths
    profile_w = max(4, min(profile_w, width - len(INDENT) - state_w - time_w - 2 * len(GAP)))
    under = INDENT + _cell("profile", profile_w) + GAP + _cell("state", state_w) + GAP
    lines = [[("registry", "bold")], [(under + "time".rjust(time_w), "bold")]]
    for row in rows:
        lines.append([(shorten_host(row.host, row.registry, width), "")])
        lines.append(
            [
                (INDENT + _cell(shorten_middle(row.profile, profile_w), profile_w) + GAP, ""),
                (_cell(row.state, state_w), row.style),
                (GAP + row.elapsed.rjust(time_w), "dim"),
            ]
        )
    return lines


class LiveTableReporter:
    """A live table on a terminal, one row per registry, laid out for the terminal's width.

    When the run ends, the table stays as it last stood and every failed registry is listed
    under it with its full host and its full reason.
    """

    def __init__(self, console: Console, *, logout: bool = False, defer: bool = False) -> None:
        self.console = console
        self.logout = logout
        self._defer = defer
        """Leave the screen alone at :meth:`start` until :meth:`begin` (the engine calls it
        once the first request has left: drawing takes about 15 ms of the event loop)."""
        self._begun = False
        self._rows: dict[Target, LoginResult] = {}
        self._notes: dict[TokenKey | str, str] = {}
        self._live: Live | None = None
        self._t0 = time.monotonic()

    def note(self, key: TokenKey | str, text: str | None) -> None:
        """What the token request of ``key`` (or every one of a profile, by its name) is
        waiting for now ("retrying 2/5", "waiting for MFA code"): shown instead of "waiting
        for token" on its rows. None clears it."""
        if text is None:
            self._notes.pop(key, None)
        else:
            self._notes[key] = text

    def rows(self) -> list[Row]:
        """The rows as they stand."""
        now = time.monotonic() - self._t0
        rows = []
        for target, result in self._rows.items():
            label, style = _STATE_STYLE[result.status]
            if result.status is Status.TOKEN:
                label = self._notes.get(target.key, self._notes.get(target.key.profile, label))
            registry = result.registry or target.registry
            elapsed = result.seconds if result.status.done else now
            host = registry.host if registry else target.label
            shown = _left(result) if result.status is Status.FRESH else f"{elapsed:.1f}s"
            host = host if registry else safe(host)
            rows.append(Row(host, registry, safe(target.key.profile), label, style, shown))
        return rows

    def _table(self) -> RenderableType:
        from rich.console import Group
        from rich.text import Text

        lines = layout(self.rows(), self.console.width)
        return Group(*(Text.assemble(*line, no_wrap=True, overflow="ignore") for line in lines))

    def start(self, plan: Plan) -> None:
        self._t0 = time.monotonic()
        if not self._defer:
            self.begin()

    def begin(self) -> None:
        """Put the table on screen (once)."""
        if self._begun:
            return
        self._begun = True
        from rich.live import Live

        self._live = Live(
            get_renderable=self._table,
            console=self.console,
            refresh_per_second=12,
            transient=False,
        )
        self._live.start()

    def update(self, result: LoginResult) -> None:
        self._rows[result.target] = result

    def finish(self, results: Sequence[LoginResult]) -> None:
        from rich.padding import Padding
        from rich.text import Text

        self.begin()  # a run that ends before its first request still shows its table
        self.stop()
        failures = [r for r in results if r.status is Status.FAILED]
        if failures:
            self.console.print()
        for result in failures:
            registry = result.registry or result.target.registry
            host = registry.host if registry else safe(result.target.label)
            self.console.print(Text.assemble(("failed", "bold red"), "  ", host), overflow="fold")
            reason = Text(safe(result.error or "unknown error"), overflow="fold")
            self.console.print(Padding(reason, (0, 0, 0, len(INDENT))))
        ok = sum(r.status is Status.OK for r in results)
        fresh = sum(r.status is Status.FRESH for r in results)
        summary = Text(f"{ok} logged {'out' if self.logout else 'in'}")
        if fresh:
            summary.append(f", {fresh} fresh")
        if failures:
            summary.append(", ").append(f"{len(failures)} failed", "bold red")
        self.console.print(summary)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Take the table off the terminal while something else uses it (an MFA prompt)."""
        live = self._live
        if live is None:
            yield
            return
        live.stop()
        try:
            yield
        finally:
            live.start()

    def stop(self) -> None:
        """Leave the table as it stands (also on errors and Ctrl-C)."""
        if self._live is not None:
            self._live.stop()
            self._live = None


def _left(result: LoginResult) -> str:
    return "" if result.expires_in is None else f"{time_left(result.expires_in)} left"
