"""What the user sees: a live rich table, plain lines, or one JSON document.

The core only calls ``start``/``update``/``finish``; rich is imported only
when a live table is actually shown.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from runas_async.auth.freshness import EcrLogin, time_left
from runas_async.core.models import LoginResult, Registry, Status, Target, TokenKey
from runas_async.core.sanitize import redact, shorten_middle, strip_controls

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

    from runas_async.core.plan import Plan


def _safe(text: str) -> str:
    """Outside text (a profile name from a config file, an error) as every output shows it:
    credentials redacted, control and bidi characters gone (core/sanitize.py). Errors come
    cleaned from where they were made; this is the last guard, and the one for names."""
    return strip_controls(redact(text))


def result_record(result: LoginResult) -> dict[str, Any]:
    """One entry of the JSON document."""
    registry = result.registry or result.target.registry
    return {
        "registry": registry.host if registry else None,
        "account": registry.account if registry else None,
        "region": result.target.key.region,
        "profile": _safe(result.target.key.profile),
        "status": result.status.value,
        "error": _safe(result.error or "") if result.status is Status.FAILED else None,
        "seconds": round(result.seconds, 3),
    } | ({} if result.expires_in is None else {"expires_in": round(result.expires_in)})


def plan_records(plan: Plan) -> list[dict[str, Any]]:
    """The JSON entries of a dry run: every registry with the token request serving it."""
    records = []
    for target in plan.targets:
        record = result_record(LoginResult(target=target, status=Status.PLANNED))
        record["token_request"] = {
            "profile": target.key.profile,
            "region": target.key.region,
        }
        records.append(record)
    return records


def render_plan(plan: Plan, output: str, stream: TextIO, *, logout: bool = False) -> None:
    """Print a dry run's plan (for logout: no token requests)."""
    if output == "json":
        records = plan_records(plan)
        if logout:
            for record in records:
                del record["token_request"]
        json.dump({"results": records}, stream, indent=2)
        stream.write("\n")
        return
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


class PlainReporter:
    """One line per registry as it finishes; for logs and pipes."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def start(self, plan: Plan) -> None:
        pass

    def update(self, result: LoginResult) -> None:
        if not result.status.done:
            return
        rec = result_record(result)
        where = f"(profile {rec['profile']}, region {rec['region']}, {result.seconds:.2f}s)"
        name = rec["registry"] or _safe(result.target.label)
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


class JsonReporter:
    """Exactly one JSON document on the stream, at the end."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def start(self, plan: Plan) -> None:
        pass

    def update(self, result: LoginResult) -> None:
        pass

    def finish(self, results: Sequence[LoginResult]) -> None:
        json.dump({"results": [result_record(r) for r in results]}, self.stream, indent=2)
        self.stream.write("\n")
        self.stream.flush()


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
            host = host if registry else _safe(host)
            rows.append(Row(host, registry, _safe(target.key.profile), label, style, shown))
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
            host = registry.host if registry else _safe(result.target.label)
            self.console.print(Text.assemble(("failed", "bold red"), "  ", host), overflow="fold")
            reason = Text(_safe(result.error or "unknown error"), overflow="fold")
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


# --- outputs that carry the logins, and CI summaries ---------------------------------------


def dockerconfigjson(secrets: Mapping[str, tuple[str, str]]) -> str:
    """``{"auths": {HOST: {"username", "password", "auth"}}}``: what a Kubernetes
    ``kubernetes.io/dockerconfigjson`` Secret holds (as ``kubectl create secret
    docker-registry`` writes it). Secrets by design: this output exists to carry them."""
    auths = {
        host: {
            "username": username,
            "password": password,
            "auth": base64.b64encode(f"{username}:{password}".encode()).decode(),
        }
        for host, (username, password) in sorted(secrets.items())
    }
    return json.dumps({"auths": auths}, indent=2) + "\n"


