"""The benchmark: runas-async against the serial pipeline, behind a simulated network.

``python -m bench`` (``make bench``) runs everything and rewrites the results part of
BENCHMARKS.md and the chart; ``python -m bench --help`` lists the knobs for a quick run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import measure, report
from bench.measure import BASE, BUILTIN, JOBS1, RUNAS, SERIAL, TOOLS
from bench.tools import AWSCLI_VERSION, ensure_awscli
from bench.world import PROFILE, World, hosts_for
from tests.sandbox import sandbox_missing

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "bench" / "out"
RESULTS_DIR = ROOT / "bench" / "results"
SLOW_MAX_N = 50
"""The serial pipeline and --jobs 1 are timed up to this N only (200 would take minutes)."""


def _ns(text: str) -> list[int]:
    try:
        ns = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of numbers") from None
    if not ns or ns[0] < 1:
        raise argparse.ArgumentTypeError("registry counts must be at least 1")
    return ns


def _tools(text: str) -> list[str]:
    names = {"runas": RUNAS, "serial": SERIAL, "jobs1": JOBS1, "builtin": BUILTIN}
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [c for c in chosen if c not in names]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"tools are a list of {', '.join(names)}")
    return [names[c] for c in chosen]


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=(
            "Time runas-async against the serial awscli | docker login pipeline and "
            "runas-async --jobs 1, through a latency proxy, in the test sandbox."
        ),
    )
    parser.add_argument("--delay-ms", type=float, default=50.0, help="one-way delay (50)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per tool and N (5)")
    parser.add_argument(
        "--ns",
        type=_ns,
        default=[1, 5, 20, 50, 200],
        help="registry counts (1,5,20,50,200; 200 = 40 accounts x 5 regions, timed for "
        "runas and builtin only)",
    )
    parser.add_argument(
        "--tools",
        type=_tools,
        default=list(TOOLS),
        help="which of runas,serial,jobs1,builtin to time (all)",
    )
    parser.add_argument(
        "--startup-runs", type=int, default=20, help="runs of --help/--version (20)"
    )
    parser.add_argument(
        "--max-wait",
        type=float,
        default=20.0,
        help="before each round, wait up to this many seconds for other processes to "
        "leave the CPUs alone (20)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="CHECKOUT",
        help="also time another checkout's runas-async (its .venv, from `make venv`) with "
        "the same tools, paired and interleaved with this one's, in the same world; its "
        "rows are named 'TOOL @base'",
    )
    parser.add_argument(
        "--no-doc",
        action="store_true",
        help="do not rewrite BENCHMARKS.md and the chart (results go to bench/out only)",
    )
    return parser.parse_args(argv)


def _say(text: str) -> None:
    sys.stderr.write(f"bench: {text}\n")
    sys.stderr.flush()


def _command_output(argv: Sequence[str]) -> str:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=30)
    except OSError:
        return "?"
    return (done.stdout or done.stderr).strip().splitlines()[0] if done.returncode == 0 else "?"


def _machine() -> dict[str, Any]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "?"
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": memory,
        "kernel": platform.release(),
        "os": _command_output(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "python": platform.python_version(),
        "docker": _command_output(["docker", "--version"]),
        "registry": _command_output(["docker-registry", "--version"]),
        "awscli": AWSCLI_VERSION,
        "runas_async": _command_output([str(measure.runas_script()), "--version"]),
        "commit": _command_output(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
        "dirty": _command_output(
            ["sh", "-c", f"git -C {shlex.quote(str(ROOT))} status --short runas_async | wc -l"]
        ),
    }


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def _startup(world: World, runs: int) -> dict[str, list[float]]:
    """Wall time of commands that make no network call, alternating, ``runs`` each."""
    script = str(measure.runas_script())
    commands = {
        "true": ["true"],
        "python -c pass": [sys.executable, "-c", "pass"],
        "runas-async --version": [script, "--version"],
        "runas-async --help": [script, "--help"],
        "python -m runas_async --help": [sys.executable, "-m", "runas_async", "--help"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for i in range(runs + 1):
        for name, argv in commands.items():
            run = world.run(argv)
            if run.returncode != 0:
                raise RuntimeError(f"{name}: exit status {run.returncode}: {run.stderr[-300:]}")
            if i > 0:  # the first round warms the page cache
                times[name].append(run.seconds)
    return times


def _timed(
    world: World, tool: str, n: int, aws: Path, baseline: Path | None = None
) -> dict[str, Any]:
    hosts = hosts_for(n)
    command = measure.tool_command(world, tool, hosts, aws, baseline)
    run = world.run(command.argv, env=command.env, timeout=600)
    measure.check_run(world, run, hosts, f"{tool} N={n}")
    return {
        "tool": tool,
        "n": n,
        "seconds": run.seconds,
        "calls": dict(run.calls),
        **run.phases(),
        "aws_connections": sum(1 for e in run.events if e.kind == "open" and e.name == "aws"),
        "foreign_cpu": run.foreign_cpu,
        "steal": run.steal,
    }


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    reason = sandbox_missing()
    if reason is not None:
        _say(f"cannot start the sandbox: {reason}")
        return 2
    started = time.monotonic()
    aws = ensure_awscli() if SERIAL in args.tools else Path("aws")
    if args.baseline is not None:
        script = measure.baseline_script(args.baseline)
        if not script.exists():
            _say(f"no {script}: run `make venv` in {args.baseline}")
            return 2
        args.tools += [tool + BASE for tool in args.tools if tool != SERIAL]
    # The venv is byte-compiled at install (UV_COMPILE_BYTECODE); the project itself is an
    # editable install whose .pyc files a PYTHONDONTWRITEBYTECODE environment never writes.
    checkouts = [ROOT] if args.baseline is None else [ROOT, args.baseline]
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", *(str(c / "runas_async") for c in checkouts)],
        check=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
    )
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # the tools' environment, as a user's
    delay = args.delay_ms / 1000
    ns: list[int] = args.ns
    results: dict[str, Any] = {
        "meta": {
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": shlex.join(
                ["python", "-m", "bench", *(sys.argv[1:] if argv is None else argv)]
            ),
            "delay_ms": args.delay_ms,
            "runs": args.runs,
            "ns": ns,
            "tools": args.tools,
            "machine": _machine(),
            "baseline_commit": (
                None
                if args.baseline is None
                else _command_output(
                    ["git", "-C", str(args.baseline), "rev-parse", "--short", "HEAD"]
                )
            ),
            "loadavg_start": _loadavg(),
        },
        "runs": [],
        "floor": [],
        "rss": {},
    }
    _say(f"starting moto, {max(ns)} registries and the latency proxy ({args.delay_ms:g} ms)")
    with World(delay, max(ns)) as world:
        _quiet(world, args.max_wait, results)
        _say(f"start-up: {args.startup_runs} runs of each command")
        results["startup"] = _startup(world, args.startup_runs)
        results["imports"] = {
            "--help": _imports(measure.import_times(world, ["--help"])),
            "--version": _imports(measure.import_times(world, ["--version"])),
            "ecr login (N=1)": _imports(
                measure.import_times(world, ["ecr", "login", PROFILE, *hosts_for(1)], hosts_for(1))
            ),
        }
        _say("warm-up: one untimed run of each tool at N=1")
        for tool in args.tools:
            _timed(world, tool, 1, aws, args.baseline)
        measure.floor_docker(world, hosts_for(1)[0])
        for round_ in range(args.runs):
            _quiet(world, args.max_wait, results)
            api = measure.floor_api(world, 3)
            docker = [measure.floor_docker(world, hosts_for(1)[0]) for _ in range(3)]
            results["floor"].append(
                {
                    "round": round_,
                    "sts": measure.median(api["sts"]),
                    "ecr": measure.median(api["ecr"]),
                    "docker": measure.median(docker),
                }
            )
            for i, n in enumerate(ns):
                shift = (round_ + i) % len(args.tools)
                order = args.tools[shift:] + args.tools[:shift]
                for tool in order:
                    if n > SLOW_MAX_N and tool.removesuffix(BASE) in (SERIAL, JOBS1):
                        continue  # minutes per run, and nothing to learn from it
                    record = _timed(world, tool, n, aws, args.baseline)
                    record["round"] = round_
                    results["runs"].append(record)
                    _say(
                        f"round {round_ + 1}/{args.runs}  N={n:<3} {tool:<22} "
                        f"{record['seconds']:7.3f} s  {record['calls']}"
                    )
        renew_n = min(20, max(ns))
        _say(f"--renew-before: {args.runs} full runs and fresh runs of N={renew_n}")
        results["renew_before"] = _renew_before(world, renew_n, args.runs)
        _say("peak RSS and one --debug run")
        for n in ns:
            own, children = measure.peak_rss(world, hosts_for(n))
            results["rss"][str(n)] = {"own_kib": own, "largest_child_kib": children}
        debug_n = max(n for n in ns if n <= 20) if min(ns) <= 20 else min(ns)
        debug = world.run(
            [str(measure.runas_script()), "ecr", "login", PROFILE, *hosts_for(debug_n), "--debug"]
        )
        measure.check_run(world, debug, hosts_for(debug_n), "runas-async --debug")
        results["debug"] = {
            "n": debug_n,
            "seconds": debug.seconds,
            "stderr": debug.stderr,
            "events": [
                {
                    "kind": e.kind,
                    "name": e.name,
                    "connection": e.connection,
                    "ms": round((e.time - debug.started) * 1000, 1),
                }
                for e in debug.events
            ],
        }
    results["meta"]["loadavg_end"] = _loadavg()
    results["meta"]["duration_s"] = round(time.monotonic() - started, 1)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = OUT_DIR / f"results-{stamp}.json"
    out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    summary = report.summarize(results)
    sys.stdout.write(report.results_markdown(summary, chart=None))
    _say(f"raw results in {out.relative_to(ROOT)}")
    if not args.no_doc:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        (RESULTS_DIR / "results.json").write_text(
            json.dumps(results, indent=1) + "\n", encoding="utf-8"
        )
        chart = report.write_chart(summary, RESULTS_DIR / "time_vs_n.png")
        report.update_benchmarks_md(ROOT / "BENCHMARKS.md", summary, chart)
        _say("updated BENCHMARKS.md and bench/results/")
    _say(f"done in {time.monotonic() - started:.0f} s")
    return 0


def _renew_before(world: World, n: int, runs: int) -> dict[str, Any]:
    """N registries logged in with ``--renew-before 1h``, then again: the second run finds
    every login fresh. Both timed; the fresh run must make no AWS call and run no client."""
    hosts = hosts_for(n)
    argv = [str(measure.runas_script()), "ecr", "login", PROFILE, *hosts, "--renew-before", "1h"]
    env = world.env(AWS_ENDPOINT_URL=world.renew_url)
    full: list[float] = []
    fresh: list[float] = []
    for _ in range(runs):
        first = world.run(argv, env=env)  # from a fresh docker config: every registry stale
        measure.check_run(world, first, hosts, f"--renew-before full N={n}")
        again = world.run(argv, env=env, reset=False)
        measure.check_run(world, again, hosts, f"--renew-before fresh N={n}")
        if again.calls or again.stdout.count("fresh ") != n:
            raise RuntimeError(f"--renew-before: the fresh run was not: {again.calls}")
        full.append(first.seconds)
        fresh.append(again.seconds)
    return {"n": n, "full": full, "fresh": fresh}


def _quiet(world: World, max_wait: float, results: dict[str, Any]) -> None:
    waited, load = world.wait_quiet(max_wait)
    results["meta"].setdefault("quiet_waits", []).append([round(waited, 1), round(load, 2)])
    if waited > 1.5:
        _say(f"waited {waited:.0f} s for a quiet machine (other processes: {load:.2f} cores)")


def _imports(times: measure.ImportTimes) -> dict[str, Any]:
    return {
        "total_ms": round(times.total_us / 1000, 1),
        "top": [[name, round(us / 1000, 1)] for name, us in times.top[:12]],
        "heavy": {
            name: round(times.cumulative[name] / 1000, 1) if times.has(name) else None
            for name in measure.HEAVY
        },
    }
