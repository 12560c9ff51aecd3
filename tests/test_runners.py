"""The client runner (auth/runners.py) through ``ecr login``: a client whose auth file
cannot be redirected (finch) logs in one registry at a time."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap

from tests.sandbox import DEFAULT_ACCOUNT, STATIC_KEYS, Moto, ecr_host, moto_password

# finch's stand-in: records itself as running, reads the password, then watches for a
# second finch for up to a second (the runner starts clients before their tokens come, so
# two let loose at once are both running here), then writes the real auth file.
FINCH = textwrap.dedent(
    """\
    #!{python}
    import base64, json, os, sys, time
    log = os.environ["FINCH_LOG"]
    me = str(os.getpid())

    def pids(kind):
        try:
            return set(open(log + kind).read().split())
        except FileNotFoundError:
            return set()

    with open(log + ".started", "a") as f:
        f.write(me + "\\n")
    password = sys.stdin.read()
    until = time.monotonic() + 1.0
    while time.monotonic() < until:
        if pids(".started") - pids(".ended") - {{me}}:
            sys.exit("two finch logins at once")
        time.sleep(0.02)
    path = os.path.join(os.environ["HOME"], ".finch", "config.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    doc = json.load(open(path)) if os.path.exists(path) else {{}}
    auth = base64.b64encode(("AWS:" + password).encode()).decode()
    doc.setdefault("auths", {{}})[sys.argv[-1]] = {{"auth": auth}}
    json.dump(doc, open(path, "w"))
    with open(log + ".ended", "a") as f:
        f.write(me + "\\n")
    """
)


def test_finch_logs_in_one_registry_at_a_time(moto: Moto) -> None:
    """finch has no private auth file: its logins run one after the other, none lost."""
    moto.write_aws_config({"dev": {"region": "us-east-1", **STATIC_KEYS}})
    bin_dir = moto.workdir / "finch-bin"
    bin_dir.mkdir(exist_ok=True)
    finch = bin_dir / "finch"
    finch.write_text(FINCH.format(python=sys.executable))
    finch.chmod(0o755)
    log = moto.workdir / "finch"
    env = moto.env(PATH=f"{bin_dir}:{os.environ['PATH']}", FINCH_LOG=str(log))
    hosts = [ecr_host(DEFAULT_ACCOUNT, r) for r in ("us-east-1", "us-west-2")]
    done = subprocess.run(
        [sys.executable, "-m", "runas_async", "ecr", "login", "dev", *hosts, "-c", "finch"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    doc = json.loads((moto.home / ".finch" / "config.json").read_text())
    assert sorted(doc["auths"]) == sorted(hosts)
    expected = base64.b64encode(f"AWS:{moto_password(DEFAULT_ACCOUNT)}".encode()).decode()
    assert {entry["auth"] for entry in doc["auths"].values()} == {expected}
