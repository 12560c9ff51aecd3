"""Turn raw benchmark results into numbers, a markdown section and a chart."""

from __future__ import annotations

import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.measure import BASE, BUILTIN, JOBS1, RUNAS, SERIAL, region_of
from bench.world import hosts_for

START = "<!-- results:start -->"
END = "<!-- results:end -->"

TARGET_SCALING = 1.3
TARGET_BUILTIN_50 = 1.2
TARGET_BUILTIN_200 = 2.0
TARGET_SPEEDUP = 15.0
TARGET_FLOOR = 1.6
TARGET_HELP_MS = 150.0
TARGET_FIRST_CALL_MS = 250.0
# Issue 21: the time to one login.
TARGET_BUILTIN_1_S = 0.75
TARGET_BUILTIN_20_S = 0.85
TARGET_FIRST_REQUEST_MS = 380.0


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


@dataclass
class Cell:
    median: float
    low: float
    high: float
    count: int
    calls: dict[str, list[int]]
    first_aws: float
    first_request: float
    sts_done: float
    first_token: float
    last_token: float
    first_registry: float
    last_login: float


@dataclass
class Target:
    text: str
    value: str
    met: bool


@dataclass
class Summary:
    meta: Mapping[str, Any]
    ns: list[int]
    tools: list[str]
    cells: dict[tuple[str, int], Cell]
    floor: dict[str, float]
    startup: dict[str, float]
    wrap_ms: float
    first_call_ms: float
    imports: Mapping[str, Any]
    rss: Mapping[str, Any]
    debug: Mapping[str, Any]
    foreign_cpu: list[float] = field(default_factory=list)
    steal: list[float] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    first_request_ms: float = float("nan")
    renew_before: Mapping[str, Any] = field(default_factory=dict)

    def get(self, tool: str, n: int) -> Cell | None:
        return self.cells.get((tool, n))


def summarize(results: Mapping[str, Any]) -> Summary:
    meta = results["meta"]
    ns = [int(n) for n in meta["ns"]]
    tools = list(meta["tools"])
    cells: dict[tuple[str, int], Cell] = {}
    for tool in tools:
        for n in ns:
            runs = [r for r in results["runs"] if r["tool"] == tool and r["n"] == n]
            if not runs:
                continue
            seconds = [float(r["seconds"]) for r in runs]
            calls: dict[str, list[int]] = {}
            for r in runs:
                for op in set(calls) | set(r["calls"]):
                    calls.setdefault(op, []).append(int(r["calls"].get(op, 0)))

            def med(key: str, runs: list[dict[str, Any]] = runs) -> float:
                return _median([float(r[key]) for r in runs if r.get(key) is not None])

            cells[(tool, n)] = Cell(
                median=_median(seconds),
                low=min(seconds),
                high=max(seconds),
                count=len(seconds),
                calls={op: sorted(set(v)) for op, v in calls.items()},
                first_aws=med("first_aws"),
                first_request=med("first_request"),
                sts_done=med("sts_done"),
                first_token=med("first_token"),
                last_token=med("last_token"),
                first_registry=med("first_registry"),
                last_login=med("last_login"),
            )
    floors = results["floor"]
    floor = {
        "sts": _median([f["sts"] for f in floors]),
        "ecr": _median([f["ecr"] for f in floors]),
        "docker": _median([f["docker"] for f in floors]),
        "total": _median([f["sts"] + f["ecr"] + f["docker"] for f in floors]),
    }
    startup = {name: _median(v) * 1000 for name, v in results["startup"].items()}
    first_calls = [
        float(r["first_aws"]) * 1000
        for r in results["runs"]
        if r["tool"] in (RUNAS, JOBS1) and r.get("first_aws") is not None
    ]
    first_requests = [
        float(r["first_request"]) * 1000
        for r in results["runs"]
        if r["tool"] in (RUNAS, JOBS1, BUILTIN) and r.get("first_request") is not None
    ]
    summary = Summary(
        meta=meta,
        ns=ns,
        tools=tools,
        cells=cells,
        floor=floor,
        startup=startup,
        wrap_ms=startup.get("true", float("nan")),
        first_call_ms=_median(first_calls),
        first_request_ms=_median(first_requests) if first_requests else float("nan"),
        imports=results.get("imports", {}),
        rss=results.get("rss", {}),
        debug=results.get("debug", {}),
        foreign_cpu=sorted(float(r.get("foreign_cpu", 0.0)) for r in results["runs"]),
        steal=sorted(float(r["steal"]) for r in results["runs"] if "steal" in r),
        renew_before=results.get("renew_before", {}),
    )
    summary.targets = _targets(summary)
    return summary


