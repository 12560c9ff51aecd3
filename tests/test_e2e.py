"""`runas-async ecr login` end to end: moto, the real docker CLI, real registries.

Every test runs the real command in a private mount namespace where the ECR
host names resolve to registries on 127.0.0.N (see tests/sandbox.py).
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.sandbox import STATIC_KEYS, Sandbox, ecr_host, moto_password

DEV = "123456789012"  # static keys: moto's default account
PROD = "210987654321"  # role assumed from dev
CHAIN = "333333333333"  # role assumed from prod: a two-step chain

PROFILES: Mapping[str, Mapping[str, str]] = {
    "dev": {"region": "us-east-2", **STATIC_KEYS},
    "prod": {
        "role_arn": f"arn:aws:iam::{PROD}:role/deploy",
        "source_profile": "dev",
        "region": "us-west-2",
    },
    "chain": {
        "role_arn": f"arn:aws:iam::{CHAIN}:role/ci",
        "source_profile": "prod",
        "region": "eu-west-1",
    },
}

README = Path(__file__).resolve().parent.parent / "README.md"


def _setup(sb: Sandbox, registries: Mapping[str, str]) -> None:
    sb.write_aws_config(PROFILES)
    sb.add_registries(list(registries.items()))


def _json(done: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    doc = json.loads(done.stdout)
    assert set(doc) == {"results"}
    results: list[dict[str, object]] = doc["results"]
    return results


def test_no_endpoint_logs_into_the_profiles_own_registry(sb: Sandbox) -> None:
    """Static keys, no ENDPOINT: the caller's account (STS) in the profile's region."""
    host = ecr_host(DEV, "us-east-2")
    _setup(sb, {host: moto_password(DEV)})
    done = sb.run_tool(["ecr", "login", "dev"])
    assert done.returncode == 0, done.stderr
    assert sb.docker_auths() == {host: f"AWS:{moto_password(DEV)}"}
    assert re.search(rf"^ok +{re.escape(host)} \(profile dev, region us-east-2", done.stdout, re.M)
    assert sb.calls("sts")["GetCallerIdentity"] == 1


def test_account_number_with_role_profile(sb: Sandbox) -> None:
    """A bare account number is that account's registry in the profile's region."""
    host = ecr_host(PROD, "us-west-2")
    _setup(sb, {host: moto_password(PROD)})
    done = sb.run_tool(["ecr", "login", "prod", PROD])
    assert done.returncode == 0, done.stderr
    assert sb.docker_auths() == {host: f"AWS:{moto_password(PROD)}"}
    assert sb.calls("sts")["AssumeRole"] == 1


def test_full_hostname_carries_its_region(sb: Sandbox) -> None:
    """A full host name logs in with a token from its own region, not the profile's."""
    host = ecr_host(PROD, "eu-west-1")
    _setup(sb, {host: moto_password(PROD)})
    done = sb.run_tool(["ecr", "login", "prod", f"https://{host}/team/app:1.2"])
    assert done.returncode == 0, done.stderr
    assert sb.docker_auths() == {host: f"AWS:{moto_password(PROD)}"}
    regions = [c.region for c in sb.moto_calls() if c.operation == "GetAuthorizationToken"]
    assert regions == ["eu-west-1"]


def test_two_step_role_chain(sb: Sandbox) -> None:
    """chain -> prod -> dev: the final role's account gets logged in."""
    host = ecr_host(CHAIN, "eu-west-1")
    _setup(sb, {host: moto_password(CHAIN)})
    done = sb.run_tool(["ecr", "login", "chain"])
    assert done.returncode == 0, done.stderr
    assert sb.docker_auths() == {host: f"AWS:{moto_password(CHAIN)}"}
    assert sb.calls("sts")["AssumeRole"] == 2