def k8s_secrets(name: str, namespaces: Sequence[str], document: str) -> str:
    """A ``List`` of one Secret per namespace (none: the kubeconfig's), holding ``document``
    as ``.dockerconfigjson``; JSON, which ``kubectl apply -f -`` reads as it reads YAML."""
    data = base64.b64encode(document.encode()).decode()
    items = []
    for namespace in namespaces or (None,):
        metadata: dict[str, Any] = {"name": name}
        if namespace is not None:
            metadata["namespace"] = namespace
        items.append(
            {
                "kind": "Secret",
                "apiVersion": "v1",
                "metadata": metadata,
                "data": {".dockerconfigjson": data},
                "type": "kubernetes.io/dockerconfigjson",
            }
        )
    return json.dumps({"kind": "List", "apiVersion": "v1", "items": items}, indent=2) + "\n"


def github_summary(results: Sequence[LoginResult]) -> str:
    """A markdown table of registries, status and time, for ``$GITHUB_STEP_SUMMARY``."""
    lines = ["| registry | profile | status | seconds |", "| --- | --- | --- | --- |"]
    for result in results:
        rec = result_record(result)
        name = (rec["registry"] or _safe(result.target.label)).replace("`", "'").replace("|", "\\|")
        status = rec["status"] if not rec["error"] else f"{rec['status']}: {rec['error']}"
        cells = (f"`{name}`", _markdown(rec["profile"]), _markdown(status))
        lines.append(f"| {' | '.join(cells)} | {rec['seconds']:.2f} |")
    ok = len(_hosts(results, Status.OK, Status.FRESH))
    return "\n".join([f"### ECR logins: {ok} of {len(results)}", "", *lines, "", ""])


def _markdown(text: str) -> str:
    """``text`` as one cell of a Markdown table: ``|`` cannot end it, ``<`` starts no tag."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;")


def github_output(results: Sequence[LoginResult]) -> str:
    """For ``$GITHUB_OUTPUT``: ``registries=HOST,HOST`` (every registry in force, the ones
    ``--renew-before`` found fresh too) and ``renewed=HOST,HOST`` (logged in by this run)."""
    in_force = ",".join(_hosts(results, Status.OK, Status.FRESH))
    return f"registries={in_force}\nrenewed={','.join(_hosts(results, Status.OK))}\n"


def _hosts(results: Sequence[LoginResult], *statuses: Status) -> list[str]:
    return [
        registry.host
        for result in results
        if result.status in statuses and (registry := result.registry or result.target.registry)
    ]


def _left(result: LoginResult) -> str:
    return "" if result.expires_in is None else f"{time_left(result.expires_in)} left"


def status_record(row: EcrLogin) -> dict[str, Any]:
    """One entry of ``ecr status -o json``."""
    record = row.record
    return {
        "registry": row.host,
        "where": None if row.place is None else row.place.store,
        "helper": None if row.place is None else row.place.helper,
        "ours": record is not None,
        "profile": None if record is None else record.profile,
        "client": None if record is None else record.client,
        "state": row.freshness.value,
        "expires_at": None if record is None else record.expires_at,
        "expires_in": None if row.seconds_left is None else round(row.seconds_left),
    }


def render_status(rows: Sequence[EcrLogin], output: str, stream: TextIO) -> None:
    """``ecr status``: one JSON document, or one aligned line per registry."""
    if output == "json":
        json.dump({"registries": [status_record(r) for r in rows]}, stream, indent=2)
        stream.write("\n")
    else:
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
    stream.flush()


_HELPER_ROW = "runas-async helper"


def _status_who(row: EcrLogin) -> str:
    """Who logged a status row in: runas-async (with the profile), its credential helper
    (credHelpers sends the registry to runas-async), or someone else."""
    from runas_async.auth.helpercache import HELPER

    helper = row.place is not None and row.place.helper == HELPER
    who = _HELPER_ROW if helper else "runas-async"
    if row.record is not None:
        return f"{who} ({row.record.profile})"
    return who if helper else "(not runas-async)"
