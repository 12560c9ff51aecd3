"""What the benchmark runs and how it reads the results.

Every command runs inside the sandbox's mount namespace (:meth:`World.run`), pointed at the
latency proxy, from a fresh client state (no docker config.json, no awscli cache).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import statistics
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.world import PROFILE, REGIONS, ROLE_ACCOUNT, Run, World
from tests.sandbox import STATIC_KEYS, moto_password

__all__ = [
    "BASE",
    "BUILTIN",
    "TOOLS",
    "ImportTimes",
    "Tool",
    "check_run",
    "floor_api",
    "floor_docker",
    "import_times",
    "peak_rss",
    "region_of",
    "runas_script",
    "tool_command",
]

RUNAS = "runas-async"
SERIAL = "serial"
JOBS1 = "runas-async --jobs 1"
BUILTIN = "runas-async --client builtin"
"""The built-in login (issue 13): no client program, one aiohttp pool for the registries."""
TOOLS = (RUNAS, SERIAL, JOBS1, BUILTIN)
BASE = " @base"
"""Suffix of a tool run from the baseline checkout (``--baseline``): same world, same
arguments, the other checkout's console script; paired with the tool, interleaved."""


@dataclass(frozen=True)
class Tool:
    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str]


def region_of(host: str) -> str:
    return host.split(".")[3]


def runas_script() -> Path:
    """The installed console script, what a user runs."""
    return Path(sys.executable).with_name("runas-async")


def serial_script(hosts: Sequence[str]) -> str:
    """The pipeline users write today, one registry after the other, as a bash script."""
    lines = ["set -euo pipefail"]
    lines.extend(
        f"aws ecr get-login-password --profile {PROFILE} --region {region_of(host)}"
        f" | docker login --username AWS --password-stdin {shlex.quote(host)}"
        for host in hosts
    )
    return "\n".join(lines) + "\n"


def baseline_script(checkout: Path) -> Path:
    """The console script of another checkout's virtualenv (``make venv`` there)."""
    return checkout / ".venv" / "bin" / "runas-async"


def tool_command(
    world: World, tool: str, hosts: Sequence[str], aws: Path, baseline: Path | None = None
) -> Tool:
    script = str(runas_script())
    if tool.endswith(BASE):
        if baseline is None:
            raise ValueError(f"{tool!r} needs a baseline checkout")
        script, tool = str(baseline_script(baseline)), tool.removesuffix(BASE)
    if tool == RUNAS:
        argv = (script, "ecr", "login", PROFILE, *hosts)
        return Tool(tool, argv, world.env())
    if tool == JOBS1:
        argv = (script, "ecr", "login", PROFILE, *hosts, "--jobs", "1")
        return Tool(tool, argv, world.env())
    if tool == BUILTIN:
        argv = (script, "ecr", "login", PROFILE, *hosts, "--client", "builtin")
        return Tool(tool, argv, world.env())
    if tool == SERIAL:
        env = world.env(PATH=f"{aws.parent}{os.pathsep}{os.environ.get('PATH', os.defpath)}")
        return Tool(tool, ("bash", "-c", serial_script(hosts)), env)
    raise ValueError(f"unknown tool {tool!r}")


def check_run(world: World, run: Run, hosts: Sequence[str], what: str) -> None:
    """Fail loudly when a run did not log into every registry."""
    got = world.logged_in(hosts)
    if run.returncode != 0 or got != len(hosts):
        tail = " | ".join(run.stderr.strip().splitlines()[-5:])
        raise RuntimeError(
            f"{what}: exit status {run.returncode}, {got}/{len(hosts)} registries in "
            f"config.json; stderr: {tail}"
        )


# --- the floor --------------------------------------------------------------------------

_FLOOR_SCRIPT = """
import json, sys, time
import botocore.session
role_arn, region, samples = sys.argv[1:4]
key, secret = sys.stdin.read().split()  # never in argv: /proc shows argv to everyone
session = botocore.session.get_session()
out = {"sts": [], "ecr": []}
for _ in range(int(samples)):
    # A fresh client each time: a fresh connection, as a one-shot command has.
    sts = session.create_client(
        "sts", region_name=region, aws_access_key_id=key, aws_secret_access_key=secret
    )
    t = time.perf_counter()
    creds = sts.assume_role(RoleArn=role_arn, RoleSessionName="floor")["Credentials"]
    out["sts"].append(time.perf_counter() - t)
    ecr = session.create_client(
        "ecr",
        region_name=region,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    t = time.perf_counter()
    ecr.get_authorization_token()
    out["ecr"].append(time.perf_counter() - t)
    sts.close()
    ecr.close()
print(json.dumps(out))
"""


