"""The sandbox really does what the other tests rely on: registries, namespace, moto."""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import os
import socket
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol, cast

import botocore.session
import pytest

from tests import sandbox as sandbox_module
from tests.sandbox import (
    DEFAULT_ACCOUNT,
    STATIC_KEYS,
    Sandbox,
    docker_auths,
    ecr_host,
    moto_password,
)

OTHER_ACCOUNT = "210987654321"
HOST = ecr_host(OTHER_ACCOUNT, "us-east-2")
ROLE_ARN = f"arn:aws:iam::{OTHER_ACCOUNT}:role/x"


class EcrClient(Protocol):
    def get_authorization_token(self) -> Mapping[str, Any]: ...


class StsClient(Protocol):
    def assume_role(self, *, RoleArn: str, RoleSessionName: str) -> Mapping[str, Any]: ...


@contextlib.contextmanager
def client(
    service: str,
    region: str,
    *,
    profile: str | None = None,
    endpoint_url: str | None = None,
    keys: Mapping[str, str] | None = None,
) -> Iterator[Any]:
    """A botocore client, closed afterwards (its connection pool would warn otherwise)."""
    keys = keys or {}
    session = botocore.session.Session(profile=profile)
    made = session.create_client(
        service,
        region_name=region,
        endpoint_url=endpoint_url,
        aws_access_key_id=keys.get("aws_access_key_id"),
        aws_secret_access_key=keys.get("aws_secret_access_key"),
        aws_session_token=keys.get("aws_session_token"),
    )
    try:
        yield made
    finally:
        made.close()


def token(response: Mapping[str, Any]) -> tuple[str, str]:
    """(decoded "user:password", proxyEndpoint) of a GetAuthorizationToken response."""
    (data,) = response["authorizationData"]
    return base64.b64decode(data["authorizationToken"]).decode(), data["proxyEndpoint"]


def test_docker_login_with_the_right_password_is_stored(sb: Sandbox) -> None:
    """docker login through wrap() reaches the registry by its ECR name and stores the entry."""
    registry = sb.add_registry(HOST, moto_password(OTHER_ACCOUNT))

    done = sb.docker_login(HOST, moto_password(OTHER_ACCOUNT))

    assert (done.returncode, done.stdout.strip()) == (0, "Login Succeeded"), done.stderr
    assert docker_auths(sb.docker_config) == {HOST: f"AWS:{moto_password(OTHER_ACCOUNT)}"}
    # loopback only; other sandboxes running at once may hold the lower addresses
    assert ipaddress.IPv4Address(registry.address) in ipaddress.IPv4Network("127.0.0.0/8")


def test_docker_login_with_a_wrong_password_is_refused(sb: Sandbox) -> None:
    """A wrong password gets rc 1 and a last stderr line naming 401 Unauthorized."""
    sb.add_registry(HOST, moto_password(OTHER_ACCOUNT))

    done = sb.docker_login(HOST, "not-the-password")

    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"login attempt to http://{HOST}/v2/ failed with status: 401 Unauthorized"
    )
    assert docker_auths(sb.docker_config) == {}


def test_set_password_takes_effect_at_once(sb: Sandbox) -> None:
    """After set_password the new password logs in and the old one is refused."""
    registry = sb.add_registry(HOST, moto_password(OTHER_ACCOUNT))

    sb.set_password(HOST, "rotated")

    assert registry.status("AWS", "rotated") == 200
    assert registry.status("AWS", moto_password(OTHER_ACCOUNT)) == 401
    assert sb.docker_login(HOST, "rotated").returncode == 0
    assert sb.docker_login(HOST, moto_password(OTHER_ACCOUNT)).returncode == 1


def test_preserving_passwords_puts_rotated_passwords_back(sb: Sandbox) -> None:
    """Passwords changed inside preserving_passwords() (as sb wraps each test) are restored."""
    registry = sb.add_registry(HOST, moto_password(OTHER_ACCOUNT))

    with sb.preserving_passwords():
        sb.set_password(HOST, "rotated", username="someone")
        sb.add_registry(HOST, "rotated again")

    assert (registry.username, registry.password) == ("AWS", moto_password(OTHER_ACCOUNT))
    assert registry.status("AWS", moto_password(OTHER_ACCOUNT)) == 200
    assert registry.status("someone", "rotated") == 401


