"""Connections opened at start-up: where they go, that botocore agrees, that they are used."""

from __future__ import annotations

import asyncio
import base64
import configparser
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator, Mapping
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
from tests.relay import TcpRelay, tls_certificate, tls_server
from tests.sandbox import BLOCK, STATIC_KEYS, Moto, moto_password

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


@pytest.mark.parametrize("tls", [False, True], ids=["http", "early-tls"])
def test_no_heavy_module_is_loaded_before_the_start_up_connections(
    moto: Moto, tmp_path: Path, tls_cert: Path, tls: bool
) -> None:
    """When `ecr login ROLE` opens its start-up connections, none of HEAVY is imported yet;
    with https endpoints, the connections' early TLS sessions carry the calls."""
    moto.write_aws_config(
        {"role": {**ROLE, "region": "us-east-2"}, "src": {"region": "us-east-2", **STATIC_KEYS}}
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"  # a client that logs in without a registry
    docker.write_text(STAND_IN_DOCKER.format(python=sys.executable))
    docker.chmod(0o755)
    url = urllib.parse.urlsplit(moto.moto_url)
    with TcpRelay(url.hostname or "", url.port or 0, tls=tls_server(tls_cert)) as relay:
        extra = {"AWS_ENDPOINT_URL": relay.url, "AWS_CA_BUNDLE": str(tls_cert)} if tls else {}
        env = moto.env(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", **extra)
        done = subprocess.run(
            [sys.executable, "-c", RECORD_IMPORTS_AT_START]
            + ["ecr", "login", "role", "-o", "json", "--debug"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert relay.accepted == (2 if tls else 0)  # no connection of the calls' own
    assert done.stderr.count("(its TLS too)") == (2 if tls else 0)
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
        "from runas_async import cli\n"
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


# --- early TLS: the handshakes of the AWS connections done at start-up --------------------

OTHER = f"127.{BLOCK}.68.1"
"""A second loopback host with a TLS endpoint of its own (the certificate names it too)."""


@pytest.fixture(scope="module")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A certificate for 127.0.0.1 and OTHER; its file is a CA bundle trusting it."""
    return tls_certificate(tmp_path_factory.mktemp("tls"), "127.0.0.1", OTHER)


def _use_env(monkeypatch: pytest.MonkeyPatch, env: Mapping[str, str]) -> None:
    for name, value in env.items():
        if name.startswith(("AWS_", "HOME", "REQUESTS_")):
            monkeypatch.setenv(name, value)


def _role_config(moto: Moto) -> None:
    moto.write_aws_config(
        {"role": {**ROLE, "region": "us-east-2"}, "src": {"region": "us-east-2", **STATIC_KEYS}}
    )


@contextlib.contextmanager
def _early_tls_start(
    moto: Moto, monkeypatch: pytest.MonkeyPatch, tls_cert: Path, **variables: str | None
) -> Iterator[tuple[TcpRelay, dict[str, str], preconnect.Preconnected]]:
    """A role profile whose calls go to moto through a TLS relay (``tls_cert``), with
    ``variables`` set in its environment (None: taken out), and its start-up connections
    opened (preconnect.start); yields the relay, the environment and the connections."""
    url = urllib.parse.urlsplit(moto.moto_url)
    with TcpRelay(url.hostname or "", url.port or 0, tls=tls_server(tls_cert)) as relay:
        _role_config(moto)
        env = moto.env(AWS_ENDPOINT_URL=relay.url)
        for name, value in variables.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        _use_env(monkeypatch, env)
        yield relay, env, preconnect.start([LoginSpec("role", None)], env, PARTITIONS)


async def _role_token(env: Mapping[str, str], pre: preconnect.Preconnected) -> str:
    provider = aws.AwsTokenProvider(
        {"role": aws.new_session("role")}, resolver=CredentialResolver(), env=env, preconnected=pre
    )
    try:
        token = await provider.token(TokenKey("role", "us-east-2"))
    finally:
        pre.close()
    return token.password


async def test_tls_handshakes_done_at_start_up_carry_the_first_calls(
    moto: Moto,
    tls_cert: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With botocore's plain TLS settings guessed right, the STS and ECR connections finish
    their TLS handshakes before the provider exists, send nothing more until it uses them,
    and carry AssumeRole and the token call."""
    import logging

    caplog.set_level(logging.DEBUG, logger="runas_async")
    with _early_tls_start(moto, monkeypatch, tls_cert, AWS_CA_BUNDLE=str(tls_cert)) as (
        relay,
        env,
        pre,
    ):
        assert wait_until(lambda: relay.accepted == 2, 10)  # both handshakes complete
        assert relay.sent == 0  # nothing but the handshakes
        assert await _role_token(env, pre) == moto_password("210987654321")
        assert relay.accepted == 2  # no connection (nor handshake) of its own
    assert caplog.text.count("using the connection opened at start-up (its TLS too)") == 2
    assert moto.calls("ecr") == {"GetAuthorizationToken": 1}


@pytest.mark.parametrize(
    ("early", "late"),
    [
        # The early guess trusts the certificate, botocore's settings differ: unused.
        pytest.param({}, {"AWS_CA_BUNDLE": "copy"}, id="another-AWS_CA_BUNDLE"),
        # The early handshake refuses the certificate (botocore's would not): not reported.
        pytest.param({"AWS_CA_BUNDLE": "certifi"}, {}, id="early-refused"),
    ],
)
async def test_early_tls_with_other_settings_than_botocores_goes_unused(
    moto: Moto,
    tls_cert: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    early: Mapping[str, str],
    late: Mapping[str, str],
) -> None:
    """An early TLS session set up with other settings than the client's (another CA bundle)
    or that failed is never used: closed, and the calls connect afresh."""
    import logging
    import shutil

    import certifi

    caplog.set_level(logging.DEBUG, logger="runas_async")
    copy = tmp_path / "copy.pem"
    shutil.copy(tls_cert, copy)
    paths = {"cert": str(tls_cert), "copy": str(copy), "certifi": certifi.where()}
    url = urllib.parse.urlsplit(moto.moto_url)
    with TcpRelay(url.hostname or "", url.port or 0, tls=tls_server(tls_cert)) as relay:
        _role_config(moto)
        base = moto.env(AWS_ENDPOINT_URL=relay.url, AWS_CA_BUNDLE=str(tls_cert))
        early_env = {**base, **{k: paths.get(v, v) for k, v in early.items()}}
        late_env = {**base, **{k: paths.get(v, v) for k, v in late.items()}}
        _use_env(monkeypatch, late_env)
        pre = preconnect.start([LoginSpec("role", None)], early_env, PARTITIONS)
        assert pre.targets == [("127.0.0.1", relay.port)] * 2
        assert await _role_token(late_env, pre) == moto_password("210987654321")
        assert relay.sent == 2  # the two calls, each on a connection of its own
        assert wait_until(lambda: relay.closed == relay.accepted, 10)
    assert "(its TLS too)" not in caplog.text
    assert moto.calls("ecr") == {"GetAuthorizationToken": 1}


@pytest.mark.parametrize("other_host", [OTHER, "127.0.0.1"], ids=["other-address", "other-port"])
@pytest.mark.parametrize("take", ["by-host", "any-host"])
async def test_credentials_never_go_over_an_early_tls_connection_to_another_host(
    moto: Moto,
    tls_cert: Path,
    monkeypatch: pytest.MonkeyPatch,
    take: str,
    other_host: str,
) -> None:
    """An early TLS connection to another host and port (opened first, trusted, relaying to
    the same moto) never carries a signed call: not when connections are taken by host and
    port, nor, should taking ever ignore them (``any-host``), when the adoption checks the
    TLS session's host, port and server name against the request's."""
    url = urllib.parse.urlsplit(moto.moto_url)
    server = tls_server(tls_cert)
    upstream = (url.hostname or "", url.port or 0)
    with (
        TcpRelay(*upstream, tls=server) as relay,
        TcpRelay(*upstream, host=other_host, tls=server) as other,
    ):
        _role_config(moto)
        env = moto.env(AWS_ENDPOINT_URL=relay.url, AWS_CA_BUNDLE=str(tls_cert))
        _use_env(monkeypatch, env)
        pre = preconnect.Preconnected()
        pre.open(other_host, other.port, str(tls_cert))  # first: a careless taker takes this
        for _ in range(2):
            pre.open("127.0.0.1", relay.port, str(tls_cert))
        assert wait_until(lambda: relay.accepted == 2 and other.accepted == 1, 10)
        if take == "any-host":
            first = preconnect.Preconnected.take

            def any_host(self: preconnect.Preconnected, host: str, port: int) -> Any:
                for target in self.targets:
                    return first(self, *target)
                return None

            monkeypatch.setattr(preconnect.Preconnected, "take", any_host)
        assert await _role_token(env, pre) == moto_password("210987654321")
        assert other.sent == 0
    assert moto.calls("sts")["AssumeRole"] == 1


async def test_early_tls_is_not_used_by_a_session_that_does_not_verify(
    tls_cert: Path, moto: Moto, caplog: pytest.LogCaptureFixture
) -> None:
    """An HTTP session with verification off (botocore's ``verify=False``) does not take over
    a TLS session that was verified for it: it connects afresh."""
    import logging

    from runas_async.aws import _transport

    caplog.set_level(logging.DEBUG, logger="runas_async")
    url = urllib.parse.urlsplit(moto.moto_url)
    with TcpRelay(url.hostname or "", url.port or 0, tls=tls_server(tls_cert)) as relay:
        pre = preconnect.Preconnected()
        pre.open("127.0.0.1", relay.port, str(tls_cert))
        assert wait_until(lambda: relay.accepted == 1, 10)
        http = _transport.session_class(None, pre)(verify=False)
        async with http:
            assert await http.warm(relay.url)
        pre.close()
        assert wait_until(lambda: relay.accepted == 2, 10)  # a connection of its own
    assert "start-up TLS connection not used: other TLS settings" in caplog.text


def _asyncio_calls_something_else(monkeypatch: pytest.MonkeyPatch) -> None:
    """asyncio as if its SSLProtocol no longer called ``wrap_bio`` (renamed, say)."""
    from runas_async.aws import _transport

    monkeypatch.delattr(_transport._RelayContext, "wrap_bio")


def _python_not_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Python whose asyncio sslproto the relay was not checked against."""
    from runas_async.aws import _transport

    monkeypatch.setattr(_transport, "RELAY_VERSIONS", ())


@pytest.mark.parametrize(
    ("take_away", "said"),
    [
        pytest.param(_asyncio_calls_something_else, "aiohttp or asyncio differs", id="no-wrap_bio"),
        pytest.param(_python_not_checked, "asyncio not checked", id="python-not-checked"),
    ],
)
async def test_without_the_relay_early_tls_connections_are_closed_and_calls_connect(
    moto: Moto,
    tls_cert: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    take_away: Any,
    said: str,
) -> None:
    """The relay of an early TLS session into asyncio (asyncio's private calling sequence)
    taken away: the sessions are closed unused, the calls connect as usual, the token comes."""
    import logging

    caplog.set_level(logging.DEBUG, logger="runas_async")
    take_away(monkeypatch)
    with _early_tls_start(moto, monkeypatch, tls_cert, AWS_CA_BUNDLE=str(tls_cert)) as (
        relay,
        env,
        pre,
    ):
        assert wait_until(lambda: relay.accepted == 2, 10)
        assert await _role_token(env, pre) == moto_password("210987654321")
        assert relay.sent == 2
        assert wait_until(lambda: relay.accepted == 4, 10)  # both calls connected afresh
    assert caplog.text.count(said) == 2
    assert "(its TLS too)" not in caplog.text


async def test_a_certificate_the_bundle_does_not_trust_fails_the_login_as_before(
    moto: Moto,
    tls_cert: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The early handshake verifies as botocore does: a certificate that botocore's CA bundle
    does not trust is refused there (said only at DEBUG), and the call, connecting itself,
    fails with botocore's own error."""
    import logging

    import certifi

    from runas_async.core.errors import RunasError

    caplog.set_level(logging.DEBUG, logger="runas_async")
    with _early_tls_start(moto, monkeypatch, tls_cert, AWS_CA_BUNDLE=certifi.where()) as (
        relay,
        env,
        pre,
    ):
        with pytest.raises(RunasError, match="(?i)certificate|ssl"):
            await _role_token(env, pre)
        assert relay.sent == 0
    assert "start-up connection unusable: SSLCertVerificationError" in caplog.text
    assert "(its TLS too)" not in caplog.text


async def test_early_tls_with_another_default_bundle_than_botocores_goes_unused(
    moto: Moto,
    tls_cert: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With no bundle configured, the early guess loads certifi's; should botocore's default
    be another (here certifi's as botocore keeps it, while the guess's trusts the server),
    the early session is not used and botocore's own verification decides (it refuses)."""
    import logging

    import certifi

    from runas_async.core.errors import RunasError

    caplog.set_level(logging.DEBUG, logger="runas_async")
    monkeypatch.setattr(certifi, "where", lambda: str(tls_cert))  # the guess's, not botocore's
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    with _early_tls_start(moto, monkeypatch, tls_cert, REQUESTS_CA_BUNDLE=None) as (
        relay,
        env,
        pre,
    ):
        assert wait_until(lambda: relay.accepted == 2, 10)  # the guess's handshakes succeed
        with pytest.raises(RunasError, match="(?i)certificate|ssl"):
            await _role_token(env, pre)
        assert relay.sent == 0
    assert "start-up TLS connection not used: another CA bundle" in caplog.text


@pytest.mark.parametrize("close_notify", [True, False], ids=["close-notify", "bare-close"])
async def test_a_relayed_early_tls_connection_sees_the_server_close_it(
    tls_cert: Path, close_notify: bool
) -> None:
    """The relay hands the peer's end of stream to the early session: a response that ends
    when the server closes (no length; with TLS's close_notify or without, as a server that
    just drops the connection) is read to its end, and the connection is lost at once."""
    from runas_async.aws._transport import _RelayContext

    server = socket.create_server(("127.0.0.1", 0))
    context = tls_server(tls_cert)

    def answer_then_close() -> None:
        conn, _ = server.accept()
        with context.wrap_socket(conn, server_side=True) as tls:
            tls.recv(1024)
            tls.sendall(b"HTTP/1.0 200 OK\r\n\r\nthe whole body")
            if close_notify:
                with contextlib.suppress(OSError):
                    tls.unwrap()

    port = server.getsockname()[1]
    threading.Thread(target=answer_then_close, daemon=True).start()
    pre = preconnect.Preconnected()
    pre.open("127.0.0.1", port, tls=str(tls_cert))
    taken = pre.take("127.0.0.1", port)
    assert taken is not None
    sock = await asyncio.wrap_future(taken)
    early = pre.early_tls(sock)
    assert early is not None

    received: list[bytes] = []
    lost = asyncio.get_running_loop().create_future()

    class Client(asyncio.Protocol):
        def data_received(self, data: bytes) -> None:
            received.append(data)

        def connection_lost(self, exc: Exception | None) -> None:
            lost.set_result(exc)

    transport, _ = await asyncio.get_running_loop().create_connection(  # type: ignore[call-overload]
        Client,
        sock=sock,
        ssl=_RelayContext(early),
        server_hostname="127.0.0.1",
    )
    transport.write(b"GET / HTTP/1.0\r\n\r\n")
    try:
        assert await asyncio.wait_for(lost, 10) is None
    finally:
        transport.close()
        server.close()
    assert b"".join(received).endswith(b"the whole body")


def test_start_up_connections_are_opened_without_waiting_for_their_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each start-up connection's thread is started without ``threading.Thread.start``,
    which blocks until the thread runs (1 to 2 ms each of the importing main thread); the
    connections are made all the same."""

    def refused(self: threading.Thread) -> None:
        raise AssertionError("threading.Thread.start on the way to the first request")

    monkeypatch.setattr(threading.Thread, "start", refused)
    count = preconnect.MAX_CONNECTIONS
    servers = [socket.create_server((f"127.{BLOCK}.9.1", 0)) for _ in range(count)]
    try:
        pre = preconnect.Preconnected()
        for server in servers:
            pre.open(*server.getsockname()[:2])
        taken = [pre.take(*server.getsockname()[:2]) for server in servers]
        assert all(future is not None for future in taken)
        sockets = [future.result(10) for future in taken if future is not None]
        assert len(sockets) == count
        for sock in sockets:
            sock.close()
    finally:
        for server in servers:
            server.close()
