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
from typing import TYPE_CHECKING, Any, TextIO

from runas_async.models import LoginResult, Status, Target
from runas_async.state import StatusRow, time_left

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

    from runas_async.plan import Plan


def result_record(result: LoginResult) -> dict[str, Any]:
    """One entry of the JSON document."""
    registry = result.registry or result.target.registry
    return {
        "registry": registry.host if registry else None,
        "account": registry.account if registry else None,
        "region": result.target.key.region,
        "profile": result.target.key.profile,
        "status": result.status.value,
        "error": result.error if result.status is Status.FAILED else None,
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
        name = rec["registry"] or result.target.label
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
    Status.TOKEN: ("token…", "yellow"),
    Status.LOGIN: ("login…", "cyan"),
    Status.OK: ("ok", "bold green"),
    Status.FAILED: ("failed", "bold red"),
    Status.FRESH: ("fresh", "green"),
}


class LiveTableReporter:
    """A live rich table on a terminal, one row per registry."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._rows: dict[Target, LoginResult] = {}
        self._live: Live | None = None
        self._t0 = time.monotonic()

    def _table(self) -> RenderableType:
        from rich.table import Table

        table = Table(show_edge=False, header_style="bold")
        for col in ("registry", "profile", "region", "state", "elapsed", "error"):
            table.add_column(col, overflow="fold", no_wrap=col != "error")
        now = time.monotonic() - self._t0
        for target, result in self._rows.items():
            label, style = _STATE_STYLE[result.status]
            registry = result.registry or target.registry
            elapsed = result.seconds if result.status.done else now
            table.add_row(
                registry.host if registry else target.label,
                target.key.profile,
                target.key.region,
                f"[{style}]{label}[/]",
                f"{elapsed:.1f}s",
                result.error or _left(result),
            )
        return table

    def start(self, plan: Plan) -> None:
        from rich.live import Live

        self._t0 = time.monotonic()
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
        self.stop()
        ok = sum(r.status is Status.OK for r in results)
        fresh = sum(r.status is Status.FRESH for r in results)
        failed = len(results) - ok - fresh
        summary = f"{ok} logged in" + (f", {fresh} fresh" if fresh else "")
        if failed:
            summary += f", [bold red]{failed} failed[/]"
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
        name = rec["registry"] or result.target.label
        status = rec["status"] if not rec["error"] else f"{rec['status']}: {rec['error']}"
        status = status.replace("|", "\\|")
        lines.append(f"| `{name}` | {rec['profile']} | {status} | {rec['seconds']:.2f} |")
    ok = sum(r.status is Status.OK for r in results)
    return "\n".join([f"### ECR logins: {ok} of {len(results)}", "", *lines, "", ""])


def github_output(results: Sequence[LoginResult]) -> str:
    """``registries=HOST,HOST`` (the ones logged in) for ``$GITHUB_OUTPUT``."""
    hosts = [
        registry.host
        for result in results
        if result.status is Status.OK and (registry := result.registry or result.target.registry)
    ]
    return f"registries={','.join(hosts)}\n"


def _left(result: LoginResult) -> str:
    return "" if result.expires_in is None else f"{time_left(result.expires_in)} left"


def status_record(row: StatusRow) -> dict[str, Any]:
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


def render_status(rows: Sequence[StatusRow], output: str, stream: TextIO) -> None:
    """``ecr status``: one JSON document, or one aligned line per registry."""
    if output == "json":
        json.dump({"registries": [status_record(r) for r in rows]}, stream, indent=2)
        stream.write("\n")
    else:
        lines = [("registry", "where", "logged in by", "state")]
        for row in rows:
            who = f"runas-async ({row.record.profile})" if row.record else "(not runas-async)"
            state = row.freshness.value
            if row.seconds_left is not None and row.seconds_left > 0:
                state = f"{time_left(row.seconds_left)} left"
            where = "(nowhere)" if row.place is None else row.place.shown
            lines.append((row.host, where, who, state))
        widths = [max(len(line[i]) for line in lines) for i in range(3)]
        for line in lines:
            stream.write("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=False)))
            stream.write(f"  {line[3]}\n")
    stream.flush()