def test_adding_a_host_again_reuses_its_registry(sb: Sandbox) -> None:
    """A second add_registry for a host returns the running registry with the new password."""
    first = sb.add_registry(HOST, moto_password(OTHER_ACCOUNT))

    again = sb.add_registry(HOST, "other")

    assert again is first
    assert again.process.poll() is None
    assert again.status("AWS", "other") == 200
    assert sb.hosts_file.read_text().count(f"\t{HOST}\n") == 1


def test_many_registries_each_get_their_own_address(sb: Sandbox) -> None:
    """add_registries starts one registry per host, each on its own 127.0.0.N:80."""
    hosts = [ecr_host(f"1000000000{n:02d}", "eu-west-1") for n in range(3)]

    registries = sb.add_registries([(host, moto_password(host[:12])) for host in hosts])

    assert len({registry.address for registry in registries}) == len(hosts)
    for host in hosts:
        assert sb.docker_login(host, moto_password(host[:12])).returncode == 0
    assert docker_auths(sb.docker_config) == {h: f"AWS:{moto_password(h[:12])}" for h in hosts}


def test_a_registry_whose_address_is_taken_moves_to_a_free_one(
    sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A registry that loses its address to another sandbox's restarts on a free one."""
    stranger = sb.add_registry(HOST, moto_password(OTHER_ACCOUNT))
    monkeypatch.setattr(sandbox_module, "_address_taken", lambda address: False)

    with Sandbox(tmp_path / "other") as other:
        registry = other.add_registry(HOST, "other-password")
        failed = [
            log.parent.name
            for log in (other.workdir / "registries").glob("*/registry.log")
            if "address already in use" in log.read_text()
        ]

        assert failed
        assert registry.address not in failed
        assert registry.status("AWS", "other-password") == 200
    assert stranger.status("AWS", "other-password") == 401


def test_hosts_mapping_exists_only_inside_the_namespace(sb: Sandbox) -> None:
    """Inside wrap() the ECR name resolves to the registry; the real /etc/hosts is untouched."""
    before = Path("/etc/hosts").read_bytes()
    registry = sb.add_registry(HOST, moto_password(OTHER_ACCOUNT))
    resolve = f"import socket; print(socket.gethostbyname({HOST!r}))"

    inside = sb.run([sys.executable, "-c", resolve])

    assert (inside.returncode, inside.stdout.strip()) == (0, registry.address), inside.stderr
    assert Path("/etc/hosts").read_bytes() == before
    assert HOST.encode() not in before


def test_unknown_names_fail_fast_inside_the_namespace(sb: Sandbox) -> None:
    """A name missing from the hosts file fails quickly: DNS goes only to a dead loopback port."""
    resolve = "import socket; socket.getaddrinfo('absent.dkr.ecr.us-east-1.amazonaws.com', 443)"

    started = time.monotonic()
    inside = sb.run([sys.executable, "-c", resolve])

    assert inside.returncode == 1
    assert "gaierror" in inside.stderr
    assert time.monotonic() - started < 5


def test_env_drops_the_developers_settings(sb: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """env() drops AWS_*, DOCKER_*, proxies, NO_COLOR and MFA_CODE and points at the sandbox."""
    for name in ("AWS_PROFILE", "DOCKER_CONFIG", "https_proxy", "NO_PROXY", "NO_COLOR", "MFA_CODE"):
        monkeypatch.setenv(name, "leaked")

    env = sb.env(EXTRA="1")

    assert "leaked" not in env.values()
    assert env["AWS_ENDPOINT_URL"] == sb.moto_url
    assert env["AWS_CONFIG_FILE"] == str(sb.workdir / "aws" / "config")
    assert env["AWS_SHARED_CREDENTIALS_FILE"] == str(sb.workdir / "aws" / "credentials")
    assert env["DOCKER_CONFIG"] == str(sb.workdir / "docker")
    assert Path(env["HOME"]).is_dir()
    assert (env["AWS_EC2_METADATA_DISABLED"], env["EXTRA"]) == ("true", "1")


def test_moto_token_for_static_keys_is_for_the_default_account(sb: Sandbox) -> None:
    """GetAuthorizationToken with static keys gives AWS:123456789012-auth-token."""
    keys = {"aws_access_key_id": "AKIDSTATIC", "aws_secret_access_key": "secret"}
    with client("ecr", "us-east-1", endpoint_url=sb.moto_url, keys=keys) as ecr:
        credentials, endpoint = token(cast(EcrClient, ecr).get_authorization_token())

    assert credentials == f"AWS:{moto_password(DEFAULT_ACCOUNT)}"
    assert endpoint == f"https://{ecr_host(DEFAULT_ACCOUNT, 'us-east-1')}"
    assert sb.calls() == {"GetAuthorizationToken": 1}
    assert sb.moto_calls()[0].access_key == "AKIDSTATIC"


def test_moto_token_for_an_assumed_role_is_for_the_roles_account(sb: Sandbox) -> None:
    """Credentials from AssumeRole get a token for the role's account, not the caller's."""
    keys = {"aws_access_key_id": "AKIDSTATIC", "aws_secret_access_key": "secret"}
    with client("sts", "us-east-1", endpoint_url=sb.moto_url, keys=keys) as sts:
        assumed = cast(StsClient, sts).assume_role(RoleArn=ROLE_ARN, RoleSessionName="test")[
            "Credentials"
        ]
    role_keys = {
        "aws_access_key_id": assumed["AccessKeyId"],
        "aws_secret_access_key": assumed["SecretAccessKey"],
        "aws_session_token": assumed["SessionToken"],
    }
    with client("ecr", "us-east-2", endpoint_url=sb.moto_url, keys=role_keys) as ecr:
        credentials, endpoint = token(cast(EcrClient, ecr).get_authorization_token())

    assert credentials == f"AWS:{moto_password(OTHER_ACCOUNT)}"
    assert endpoint == f"https://{HOST}"
    assert sb.calls() == {"AssumeRole": 1, "GetAuthorizationToken": 1}
    assert sb.calls("sts") == {"AssumeRole": 1}


def test_profile_with_role_arn_and_source_profile_resolves_through_moto(
    sb: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A profile with role_arn and source_profile gets a token for the role's account."""
    sb.write_aws_config(
        {
            "default": {"region": "us-east-1", **STATIC_KEYS},
            "dev": {
                "role_arn": ROLE_ARN,
                "source_profile": "default",
            },
        }
    )
    for name, value in sb.env().items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)

    with client("ecr", "us-east-2", profile="dev") as ecr:
        credentials, _ = token(cast(EcrClient, ecr).get_authorization_token())

    assert credentials == f"AWS:{moto_password(OTHER_ACCOUNT)}"
    assert sb.calls() == {"AssumeRole": 1, "GetAuthorizationToken": 1}


def test_closing_a_sandbox_stops_its_registries_and_removes_its_files(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """close() ends every registry it started and deletes what it wrote, not the given dir."""
    taken = {registry.address for registry in sandbox.registries.values()}
    with Sandbox(tmp_path) as own:
        registry = own.add_registry(ecr_host("111111111111", "ap-south-1"), "pw")
        assert registry.address not in taken
        own.write_aws_config({"default": {"region": "ap-south-1"}})
        moto_host, moto_port = own.moto_url.removeprefix("http://").split(":")

    assert registry.process.returncode is not None
    assert list(tmp_path.iterdir()) == []
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.connect((moto_host, int(moto_port)))


def test_xdist_workers_of_one_run_get_blocks_of_their_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each pytest-xdist worker of a run (same controller) has its own loopback block, in
    range; outside xdist the block is the process's own, as before."""
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    assert sandbox_module._block() == 20 + os.getpid() % 230
    blocks = set()
    for worker in range(8):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", f"gw{worker}")
        blocks.add(sandbox_module._block())
    assert len(blocks) == 8 and all(20 <= b < 250 for b in blocks), blocks
