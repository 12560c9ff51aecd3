"""Load: 200 registries (40 accounts x 5 regions) in one ``runas-async ecr login`` run.

    python -m bench.load [--accounts 40] [--regions 5] [--runs 3] [--jobs N]

Starts its own sandbox (moto, one real ``docker-registry`` per host, the real docker CLI,
the tool in a private mount namespace), runs the real command with the default ``--jobs``
(unless ``--jobs`` is given) from a fresh ``DOCKER_CONFIG`` each time, and checks that every
registry logged in and landed in ``config.json`` with one GetAuthorizationToken per region.
Prints, per run and as the median: wall time, runas-async's own peak RSS (``VmHWM``), the
peak RSS of its whole process tree at one moment (itself plus the ``docker login`` children
running then), and the most ``docker login`` processes seen at once.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.faults import descendants
from tests.sandbox import DEFAULT_ACCOUNT, STATIC_KEYS, Sandbox, ecr_host, moto_password

REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2")
PROFILE = "load"


def hosts(accounts: int, regions: int) -> list[str]:
    """``accounts`` x ``regions`` registry hosts (accounts 8888000000NN)."""
    return [
        ecr_host(f"8888{i:08d}", region) for i in range(accounts) for region in REGIONS[:regions]
    ]


def _status_kib(pid: int, field: str) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


class LoadError(RuntimeError):
    """The run failed or lost a login."""


@dataclass
class Sample:
    own_peak_kib: int = 0
    tree_peak_kib: int = 0
    most_logins: int = 0


def _watch(pid: int, stop: threading.Event, sample: Sample) -> None:
    while not stop.is_set():
        own_hwm = _status_kib(pid, "VmHWM")
        if own_hwm:
            sample.own_peak_kib = max(sample.own_peak_kib, own_hwm)
        kids = descendants(pid)
        tree = _status_kib(pid, "VmRSS") + sum(_status_kib(k, "VmRSS") for k in kids)
        sample.tree_peak_kib = max(sample.tree_peak_kib, tree)
        sample.most_logins = max(sample.most_logins, len(kids))
        stop.wait(0.01)


@dataclass(frozen=True)
class Result:
    wall: float
    own_peak_kib: int
    tree_peak_kib: int
    most_logins: int


def run_once(sb: Sandbox, targets: Sequence[str], jobs: int | None) -> Result:
    """One run from a fresh DOCKER_CONFIG; LoadError unless every registry logged in."""
    sb.reset_client()
    sb.write_aws_config({PROFILE: {"region": REGIONS[0], **STATIC_KEYS}})
    sb.clear_calls()
    args = ["ecr", "login", PROFILE, *targets, "-o", "json"]
    if jobs is not None:
        args += ["--jobs", str(jobs)]
    argv = sb.wrap([sys.executable, "-m", "runas_async", *args])
    sample = Sample()
    stop = threading.Event()
    started = time.monotonic()
    proc = subprocess.Popen(
        argv, env=sb.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    watcher = threading.Thread(target=_watch, args=(proc.pid, stop, sample), daemon=True)
    watcher.start()
    out, err = proc.communicate(timeout=600)
    wall = time.monotonic() - started
    stop.set()
    watcher.join()
    if proc.returncode != 0:
        raise LoadError(f"run failed with {proc.returncode}: {err.strip()[-2000:]}")
    results = json.loads(out)["results"]
    ok = {r["registry"] for r in results if r["status"] == "ok"}
    auths = set(sb.docker_auths())
    if ok != set(targets) or not set(targets) <= auths:
        raise LoadError(
            f"lost logins: {len(set(targets) - ok)} not ok, {len(set(targets) - auths)} "
            "not in config.json"
        )
    tokens = sb.calls("ecr")["GetAuthorizationToken"]
    regions = {t.split(".")[3] for t in targets}
    if tokens != len(regions):
        raise LoadError(f"{tokens} GetAuthorizationToken calls for {len(regions)} regions")
    return Result(wall, sample.own_peak_kib, sample.tree_peak_kib, sample.most_logins)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    parser.add_argument("--accounts", type=int, default=40)
    parser.add_argument("--regions", type=int, default=5, choices=range(1, len(REGIONS) + 1))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=None, help="default: the tool's default")
    args = parser.parse_args(argv)
    targets = hosts(args.accounts, args.regions)
    with Sandbox() as sb:
        started = time.monotonic()
        sb.add_registries([(h, moto_password(DEFAULT_ACCOUNT)) for h in targets])
        print(
            f"{len(targets)} registries ({args.accounts} accounts x {args.regions} regions) "
            f"started in {time.monotonic() - started:.1f}s; cpus {os.cpu_count()}"
        )
        runs = []
        for i in range(args.runs):
            try:
                r = run_once(sb, targets, args.jobs)
            except LoadError as e:
                print(f"run {i + 1}: {e}", file=sys.stderr)
                return 1
            runs.append(r)
            print(
                f"run {i + 1}: {r.wall:.2f}s wall, runas-async peak RSS "
                f"{r.own_peak_kib / 1024:.0f} MiB, process tree peak "
                f"{r.tree_peak_kib / 1024:.0f} MiB, up to {r.most_logins} docker logins at once; "
                f"all {len(targets)} logged in"
            )
        print(
            f"median of {len(runs)}: {statistics.median(r.wall for r in runs):.2f}s wall, "
            f"runas-async peak RSS {statistics.median(r.own_peak_kib for r in runs) / 1024:.0f} "
            f"MiB, tree peak {statistics.median(r.tree_peak_kib for r in runs) / 1024:.0f} MiB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