def floor_api(world: World, samples: int) -> dict[str, list[float]]:
    """Round trips of one AssumeRole and one GetAuthorizationToken, each on a new connection.

    Timed inside one Python process that has already imported botocore and built its
    clients: only the request, the proxy's delays and moto's work are in the numbers.
    """
    argv = [
        sys.executable,
        "-c",
        _FLOOR_SCRIPT,
        f"arn:aws:iam::{ROLE_ACCOUNT}:role/bench",
        REGIONS[0],
        str(samples),
    ]
    keys = f"{STATIC_KEYS['aws_access_key_id']}\n{STATIC_KEYS['aws_secret_access_key']}\n"
    run = world.run(argv, input=keys)
    if run.returncode != 0:
        raise RuntimeError(f"floor measurement failed: {run.stderr.strip()[-500:]}")
    data = json.loads(run.stdout)
    return {"sts": [float(x) for x in data["sts"]], "ecr": [float(x) for x in data["ecr"]]}


def floor_docker(world: World, host: str) -> float:
    """One ``docker login`` with the right password, on its own, from a fresh config."""
    run = world.run(
        ["docker", "login", "--username", "AWS", "--password-stdin", host],
        input=moto_password(ROLE_ACCOUNT) + "\n",
    )
    check_run(world, run, [host], "docker login (floor)")
    return run.seconds


# --- peak RSS ---------------------------------------------------------------------------

# runas-async's console script ends with os._exit() (no atexit), so the wrapper calls
# main() itself and reports before exiting.
_RSS_WRAPPER = """
import os, resource, sys
from runas_async.cli.main import main
code = main(sys.argv[1:])
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
with open(os.environ["RUNAS_BENCH_RSS_FILE"], "w") as f:
    f.write(f"{own} {children}")
sys.exit(code)
"""


def peak_rss(world: World, hosts: Sequence[str]) -> tuple[int, int]:
    """(runas-async's own peak RSS, largest child's peak RSS), in KiB, for one login run."""
    out = world.sandbox.workdir / "rss.txt"
    out.unlink(missing_ok=True)
    run = world.run(
        [sys.executable, "-c", _RSS_WRAPPER, "ecr", "login", PROFILE, *hosts],
        env=world.env(RUNAS_BENCH_RSS_FILE=str(out)),
    )
    check_run(world, run, hosts, "runas-async (peak RSS run)")
    own, children = out.read_text(encoding="utf-8").split()
    return int(own), int(children)


# --- import times -----------------------------------------------------------------------

_IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( +)(\S+)\s*$")
HEAVY = (
    "aiobotocore.session",
    "aiohttp",
    "botocore.session",
    "botocore.client",
    "anyio",
    "rich.console",
    "rich.live",
)


@dataclass(frozen=True)
class ImportTimes:
    """``python -X importtime`` of one command: microseconds per module."""

    total_us: int
    top: tuple[tuple[str, int], ...]
    """Top-level imports (nesting level 0) by cumulative time, largest first."""
    cumulative: Mapping[str, int]

    def has(self, module: str) -> bool:
        return module in self.cumulative


def parse_importtime(stderr: str) -> ImportTimes:
    total = 0
    top: list[tuple[str, int]] = []
    cumulative: dict[str, int] = {}
    for line in stderr.splitlines():
        match = _IMPORT_LINE.match(line)
        if not match:
            continue
        own, cum, indent, name = match.groups()
        total += int(own)
        cumulative[name] = int(cum)
        if len(indent) == 1:
            top.append((name, int(cum)))
    top.sort(key=lambda item: -item[1])
    return ImportTimes(total_us=total, top=tuple(top), cumulative=cumulative)


def import_times(
    world: World, args: Sequence[str], hosts: Sequence[str] = (), runs: int = 3
) -> ImportTimes:
    """``python -X importtime -m runas_async ARGS`` in the namespace (real runs).

    Of ``runs`` runs, the one with the median total import time.
    """
    found: list[ImportTimes] = []
    for _ in range(runs):
        run = world.run([sys.executable, "-X", "importtime", "-m", "runas_async", *args])
        if hosts:
            check_run(world, run, hosts, "runas-async -X importtime")
        found.append(parse_importtime(run.stderr))
    found.sort(key=lambda t: t.total_us)
    return found[len(found) // 2]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def run_quiet(argv: Sequence[str]) -> None:
    subprocess.run(list(argv), check=True, stdout=subprocess.DEVNULL)