def _targets(s: Summary) -> list[Target]:
    targets: list[Target] = []
    one, fifty, twenty = s.get(RUNAS, 1), s.get(RUNAS, 50), s.get(RUNAS, 20)
    if one and fifty:
        ratio = fifty.median / one.median
        targets.append(
            Target(
                f"runas-async at N=50 within {TARGET_SCALING}x of its N=1 time",
                f"{ratio:.2f}x ({fifty.median:.2f} s / {one.median:.2f} s)",
                ratio <= TARGET_SCALING,
            )
        )
    targets.extend(_builtin_targets(s))
    targets.extend(_one_login_targets(s))
    serial = s.get(SERIAL, 20)
    if serial and twenty:
        ratio = serial.median / twenty.median
        targets.append(
            Target(
                f"serial pipeline at N=20 at least {TARGET_SPEEDUP:g}x runas-async",
                f"{ratio:.1f}x ({serial.median:.2f} s / {twenty.median:.2f} s)",
                ratio >= TARGET_SPEEDUP,
            )
        )
    if twenty:
        ratio = twenty.median / s.floor["total"]
        targets.append(
            Target(
                f"runas-async at N=20 within {TARGET_FLOOR}x of the floor",
                f"{ratio:.2f}x ({twenty.median:.2f} s / {s.floor['total']:.2f} s)",
                ratio <= TARGET_FLOOR,
            )
        )
    for name in ("runas-async --help", "runas-async --version"):
        if name in s.startup:
            ms = s.startup[name]
            targets.append(
                Target(f"`{name}` under {TARGET_HELP_MS:g} ms", f"{ms:.0f} ms", ms < TARGET_HELP_MS)
            )
    if s.first_call_ms == s.first_call_ms:  # not NaN
        targets.append(
            Target(
                f"login path: at most {TARGET_FIRST_CALL_MS:g} ms before its first network call",
                f"{s.first_call_ms:.0f} ms (its connection to STS; the first request "
                f"bytes follow at {s.first_request_ms:.0f} ms)",
                s.first_call_ms <= TARGET_FIRST_CALL_MS,
            )
        )
    return targets


def _builtin_targets(s: Summary) -> list[Target]:
    """Issue 13: builtin at N=50 within 1.2x and at N=200 within 2x of its own N=1 time."""
    targets: list[Target] = []
    one = s.get(BUILTIN, 1)
    for n, bound in ((50, TARGET_BUILTIN_50), (200, TARGET_BUILTIN_200)):
        cell = s.get(BUILTIN, n)
        if one and cell:
            ratio = cell.median / one.median
            targets.append(
                Target(
                    f"builtin at N={n} within {bound:g}x of its N=1 time",
                    f"{ratio:.2f}x ({cell.median:.2f} s / {one.median:.2f} s)",
                    ratio <= bound,
                )
            )
    return targets


def _one_login_targets(s: Summary) -> list[Target]:
    """Issue 21: builtin N = 1 and N = 20 in absolute time, the first signed request, and
    docker N = 1 no slower than the baseline checkout (when one was timed beside)."""
    targets: list[Target] = []
    for n, bound in ((1, TARGET_BUILTIN_1_S), (20, TARGET_BUILTIN_20_S)):
        cell = s.get(BUILTIN, n)
        if cell:
            base = s.get(BUILTIN + BASE, n)
            was = f"; baseline {base.median:.2f} s" if base else ""
            targets.append(
                Target(
                    f"builtin at N={n} at most {bound:g} s",
                    f"{cell.median:.2f} s{was}",
                    cell.median <= bound,
                )
            )
    if s.first_request_ms == s.first_request_ms:  # not NaN
        targets.append(
            Target(
                f"the first signed AWS request leaves at most {TARGET_FIRST_REQUEST_MS:g} ms "
                "after start",
                f"{s.first_request_ms:.0f} ms",
                s.first_request_ms <= TARGET_FIRST_REQUEST_MS,
            )
        )
    now, base = s.get(RUNAS, 1), s.get(RUNAS + BASE, 1)
    if now and base:
        targets.append(
            Target(
                "docker (runas-async) at N=1 no slower than the baseline",
                f"{now.median:.2f} s against {base.median:.2f} s",
                now.median <= base.median,
            )
        )
    return targets


