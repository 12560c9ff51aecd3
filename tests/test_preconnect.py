"""Connections opened at start-up: where they go, that botocore agrees, that they are used."""

from __future__ import annotations

import asyncio
import base64
import configparser
import json
import os
import socket
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiobotocore.session import AioSession

from runas_async.aws import preconnect
from runas_async.aws import tokens as aws
from runas_async.aws.credentials import CredentialResolver
from runas_async.core.endpoints import parse_endpoints
from runas_async.core.models import TokenKey
from runas_async.core.partitions import load_partitions
from runas_async.core.plan import LoginSpec
from tests.faults import wait_until
from tests.relay import TcpRelay
from tests.sandbox import STATIC_KEYS, Moto, moto_password

PARTITIONS = load_partitions()
ROLE = {"role_arn": "arn:aws:iam::210987654321:role/r", "source_profile": "src"}


def _config(tmp_path: Path, profiles: Mapping[str, Mapping[str, str]]) -> Path:
    path = tmp_path / "config"
    parser = configparser.RawConfigParser()
    for name, values in profiles.items():
        parser[name if name == "default" else f"profile {name}"] = dict(values)
    with path.open("w") as f:
        parser.write(f)
    return path


def _targets(
    tmp_path: Path,
    profile: Mapping[str, str],
    env: Mapping[str, str] | None = None,
    endpoints: tuple[str, ...] = (),
    region: str | None = None,
) -> list[tuple[str, int]]:
    path = _config(tmp_path, {"p": profile, "src": {"region": "us-east-1", **STATIC_KEYS}})
    spec = LoginSpec("p", None, tuple(parse_endpoints(list(endpoints), PARTITIONS)))
    return preconnect.targets(
        [spec], {"AWS_CONFIG_FILE": str(path), **(env or {})}, PARTITIONS, region
    )


STS_E2 = ("sts.us-east-2.amazonaws.com", 443)
ECR_E2 = ("api.ecr.us-east-2.amazonaws.com", 443)


@pytest.mark.parametrize(
    ("profile", "env", "endpoints", "expected"),
    [
        pytest.param({**ROLE, "region": "us-east-2"}, {}, (), [STS_E2, ECR_E2], id="role"),
        pytest.param(
            {**ROLE, "region": "cn-north-1"},
            {},
            (),
            [
                ("sts.cn-north-1.amazonaws.com.cn", 443),
                ("api.ecr.cn-north-1.amazonaws.com.cn", 443),
            ],
            id="china",
        ),
        pytest.param(
            {**ROLE, "region": "us-east-2"},
            {},
            ("123456789012.dkr.ecr.eu-west-1.amazonaws.com", "123456789012"),
            [STS_E2, ("api.ecr.eu-west-1.amazonaws.com", 443), ECR_E2],
            id="hosts-and-accounts",
        ),
        pytest.param(
            {**ROLE, "region": "us-east-2"},
            {},
            ("public.ecr.aws/x",),
            [STS_E2],
            id="public-only",
        ),
        pytest.param(
            {**ROLE, "region": "us-east-2"},
            {"AWS_DEFAULT_REGION": "eu-west-2", "AWS_REGION": "eu-west-3"},
            (),
            [("sts.eu-west-2.amazonaws.com", 443), ("api.ecr.eu-west-3.amazonaws.com", 443)],
            id="botocore-reads-AWS_DEFAULT_REGION-we-read-AWS_REGION",
        ),
        pytest.param(
            {**ROLE, "region": "us-east-2"},
            {
                "AWS_ENDPOINT_URL": "http://127.0.0.1:5000/",
                "AWS_ENDPOINT_URL_ECR": "https://e:8443",
            },
            (),
            [("127.0.0.1", 5000), ("e", 8443)],
            id="endpoint-urls",
        ),
        pytest.param(
            {**ROLE, "region": "us-east-2"},
            {
                "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
                "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true",
            },
            (),
            [STS_E2, ECR_E2],
            id="endpoint-urls-ignored",
        ),
        pytest.param({"region": "us-east-2", **STATIC_KEYS}, {}, (), [ECR_E2], id="static-keys"),
        pytest.param({**ROLE}, {}, (), [], id="no-region"),
        pytest.param(
            {**ROLE, "region": "us-east-2", "mfa_serial": "arn:aws:iam::1:mfa/u"},
            {},
            (),
            [ECR_E2],
            id="mfa",
        ),
        pytest.param(
            {
                "role_arn": ROLE["role_arn"],
                "credential_source": "Environment",
                "region": "us-east-2",
            },
            {},
            (),
            [ECR_E2],
            id="credential-source",
        ),
        pytest.param(
            {**ROLE, "region": "us-east-2", "endpoint_url": "https://x"},
            {},
            (),
            [],
            id="endpoint-in-config",
        ),
        pytest.param(
            {**ROLE, "region": "us-east-2"}, {"AWS_USE_FIPS_ENDPOINT": "true"}, (), [], id="fips"
        ),
        pytest.param(
            {**ROLE, "region": "us-east-2"},
            {"AWS_STS_REGIONAL_ENDPOINTS": "legacy"},
            (),
            [ECR_E2],
            id="legacy-sts",
        ),
        pytest.param(
            {**ROLE, "region": "us-east-2"},
            {"HTTPS_PROXY": "http://proxy:3128"},
            (),
            [],
            id="proxy",
        ),
    ],
)
def test_targets_are_guessed_only_when_sure(
    tmp_path: Path,
    profile: Mapping[str, str],
    env: Mapping[str, str],
    endpoints: tuple[str, ...],
    expected: list[tuple[str, int]],
) -> None:
    """STS for a plain role, ECR per region of the run; nothing for anything unusual."""
    assert _targets(tmp_path, profile, env, endpoints) == expected