def test_several_registries_one_token_per_region(sb: Sandbox) -> None:
    """Several endpoints, duplicates dropped, one GetAuthorizationToken per region."""
    hosts = [ecr_host(PROD, r) for r in ("us-west-2", "eu-west-1", "ap-south-1")]
    _setup(sb, {h: moto_password(PROD) for h in hosts})
    done = sb.run_tool(["ecr", "login", "prod", PROD, *hosts, "-o", "json"])
    assert done.returncode == 0, done.stderr
    results = _json(done)
    assert sorted(str(r["registry"]) for r in results) == sorted(hosts)
    assert all(r["status"] == "ok" and r["error"] is None for r in results)
    assert all(r["profile"] == "prod" and r["account"] == PROD for r in results)
    assert set(sb.docker_auths()) == set(hosts)
    calls = sb.calls()
    assert calls["GetAuthorizationToken"] == 3
    assert calls["AssumeRole"] == 1


def _many(n_accounts: int, regions: tuple[str, ...]) -> list[str]:
    return [
        ecr_host(f"{444400000000 + i:012d}", region)
        for i in range(n_accounts)
        for region in regions
    ]


EXISTING_CONFIG = {
    "auths": {"ghcr.io": {"auth": "dXNlcjpwYXNz"}, "quay.io": {"auth": "cTpx"}},
    "psFormat": "table {{.ID}}",
    "credHelpers": {"gcr.io": "gcloud"},
}


def test_many_registries_none_lost_existing_kept(sb: Sandbox) -> None:
    """21 registries, 7 accounts x 3 regions, in one run: every entry present, old ones kept.

    The other accounts' registries accept prod's token, as a cross-account
    repository policy makes real ECR do.
    """
    hosts = _many(7, ("us-west-2", "eu-west-1", "ap-south-1"))
    _setup(sb, {h: moto_password(PROD) for h in hosts})
    sb.docker_config.mkdir(parents=True)
    (sb.docker_config / "config.json").write_text(json.dumps(EXISTING_CONFIG))
    done = sb.run_tool(["ecr", "login", "prod", *hosts])
    assert done.returncode == 0, done.stderr
    doc = json.loads((sb.docker_config / "config.json").read_text())
    assert doc["psFormat"] == EXISTING_CONFIG["psFormat"]
    assert doc["credHelpers"] == EXISTING_CONFIG["credHelpers"]
    auths = sb.docker_auths()
    assert set(auths) == {"ghcr.io", "quay.io", *hosts}
    assert all(auths[h] == f"AWS:{moto_password(PROD)}" for h in hosts)
    assert done.stdout.count("\nok ") + done.stdout.startswith("ok ") == len(hosts)
    assert sb.calls("ecr")["GetAuthorizationToken"] == 3