def _expected_calls(n: int) -> str:
    regions = len({region_of(h) for h in hosts_for(n)})
    return f"{regions} / 1"


def _calls(cell: Cell) -> str:
    def show(op: str) -> str:
        values = cell.calls.get(op, [0])
        return "-".join(str(v) for v in (values if len(values) <= 2 else [values[0], values[-1]]))

    return f"{show('GetAuthorizationToken')} / {show('AssumeRole')}"


def results_markdown(s: Summary, chart: str | None) -> str:
    m = s.meta
    mach = m["machine"]
    lines: list[str] = []
    add = lines.append
    add(
        f"Run {m['date']}, {m['runs']} timed runs per tool and N, alternating, one-way delay "
        f"**{m['delay_ms']:g} ms**; whole benchmark {m.get('duration_s', '?')} s. "
        f"Load average before/after: {m.get('loadavg_start')} / {m.get('loadavg_end')}."
    )
    add("")
    add(
        f"Machine: {mach['cpu']}, {mach['cores']} cores, {mach['memory']}, {mach['os']}, "
        f"kernel {mach['kernel']}; Python {mach['python']}; {mach['docker']}; "
        f"{mach['registry']}; awscli {mach['awscli']}; {mach['runas_async']} "
        f"(commit {mach.get('commit', '?')}, {mach.get('dirty', '?')} changed files in "
        "runas_async/)."
    )
    add("")
    if m["command"] == "python -m bench":
        add(f"Reproduce: `make bench` (that is, `{m['command']}`).")
    else:
        add(f"Reproduce: `{m['command']}` (`make bench` runs `python -m bench`).")
    if m.get("baseline_commit"):
        add("")
        add(
            f"The `@base` rows: the tree at commit {m['baseline_commit']}, timed in the same "
            "world, interleaved with this one (`--baseline`)."
        )
    add("")
    if s.foreign_cpu:
        noisy = sum(1 for x in s.foreign_cpu if x > 0.1)
        add(
            "Noise: other processes on the machine used a median "
            f"{_median(s.foreign_cpu):.2f} CPU-seconds per timed run (max "
            f"{s.foreign_cpu[-1]:.2f}; {noisy} of {len(s.foreign_cpu)} runs above 0.1)"
            + (
                f"; the hypervisor took a median {_median(s.steal):.2f} CPU-seconds per run "
                f"(steal; max {s.steal[-1]:.2f})."
                if s.steal
                else "."
            )
        )
        add("")
    if chart:
        add(f"![time against N]({chart})")
        add("")
    add("### Time to log in (median of the runs; min-max in brackets)")
    add("")
    header = "| N | " + " | ".join(s.tools) + " | serial / runas-async |"
    add(header)
    add("|" + " --- |" * (len(s.tools) + 2))
    for n in s.ns:
        row = [str(n)]
        for tool in s.tools:
            cell = s.get(tool, n)
            row.append(f"{cell.median:.2f} s ({cell.low:.2f}-{cell.high:.2f})" if cell else "-")
        serial, runas = s.get(SERIAL, n), s.get(RUNAS, n)
        row.append(f"{serial.median / runas.median:.1f}x" if serial and runas else "-")
        add("| " + " | ".join(row) + " |")
    add("")
    add("### Calls the servers saw per run (GetAuthorizationToken / AssumeRole)")
    add("")
    add("| N | registries over | expected for runas-async | " + " | ".join(s.tools) + " |")
    add("|" + " --- |" * (len(s.tools) + 3))
    for n in s.ns:
        hosts = hosts_for(n)
        spread = (
            f"{len({h.split('.')[0] for h in hosts})} accounts x "
            f"{len({region_of(h) for h in hosts})} regions"
        )
        row = [str(n), spread, _expected_calls(n)]
        for tool in s.tools:
            cell = s.get(tool, n)
            row.append(_calls(cell) if cell else "-")
        add("| " + " | ".join(row) + " |")
    add("")
    f = s.floor
    add("### The floor")
    add("")
    add(
        "One STS AssumeRole round trip + one ECR GetAuthorizationToken round trip (each on a "
        "new connection, from a process that has already imported botocore and built its "
        "clients) + one `docker login` on its own; medians, timed in the same run:"
    )
    add("")
    add(
        f"| AssumeRole | GetAuthorizationToken | docker login | floor |\n"
        f"| --- | --- | --- | --- |\n"
        f"| {f['sts'] * 1000:.0f} ms | {f['ecr'] * 1000:.0f} ms | {f['docker'] * 1000:.0f} ms "
        f"| **{f['total'] * 1000:.0f} ms** |"
    )
    add("")
    runas_ratios = [
        f"N={n}: {cell.median / f['total']:.2f}x"
        for n in s.ns
        if (cell := s.get(RUNAS, n)) is not None
    ]
    add("runas-async as a multiple of the floor: " + ", ".join(runas_ratios) + ".")
    add("")
    add("### Where runas-async's time goes (medians of the timed runs, from the proxy's log)")
    add("")
    add(
        "| tool | N | spawn to the first AWS connection | spawn to the first AWS request | "
        "STS: AssumeRole answered | ECR: first token / last token | "
        "first token to docker's first connection | logins: to the last registry response | "
        "after the logins: merge, exit | total |"
    )
    add("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")

    def ms(x: float) -> str:
        return f"{x * 1000:.0f} ms"

    for tool in (RUNAS, RUNAS + BASE, BUILTIN, BUILTIN + BASE):
        for n in s.ns:
            c = s.get(tool, n)
            if c is None:
                continue
            builtin = tool.startswith(BUILTIN)
            cols = [
                ms(c.first_aws),
                ms(c.first_request),
                ms(c.sts_done - c.first_request),
                f"{ms(c.first_token - c.sts_done)} / {ms(c.last_token - c.sts_done)}",
                # The built-in client's registry connections open at start-up: no docker.
                "-" if builtin else ms(c.first_registry - c.first_token),
                ms(c.last_login - (c.last_token if builtin else c.first_registry)),
                ms(c.median - c.last_login),
                ms(c.median),
            ]
            add(f"| {tool} | {n} | " + " | ".join(cols) + " |")
    add("")
    add(
        "Medians over the timed runs of milestones in the latency proxy's log, as durations "
        "from one milestone to the next (so they add up only roughly; the two start-up "
        "columns both count from spawn: the first connection is opened at start-up, the "
        "first request waits for the imports). Time starts when the "
        "command is spawned (`unshare` + `sh` + exec cost "
        f"{s.wrap_ms:.0f} ms for `true`). The proxy logs the moment it hands a response's "
        'bytes to the client, so "answered" is when the client had the response; '
        "docker's first connection is its HTTPS attempt, i.e. the first `docker login` has "
        "its password and has started. For `--client builtin` (no docker), the logins "
        "column counts from the last token to the last registry response."
    )
    if s.renew_before:
        r = s.renew_before
        add("")
        add(f"### `--renew-before`: {r['n']} registries, all fresh (median wall time)")
        add("")
        add("| run | median | min-max |")
        add("| --- | --- | --- |")
        add(
            f"| full login (every registry stale) | {_median(r['full']):.3f} s | "
            f"{min(r['full']):.3f}-{max(r['full']):.3f} s |"
        )
        add(
            f"| every registry fresh: no AWS call, no client (target < 0.15 s) | "
            f"**{_median(r['fresh']):.3f} s** | {min(r['fresh']):.3f}-{max(r['fresh']):.3f} s |"
        )
    add("")
    add("### Start-up (median wall time inside the namespace)")
    add("")
    add("| command | median |")
    add("| --- | --- |")
    for name, millis in s.startup.items():
        add(f"| `{name}` | {millis:.0f} ms |")
    add(
        "| `runas-async ecr login`: spawn to first network call (the first AWS connection) "
        f"| {s.first_call_ms:.0f} ms |"
    )
    add(
        "| `runas-async ecr login`: spawn to its first request (the first signed request "
        "leaving, after the TLS handshake) "
        f"| {s.first_request_ms:.0f} ms |"
    )
    add("")
    add(
        "`python -X importtime -m runas_async ...` (the run with the median total of 3; "
        "cumulative ms of the largest top-level imports):"
    )
    add("")
    for what, data in s.imports.items():
        heavy = ", ".join(
            f"{name} {ms:.0f} ms" if ms is not None else f"{name} no"
            for name, ms in data["heavy"].items()
        )
        top = ", ".join(f"{name} {ms:.0f}" for name, ms in data["top"][:8])
        add(f"- `{what}`: {data['total_ms']:.0f} ms of imports in all; top: {top}.")
        add(f"  Heavy modules imported: {heavy}.")
    add("")
    add("### Peak RSS of runas-async")
    add("")
    add("| N | runas-async process | largest child (`docker login`) |")
    add("| --- | --- | --- |")
    for count, rss in s.rss.items():
        own, child = rss["own_kib"] / 1024, rss["largest_child_kib"] / 1024
        add(f"| {count} | {own:.0f} MiB | {child:.0f} MiB |")
    add("")
    add("### Targets")
    add("")
    add("| target | measured | |")
    add("| --- | --- | --- |")
    for t in s.targets:
        add(f"| {t.text} | {t.value} | {'met' if t.met else '**missed**'} |")
    add("")
    if s.debug:
        add(
            f"<details><summary>One <code>--debug</code> run at N={s.debug['n']} "
            f"({s.debug['seconds']:.2f} s) with the proxy's connection log (ms from "
            "spawn; the debug log counts from its own import)</summary>"
        )
        add("")
        add("```")
        add(str(s.debug["stderr"]).rstrip())
        add("```")
        add("")
        add("```")
        events = list(s.debug["events"])
        last_down = {e.get("connection"): i for i, e in enumerate(events) if e["kind"] == "down"}
        for i, e in enumerate(events):
            if e["kind"] == "down" and last_down.get(e.get("connection")) != i:
                continue
            kind = "answered" if e["kind"] == "down" else e["kind"]
            conn = f"#{e['connection']}" if e.get("connection") is not None else ""
            add(f"{e['ms']:8.1f} ms  {kind:<8} {e['name']}{conn}")
        add("```")
        add("")
        add("</details>")
        add("")
    return "\n".join(lines) + "\n"