def test_region_flag_is_the_region_of_accounts(tmp_path: Path) -> None:
    """--region places the profile's own registry (as the plan does), not STS."""
    targets = _targets(tmp_path, {**ROLE, "region": "us-east-2"}, region="ap-south-1")
    assert targets == [STS_E2, ("api.ecr.ap-south-1.amazonaws.com", 443)]


@pytest.mark.parametrize("region", ["us-east-2", "eu-central-1", "cn-north-1", "us-gov-west-1"])
async def test_guesses_match_the_endpoints_botocore_uses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, region: str
) -> None:
    """The hosts guessed are the ones botocore's clients of that profile call."""
    path = _config(tmp_path, {"p": {**ROLE, "region": region}, "src": dict(STATIC_KEYS)})
    for name in ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(path))
    session = AioSession(profile="p")
    hosts = []
    for service in ("sts", "ecr"):
        async with session.create_client(service, **_keys()) as client:
            hosts.append((urllib.parse.urlsplit(client.meta.endpoint_url).hostname, 443))
    assert _targets(tmp_path, {**ROLE, "region": region}) == hosts


def _keys() -> dict[str, Any]:
    return {
        "aws_access_key_id": STATIC_KEYS["aws_access_key_id"],
        "aws_secret_access_key": STATIC_KEYS["aws_secret_access_key"],
    }


