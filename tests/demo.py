"""`make demo`: the main job against the local sandbox, no AWS account needed.

Starts moto (STS and ECR), real registries on 127.0.0.N with the real ECR host
names mapped to them in a private mount namespace, writes a throw-away AWS
config with three profiles, and runs real `runas-async ecr login` commands
through the real docker CLI, then removes everything.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Mapping
from typing import TextIO

from tests.sandbox import STATIC_KEYS, Sandbox, ecr_host, moto_password, sandbox_missing

DEV, PROD = "123456789012", "210987654321"
SHARED = ("444400000001", "444400000002", "444400000003")  # grant prod's role access
REGIONS = ("us-west-2", "eu-west-1", "ap-south-1")

PROFILES = {
    "dev": {"region": "us-east-2", **STATIC_KEYS},
    "prod": {
        "role_arn": f"arn:aws:iam::{PROD}:role/deploy",
        "source_profile": "dev",
        "region": "us-west-2",
    },
}


def bold(text: str, stream: TextIO, env: Mapping[str, str]) -> str:
    """``text`` in bold on a terminal (NO_COLOR keeps bold, as rich does); as it is in a
    pipe or on TERM=dumb, which get no escape codes at all."""
    if stream.isatty() and env.get("TERM") != "dumb":
        return f"\033[1m{text}\033[0m"
    return text


def _say(text: str) -> None:
    sys.stdout.write(f"\n{bold(text, sys.stdout, os.environ)}\n")
    sys.stdout.flush()


def _run(sb: Sandbox, args: list[str]) -> int:
    _say("$ " + shlex.join(["runas-async", *args]))
    argv = sb.wrap([sys.executable, "-m", "runas_async", *args])
    return subprocess.run(argv, env=sb.env(), check=False).returncode


def main() -> int:
    reason = sandbox_missing()
    if reason is not None:
        sys.stderr.write(f"demo: cannot start the sandbox: {reason}\n")
        return 2
    with Sandbox() as sb:
        hosts = [ecr_host(a, r) for a in (PROD, *SHARED) for r in REGIONS]
        _say(f"starting moto and {len(hosts) + 1} registries on 127.0.0.N ...")
        sb.add_registries(
            [(ecr_host(DEV, "us-east-2"), moto_password(DEV))]
            + [(h, moto_password(PROD)) for h in hosts]
        )
        sb.write_aws_config(PROFILES)
        _say("profiles: dev (static keys, us-east-2), prod (role in 210987654321 via dev)")
        codes = [
            _run(sb, ["ecr", "login", "dev"]),
            _run(sb, ["ecr", "login", "prod", *hosts]),
        ]
        calls = sb.calls()
        _say(
            f"moto saw {calls['GetAuthorizationToken']} GetAuthorizationToken and "
            f"{calls['AssumeRole']} AssumeRole calls for {len(hosts) + 1} registries"
        )
        doc = json.loads((sb.docker_config / "config.json").read_text())
        _say(f"docker's config.json now holds {len(doc['auths'])} registries:")
        for host in sorted(doc["auths"]):
            sys.stdout.write(f"  {host}\n")
        _say("one registry refusing the password: its row fails, the rest log in, exit 1")
        sb.set_password(hosts[4], "not-the-token")
        codes.append(_run(sb, ["ecr", "login", "prod", *hosts[:6]]))
        sys.stdout.write(f"exit status {codes[-1]}\n")
    ok = codes[:2] == [0, 0] and codes[2] == 1
    _say("demo finished; sandbox removed" if ok else f"demo FAILED: exit codes {codes}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