def test_two_processes_at_once_lose_nothing(sb: Sandbox) -> None:
    """Two runas-async runs on one DOCKER_CONFIG at the same time both land every login."""
    hosts = _many(5, ("us-west-2", "eu-west-1"))
    _setup(sb, {h: moto_password(PROD) for h in hosts})
    halves = [hosts[0::2], hosts[1::2]]
    env = sb.env()
    procs = [
        subprocess.Popen(
            sb.wrap([sys.executable, "-m", "runas_async", "ecr", "login", "prod", *half]),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for half in halves
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    assert set(sb.docker_auths()) == set(hosts)


def test_one_registry_rejects_the_password(sb: Sandbox) -> None:
    """One refusing registry fails its row with the registry's reason; the rest log in; exit 1."""
    hosts = [ecr_host(PROD, r) for r in ("us-west-2", "eu-west-1", "ap-south-1")]
    _setup(sb, {h: moto_password(PROD) for h in hosts})
    bad = hosts[1]
    sb.set_password(bad, "something-else")
    done = sb.run_tool(["ecr", "login", "prod", *hosts, "--output", "json"])
    assert done.returncode == 1, done.stderr
    by_host = {r["registry"]: r for r in _json(done)}
    assert by_host[bad]["status"] == "failed"
    assert "401 Unauthorized" in str(by_host[bad]["error"])
    assert moto_password(PROD) not in done.stdout + done.stderr
    for host in hosts:
        if host != bad:
            assert by_host[host]["status"] == "ok"
    assert set(sb.docker_auths()) == set(hosts) - {bad}


def test_access_denied_token_fails_that_region_only(sb: Sandbox) -> None:
    """An unreachable ECR region (no registry behind its host) is that row's failure, exit 1."""
    good = ecr_host(PROD, "us-west-2")
    missing = ecr_host(PROD, "sa-east-1")  # in no hosts file: resolves nowhere
    _setup(sb, {good: moto_password(PROD)})
    done = sb.run_tool(["ecr", "login", "prod", good, missing])
    assert done.returncode == 1
    assert re.search(rf"^ok +{re.escape(good)}", done.stdout, re.M)
    assert re.search(rf"^failed +{re.escape(missing)} .*: \S", done.stdout, re.M)
    assert set(sb.docker_auths()) == {good}


def test_dry_run_makes_no_calls(sb: Sandbox) -> None:
    """--dry-run prints the plan and calls neither AWS nor docker."""
    _setup(sb, {})
    done = sb.run_tool(
        ["ecr", "login", "prod", PROD, ecr_host(PROD, "eu-west-1"), "-n", "-o", "json"]
    )
    assert done.returncode == 0, done.stderr
    results = _json(done)
    assert [r["status"] for r in results] == ["planned", "planned"]
    assert sb.moto_calls() == []
    assert not (sb.docker_config / "config.json").exists()


def test_live_table_on_a_terminal(sb: Sandbox) -> None:
    """On a terminal the live table shows one row per registry, ending in ok."""
    hosts = [ecr_host(PROD, r) for r in ("us-west-2", "eu-west-1")]
    _setup(sb, {h: moto_password(PROD) for h in hosts})
    main, secondary = pty.openpty()
    env = sb.env(TERM="xterm", COLUMNS="200", LINES="50")
    proc = subprocess.Popen(
        sb.wrap([sys.executable, "-m", "runas_async", "ecr", "login", "prod", *hosts]),
        env=env,
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
    )
    os.close(secondary)
    screen = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(main, 65536)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
        elif proc.poll() is not None:
            break
    os.close(main)
    assert proc.wait(10) == 0
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.decode("utf-8", "replace"))
    assert "registry" in text and "state" in text
    for host in hosts:
        assert re.search(rf"{re.escape(host)}.*prod.*ok", text)
    assert "2 logged in" in text
    assert set(sb.docker_auths()) == set(hosts)


def _readme_examples() -> list[str]:
    """Every one-line `runas-async ...` code block of the README (not the synopsis)."""
    blocks = re.findall(r"```\n((?:eval \"\$\()?runas-async [^\n]*)\n```", README.read_text())
    examples = [b for b in blocks if "PROFILE" not in b and "ENDPOINT" not in b]
    assert len(examples) >= 8
    return examples


def _readme_toml() -> str:
    blocks = re.findall(r"```toml\n(.*?)```", README.read_text(), re.S)
    (toml,) = [b for b in blocks if 'profile = "prod"\nregistries = ["210987654321"' in b]
    return str(toml)


@pytest.mark.parametrize("command", _readme_examples())
def test_readme_examples_run_as_shown(sb: Sandbox, command: str) -> None:
    """Every `runas-async` example in the README runs as shown against the sandbox."""
    from tests.ecr_public import ECR_PUBLIC_PASSWORD

    registries = {ecr_host(DEV, "us-east-2"): moto_password(DEV)}
    for region in ("us-west-2", "eu-west-1"):
        registries[ecr_host(PROD, region)] = moto_password(PROD)
    registries["public.ecr.aws"] = ECR_PUBLIC_PASSWORD
    _setup(sb, registries)
    cwd = sb.workdir / "readme"
    cwd.mkdir(exist_ok=True)
    (cwd / "registries.toml").write_text(_readme_toml())
    env = sb.env(PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    done = sb.run(["sh", "-c", f'cd "{cwd}" && {command}'], env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    if " login " in command:
        assert sb.docker_auths()


def test_profile_without_credentials_fails_its_registry(sb: Sandbox) -> None:
    """A profile with nothing to sign with: its registry fails (exit 1, known only once
    botocore's chain has looked everywhere), the row says how to provide credentials."""
    sb.write_aws_config({"bare": {"region": "us-east-1"}})
    done = sb.run_tool(["ecr", "login", "bare", "-o", "json"])
    assert done.returncode == 1, done.stdout + done.stderr
    (row,) = json.loads(done.stdout)["results"]
    assert row["status"] == "failed"
    assert "'bare'" in row["error"] and "AWS_ACCESS_KEY_ID" in row["error"]
    assert "Traceback" not in done.stderr
    assert sb.calls("ecr")["GetAuthorizationToken"] == 0
    assert sb.docker_auths() == {}


def test_missing_source_profile_exits_2_before_any_request(sb: Sandbox) -> None:
    """A role whose source_profile does not exist: exit 2, one line naming both, no request."""
    sb.write_aws_config(
        {
            "orphan": {
                "region": "us-east-1",
                "role_arn": f"arn:aws:iam::{PROD}:role/x",
                "source_profile": "gone",
            }
        }
    )
    done = sb.run_tool(["ecr", "login", "orphan", "-o", "json"])
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1
    assert "'orphan'" in done.stderr and "'gone'" in done.stderr
    assert sb.moto_calls() == []
    assert sb.docker_auths() == {}


CRED_HELPER = """#!{python}
# A docker credential helper keeping its secrets in one JSON file, under a lock
# (as a real keychain serialises its writers).
import fcntl, json, os, sys
store = os.environ["FAKE_HELPER_STORE"]
with open(store + ".lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    data = json.load(open(store)) if os.path.exists(store) else {{}}
    verb, payload = sys.argv[1], sys.stdin.read()
    if verb == "store":
        entry = json.loads(payload)
        data[entry["ServerURL"]] = {{"Username": entry["Username"], "Secret": entry["Secret"]}}
    elif verb == "get":
        if payload.strip() not in data:
            print("credentials not found in native keychain")
            sys.exit(1)
        print(json.dumps({{"ServerURL": payload.strip(), **data[payload.strip()]}}))
    elif verb == "erase":
        data.pop(payload.strip(), None)
    elif verb == "list":
        print(json.dumps({{k: v["Username"] for k, v in data.items()}}))
    json.dump(data, open(store, "w"))
"""


def test_creds_store_keeps_working(sb: Sandbox) -> None:
    """With "credsStore" set, secrets go to the helper, config.json keeps it; logout erases."""
    hosts = [ecr_host(PROD, r) for r in ("us-west-2", "eu-west-1", "ap-south-1")]
    _setup(sb, {h: moto_password(PROD) for h in hosts})
    bin_dir = sb.workdir / "helper-bin"
    bin_dir.mkdir(exist_ok=True)
    helper = bin_dir / "docker-credential-fake"
    helper.write_text(CRED_HELPER.format(python=sys.executable))
    helper.chmod(0o755)
    store = sb.workdir / "helper-store.json"
    store.unlink(missing_ok=True)
    sb.docker_config.mkdir(parents=True)
    config = sb.docker_config / "config.json"
    config.write_text(json.dumps({"credsStore": "fake", "auths": {"ghcr.io": {}}}))
    env = sb.env(PATH=f"{bin_dir}:{os.environ['PATH']}", FAKE_HELPER_STORE=str(store))
    done = sb.run_tool(["ecr", "login", "prod", *hosts], env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    doc = json.loads(config.read_text())
    assert doc["credsStore"] == "fake"
    assert set(doc["auths"]) == {"ghcr.io", *hosts}
    assert all(doc["auths"][h] == {} for h in hosts)  # no secret in the file
    secrets = json.loads(store.read_text())
    assert {h: s["Secret"] for h, s in secrets.items()} == {h: moto_password(PROD) for h in hosts}
    # logout goes through docker, so the helper forgets the secret too
    done = sb.run_tool(["ecr", "logout", "prod", hosts[0]], env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert set(json.loads(store.read_text())) == set(hosts[1:])
    assert set(json.loads(config.read_text())["auths"]) == {"ghcr.io", *hosts[1:]}