async def test_assume_role_and_token_use_the_start_up_connections(
    moto: Moto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A role profile's AssumeRole and token call go over the two connections opened early."""
    url = urllib.parse.urlsplit(moto.moto_url)
    with TcpRelay(url.hostname or "", url.port or 0) as relay:
        moto.write_aws_config(
            {
                "role": {**ROLE, "region": "us-east-2"},
                "src": {"region": "us-east-2", **STATIC_KEYS},
            }
        )
        env = moto.env(AWS_ENDPOINT_URL=relay.url)
        for name, value in env.items():
            if name.startswith(("AWS_", "HOME")):
                monkeypatch.setenv(name, value)
        spec = LoginSpec("role", None)
        pre = preconnect.start([spec], env, PARTITIONS)
        assert pre.targets == [("127.0.0.1", relay.port)] * 2
        assert wait_until(lambda: relay.accepted == 2, 10)
        provider = aws.AwsTokenProvider(
            {"role": aws.new_session("role")},
            resolver=CredentialResolver(),
            env=env,
            preconnected=pre,
        )
        token = await provider.token(TokenKey("role", "us-east-2"))
        pre.close()
        assert token.password == moto_password("210987654321")
        assert relay.accepted == 2  # no connection of its own: both were taken
        assert pre.targets == []
    assert moto.calls("sts")["AssumeRole"] == 1  # the role profile: start-up STS connection
    assert moto.calls("ecr") == {"GetAuthorizationToken": 1}


def test_unused_connections_are_closed(moto: Moto) -> None:
    """close() closes what nobody took."""
    url = urllib.parse.urlsplit(moto.moto_url)
    with TcpRelay(url.hostname or "", url.port or 0) as relay:
        pre = preconnect.Preconnected()
        pre.open("127.0.0.1", relay.port)
        pre.open("127.0.0.1", relay.port)
        assert wait_until(lambda: relay.accepted == 2, 10)
        pre.close()
        assert wait_until(lambda: relay.closed == 2, 10)
        assert pre.take("127.0.0.1", relay.port) is None


async def test_cancelled_wait_for_a_start_up_connection_is_quiet(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A wait cancelled (say, Ctrl-C) while the connect is still on its way leaves no error.

    The connect is held back by a stand-in (loopback connects too fast to catch one under
    way); the thread must still hand its socket over, not fail on a cancelled future.
    """
    release = threading.Event()
    sockets: list[socket.socket] = []

    def slow_connect(address: tuple[str, int], timeout: float) -> socket.socket:
        release.wait(10)
        sockets.append(socket.socket())
        return sockets[-1]

    monkeypatch.setattr(socket, "create_connection", slow_connect)
    pre = preconnect.Preconnected()
    pre.open("127.0.0.1", 9)
    taken = pre.take("127.0.0.1", 9)
    assert taken is not None
    with anyio.move_on_after(0.05) as scope:
        await asyncio.wrap_future(taken)
    assert scope.cancelled_caught
    release.set()
    assert wait_until(taken.done, 10)
    assert taken.result() is sockets[0]
    sockets[0].close()


HEAVY = ("aiobotocore", "aiohttp", "botocore", "rich")
"""Modules whose import the start-up connections are meant to overlap."""

RECORD_IMPORTS_AT_START = f"""\
import json, sys
from runas_async.cli import main as cli
from runas_async.aws import preconnect

seen = []
real_start = preconnect.start

def start(*args, **kwargs):
    seen.append(sorted(m for m in sys.modules if m.partition(".")[0] in {HEAVY!r}))
    return real_start(*args, **kwargs)

preconnect.start = start
status = cli.main(sys.argv[1:])
print(json.dumps({{"status": status, "seen": seen}}))
"""
"""Runs ``cli.main(argv)`` and prints the heavy modules loaded when preconnect.start was called."""


STAND_IN_DOCKER = """\
#!{python}
import base64, json, os, sys
auth = base64.b64encode(("AWS:" + sys.stdin.read()).encode()).decode()
path = os.path.join(os.environ["DOCKER_CONFIG"], "config.json")
json.dump({{"auths": {{sys.argv[-1]: {{"auth": auth}}}}}}, open(path, "w"))
"""
"""``docker login ... HOST`` that writes the entry docker would, without asking a registry."""


def test_no_heavy_module_is_loaded_before_the_start_up_connections(
    moto: Moto, tmp_path: Path
) -> None:
    """When `ecr login ROLE` opens its start-up connections, none of HEAVY is imported yet."""
    moto.write_aws_config(
        {"role": {**ROLE, "region": "us-east-2"}, "src": {"region": "us-east-2", **STATIC_KEYS}}
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"  # a client that logs in without a registry
    docker.write_text(STAND_IN_DOCKER.format(python=sys.executable))
    docker.chmod(0o755)
    env = moto.env(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run(
        [sys.executable, "-c", RECORD_IMPORTS_AT_START, "ecr", "login", "role", "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["status"] == 0, done.stdout
    assert report["seen"] == [[]]  # called once, with nothing heavy imported
    assert moto.calls("sts")["AssumeRole"] == 1  # the role profile: start-up STS connection


# --- --client builtin: the registries' start-up connections -------------------------------

ACCOUNT_B = "111122223333"


@pytest.mark.parametrize(
    ("profile", "endpoints", "region", "env"),
    [
        pytest.param(
            {"region": "eu-west-1"}, ("111122223333",), None, {}, id="account-in-profile-region"
        ),
        pytest.param(
            {"region": "eu-west-1"}, ("111122223333",), "ap-south-1", {}, id="account---region"
        ),
        pytest.param(
            {"region": "eu-west-1"},
            ("111122223333",),
            None,
            {"AWS_REGION": "us-west-2"},
            id="account-AWS_REGION",
        ),
        pytest.param(
            {"region": "eu-west-1"},
            ("111122223333",),
            None,
            {"AWS_DEFAULT_REGION": "ca-central-1"},
            id="account-AWS_DEFAULT_REGION",
        ),
        pytest.param(
            {"region": "eu-west-1"},
            ("111122223333.dkr.ecr.us-east-2.amazonaws.com",),
            "ap-south-1",
            {},
            id="full-host",
        ),
        pytest.param({"region": "eu-west-1"}, ("public.ecr.aws",), None, {}, id="public"),
        pytest.param({**ROLE, "region": "eu-north-1"}, (), None, {}, id="role-own-registry"),
        pytest.param({**ROLE, "region": "eu-north-1"}, (), "us-west-1", {}, id="role-own---region"),
        pytest.param({"region": "cn-north-1"}, ("111122223333",), None, {}, id="china-partition"),
        pytest.param({}, ("111122223333",), None, {}, id="no-region"),
    ],
)
def test_registry_connections_go_only_to_hosts_of_the_plan(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    profile: Mapping[str, str],
    endpoints: tuple[str, ...],
    region: str | None,
    env: Mapping[str, str],
) -> None:
    """Every registry host connected at start-up is a host the plan logs into (as botocore
    and the planner decide it), whatever sets the region."""
    import io

    from runas_async.cli.context import Context
    from runas_async.core.options import Targets

    path = _config(tmp_path, {"p": profile, "src": {"region": "us-east-1", **STATIC_KEYS}})
    environ = {"AWS_CONFIG_FILE": str(path), **env}
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    targets = Targets(profile="p", endpoints=endpoints, region=region)
    ctx = Context(environ, io.StringIO(), targets=targets)
    hosts = preconnect.registry_hosts(ctx.specs, environ, PARTITIONS, region, ctx.files)
    try:
        plan = ctx.plan
    except Exception:  # the plan refuses it (no region): nothing may be connected either
        assert hosts == []
        return
    planned = {t.registry.host for t in plan.targets if t.registry is not None}
    assert set(hosts) <= planned
    if endpoints or "role_arn" in profile:
        assert hosts, "a host the files name plainly is connected at start-up"


def test_no_registry_connections_behind_a_proxy(tmp_path: Path) -> None:
    """With a proxy in the environment, the pool connects through it: nothing ahead."""
    path = _config(tmp_path, {"p": {"region": "eu-west-1"}})
    env = {"AWS_CONFIG_FILE": str(path), "HTTPS_PROXY": "http://127.0.0.1:3128"}
    from runas_async.aws.config import read

    spec = LoginSpec("p", None, tuple(parse_endpoints(["111122223333"], PARTITIONS)))
    assert preconnect.registry_hosts([spec], env, PARTITIONS, None, read(env)) == []


async def test_credentials_never_go_over_another_hosts_start_up_connection(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Two registries on port 80, both connected at start-up: the login to one takes its own
    connection, and the other (opened first) never sees a byte of its credentials."""
    import logging

    from runas_async.auth.registry import BuiltinRunner
    from runas_async.aws._transport import RegistryConnections
    from runas_async.core.models import Registry, Token
    from tests.registries import StandIn
    from tests.sandbox import BLOCK

    caplog.set_level(logging.DEBUG, logger="runas_async")
    other_address, host = f"127.{BLOCK}.67.1", f"127.{BLOCK}.67.2"
    with StandIn(other_address, 80) as other, StandIn(host, 80) as registry:
        pre = preconnect.Preconnected()
        pre.open(other_address, 80)  # first: a pool taking sockets by port would take this
        pre.open_registry(host)
        runner = BuiltinRunner(
            None, None, {}, connections=4, keep_secrets=True, opened=RegistryConnections(pre)
        )

        async def token() -> Token:
            return Token("AWS", "the-token")

        try:
            async with runner:
                await runner.login(Registry(host, ACCOUNT_B, "us-east-1"), token)
        finally:
            pre.close()
        assert runner.secrets == {host: ("AWS", "the-token")}
        assert [r.authorization for r in registry.requests] == [
            "Basic " + base64.b64encode(b"AWS:the-token").decode()
        ]
        assert other.requests == []
    assert "using the connection opened at start-up" in caplog.text
    assert "HTTPS failed" in caplog.text  # then plain HTTP at once, on the open connection


async def test_on_wire_is_set_only_once_a_start_up_socket_is_adopted(
    moto: Moto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wire signal (which lets clients be made and spawned) comes after the start-up
    socket is adopted, not before: work it releases cannot run in the adoption's awaits,
    ahead of the request's bytes."""
    from runas_async.aws import _transport

    url = urllib.parse.urlsplit(moto.moto_url)
    with TcpRelay(url.hostname or "", url.port or 0) as relay:
        moto.write_aws_config({"dev": {"region": "us-east-2", **STATIC_KEYS}})
        env = moto.env(AWS_ENDPOINT_URL=relay.url)
        for name, value in env.items():
            if name.startswith(("AWS_", "HOME")):
                monkeypatch.setenv(name, value)
        pre = preconnect.Preconnected()
        pre.open("127.0.0.1", relay.port)
        assert wait_until(lambda: relay.accepted == 1, 10)
        provider = aws.AwsTokenProvider({"dev": aws.new_session("dev")}, env=env, preconnected=pre)
        adopt = _transport._adopt
        wire_when_adopted: list[bool] = []

        async def adopting(*args: Any) -> Any:
            adopted = await adopt(*args)
            wire_when_adopted.append(provider.on_wire.is_set())
            return adopted

        monkeypatch.setattr(_transport, "_adopt", adopting)
        try:
            await provider.token(TokenKey("dev", "us-east-2"))
        finally:
            pre.close()
        assert relay.accepted == 1  # the start-up connection carried the call
    assert wire_when_adopted == [False]
    assert provider.on_wire.is_set()


def test_gc_is_off_through_the_heavy_imports_then_frozen_and_on(moto: Moto, tmp_path: Path) -> None:
    """The console script starts with the collector off; once the heavy modules are imported
    and the first request's clients made (it has left), what exists is frozen and
    collection resumes."""
    moto.write_aws_config(
        {"role": {**ROLE, "region": "us-east-2"}, "src": {"region": "us-east-2", **STATIC_KEYS}}
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(STAND_IN_DOCKER.format(python=sys.executable))
    docker.chmod(0o755)
    env = moto.env(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    probe = (
        "import gc, sys\n"
        "from runas_async.cli import main as cli\n"
        "from runas_async.aws import tokens\n"
        "wired = []\n"
        "connecting = tokens.AwsTokenProvider._connecting\n"
        "def noted(self):\n"
        "    wired.append(gc.isenabled())\n"
        "    connecting(self)\n"
        "tokens.AwsTokenProvider._connecting = noted\n"
        "resume = cli.resume_gc\n"
        "def checked():\n"
        "    sys.stderr.write(f'gc before: {gc.isenabled()} {gc.get_freeze_count()} {wired}\\n')\n"
        "    resume()\n"
        "    sys.stderr.write(f'gc after: {gc.isenabled()} {gc.get_freeze_count() > 0}\\n')\n"
        "cli.resume_gc = checked\n"
        "cli.run()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, "ecr", "login", "role", "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "gc before: False 0 [False" in done.stderr  # the first request left, gc off
    assert "gc after: True True" in done.stderr