def write_chart(s: Summary, path: Path) -> str | None:
    """Draw time against N for each tool (and the floor); None when matplotlib is missing."""
    try:
        import matplotlib  # type: ignore[import-not-found, unused-ignore]

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]
        from matplotlib.ticker import (  # type: ignore[import-not-found, unused-ignore]
            FormatStrFormatter,
            NullFormatter,
        )
    except ImportError:
        return None
    styles = {
        RUNAS: ("tab:blue", "o"),
        SERIAL: ("tab:red", "s"),
        JOBS1: ("tab:orange", "^"),
        BUILTIN: ("tab:green", "D"),
        RUNAS + BASE: ("lightsteelblue", "o"),
        BUILTIN + BASE: ("darkseagreen", "D"),
    }
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5), dpi=110)
    for ax, tools, log in ((left, s.tools, True), (right, [RUNAS], False)):
        for tool in tools:
            points = [(n, c.median) for n in s.ns if (c := s.get(tool, n)) is not None]
            if not points:
                continue
            color, marker = styles.get(tool, ("black", "x"))
            ax.plot(
                [p[0] for p in points],
                [p[1] for p in points],
                marker=marker,
                color=color,
                label=tool,
            )
        ax.axhline(s.floor["total"], color="gray", linestyle="--", label="floor")
        ax.set_xlabel("registries (N)")
        ax.set_ylabel("seconds (median)")
        ax.set_xticks(s.ns)
        ax.grid(True, alpha=0.3)
        if log:
            ax.set_yscale("log")
            highest = max((c.high for c in s.cells.values()), default=1.0)
            ax.set_yticks([t for t in (0.5, 1, 2, 5, 10, 20, 50, 100, 200) if t < highest * 2])
            ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
            ax.yaxis.set_minor_formatter(NullFormatter())
            ax.set_title("all tools (log scale)")
        else:
            ax.set_ylim(bottom=0)
            ax.set_title("runas-async and the floor")
        ax.legend()
    fig.suptitle(f"ECR logins at {s.meta['delay_ms']:g} ms one-way delay")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path.name if path.parent.name != "results" else f"bench/results/{path.name}"


_SKELETON = """# Benchmarks

How fast `runas-async ecr login` is against what people write today, measured with real
components behind a simulated network. See the analysis below the results.

{start}
{end}
"""


def update_benchmarks_md(path: Path, s: Summary, chart: str | None) -> None:
    """Replace the generated section of BENCHMARKS.md (between the markers)."""
    text = (
        path.read_text(encoding="utf-8")
        if path.exists()
        else _SKELETON.format(start=START, end=END)
    )
    if START not in text or END not in text:
        text = text.rstrip() + f"\n\n{START}\n{END}\n"
    body = results_markdown(s, chart)
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.DOTALL)
    text = pattern.sub(lambda _: f"{START}\n{body}{END}", text, count=1)
    path.write_text(text, encoding="utf-8")
