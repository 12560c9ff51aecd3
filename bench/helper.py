"""``python -m bench.helper``: the credential helper's ``get``, warm and cold, next to
amazon-ecr-credential-helper's.

Against moto on loopback (no latency proxy: a warm ``get`` makes no request, and the cold
one is dominated by start-up), behind the rewriting proxy that gives tokens 12 hours.
Measured as a docker would see it: wall time of one ``docker-credential-... get`` process,
the median of ``--runs``.

amazon-ecr-credential-helper (Debian's package, installed with --no-install-recommends)
ignores custom endpoints, so its cache cannot be filled honestly here; what is compared is
its start-up: a ``get`` for a host it does not serve (``docker.io``), which it answers
without a request, after loading its configuration, as ours does. Target: our warm ``get``
under 80 ms.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.faults import ApiFaultProxy
from tests.sandbox import STATIC_KEYS, Moto, ecr_host

RESULTS = Path(__file__).resolve().parent / "results" / "helper.json"
TARGET_MS = 80.0
ACCOUNT = "210987654321"


def _time(argv: Sequence[str], stdin: str, env: Mapping[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    done = subprocess.run(
        list(argv), input=stdin, env=dict(env), capture_output=True, text=True, check=False
    )
    return (time.perf_counter() - started) * 1000, done.returncode


def _median(argv: Sequence[str], stdin: str, env: Mapping[str, str], runs: int) -> float:
    times = []
    for _ in range(runs):
        ms, code = _time(argv, stdin, env)
        times.append(ms)
        if argv[-1] == "get" and stdin != "docker.io" and code != 0:
            raise SystemExit(f"bench.helper: {argv[0]} get {stdin} failed")
    return statistics.median(times)


def measure(runs: int) -> dict[str, object]:
    ours = shutil.which("docker-credential-runas-async") or str(
        Path(sys.executable).parent / "docker-credential-runas-async"
    )
    host = ecr_host(ACCOUNT, "eu-west-1")
    with Moto() as moto:
        moto.write_aws_config(
            {
                "src": {"region": "eu-west-1", **STATIC_KEYS},
                "prod": {
                    "region": "eu-west-1",
                    "role_arn": f"arn:aws:iam::{ACCOUNT}:role/pull",
                    "source_profile": "src",
                },
            }
        )
        mapping = moto.workdir / "registries.toml"
        mapping.write_text(f'[[login]]\nprofile = "prod"\nregistries = ["{host}"]\n')
        with ApiFaultProxy(moto.moto_url, expires_in=12 * 3600) as proxy:
            env = moto.env(AWS_ENDPOINT_URL=proxy.url, RUNAS_ASYNC_REGISTRIES=str(mapping))
            cold, code = _time([ours, "get"], host, env)
            if code != 0:
                raise SystemExit("bench.helper: the cold get failed")
            calls = dict(moto.calls())
            moto.clear_calls()
            warm = _median([ours, "get"], host, env, runs)
            warm_calls = dict(moto.calls())
            not_served = _median([ours, "get"], "docker.io", env, runs)
    result: dict[str, object] = {
        "runs": runs,
        "runas_async_cold_get_ms": round(cold, 1),
        "runas_async_cold_get_calls": calls,
        "runas_async_warm_get_ms": round(warm, 1),
        "runas_async_warm_get_calls": warm_calls,
        "runas_async_not_served_ms": round(not_served, 1),
        "target_ms": TARGET_MS,
        "target_met": warm < TARGET_MS,
    }
    theirs = shutil.which("docker-credential-ecr-login")
    if theirs:
        result["ecr_login_start_up_ms"] = round(
            _median([theirs, "get"], "docker.io", {"PATH": "/usr/bin:/bin"}, runs), 1
        )
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.helper", description=__doc__)
    parser.add_argument("--runs", type=int, default=15, help="timed runs of each (15)")
    args = parser.parse_args(argv)
    result = measure(args.runs)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
