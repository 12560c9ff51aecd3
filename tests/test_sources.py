"""Every credential source a CI runner or a laptop has, end to end against loopback stand-ins.

moto serves STS and ECR; tests/credsources.py serves the container endpoint, IMDSv2 and the
SSO portal. Each test runs the real command line in a child process and checks, in moto's
call log, which credentials signed the token request. ``ecr password`` needs no registry, so
these run without root; logging a real docker into a real registry with the same sources is
in test_e2e.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.credsources import (
    KEYS,
    LOGIN_SESSION,
    CredentialSources,
    credential_process,
    sso_profiles,
    write_login_token,
    write_sso_token,
)
from tests.missing import missing, need_program, need_root
from tests.sandbox import DEFAULT_ACCOUNT, STATIC_KEYS, Moto, moto_password

ROLE_ACCOUNT = "210987654321"
POD_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2lnbmF0dXJl"
"""What the EKS Pod Identity agent's token file holds (a service account token)."""
ENV_KEYS = {
    "AWS_ACCESS_KEY_ID": "AKIAENVIRONMENT00001",
    "AWS_SECRET_ACCESS_KEY": "environment-secret",
}


@pytest.fixture(scope="module")
def sources() -> Iterator[CredentialSources]:
    with CredentialSources() as s:
        yield s


def _run(moto: Moto, args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return moto.run_tool(args, env=moto.env(**env))


def _signers(moto: Moto) -> set[str]:
    """The access keys that signed GetAuthorizationToken calls."""
    return {c.access_key for c in moto.moto_calls() if c.operation == "GetAuthorizationToken"}


def _assert_clean(done: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in done.stderr, done.stderr
    for secret in ("-secret", "session-token", STATIC_KEYS["aws_secret_access_key"]):
        assert secret not in done.stderr


def test_environment_keys_with_no_config_file_at_all(moto: Moto) -> None:
    """A CI runner with only AWS_ACCESS_KEY_ID/SECRET and AWS_REGION: no ProfileNotFound."""
    assert not moto.aws_config_file.exists()
    done = _run(moto, ["ecr", "password"], AWS_REGION="eu-west-1", **ENV_KEYS)
    _assert_clean(done)
    assert done.returncode == 0, done.stderr
    assert done.stdout == moto_password(DEFAULT_ACCOUNT) + "\n"
    assert _signers(moto) == {ENV_KEYS["AWS_ACCESS_KEY_ID"]}


def test_environment_keys_win_over_a_config_with_only_a_region(moto: Moto) -> None:
    """`[default] region = ...` and keys in the environment: the environment's keys sign."""
    moto.write_aws_config({"default": {"region": "eu-west-1"}})
    moto.write_aws_credentials({"default": STATIC_KEYS})
    done = _run(moto, ["ecr", "password"], **ENV_KEYS)
    _assert_clean(done)
    assert done.returncode == 0, done.stderr
    assert _signers(moto) == {ENV_KEYS["AWS_ACCESS_KEY_ID"]}


def test_environment_keys_win_over_aws_profile(moto: Moto) -> None:
    """With no PROFILE given, environment keys win over $AWS_PROFILE, as in awscli."""
    moto.write_aws_config({"dev": {"region": "us-east-1", **STATIC_KEYS}})
    done = _run(moto, ["ecr", "password"], AWS_PROFILE="dev", **ENV_KEYS)
    assert done.returncode == 0, done.stderr
    assert _signers(moto) == {ENV_KEYS["AWS_ACCESS_KEY_ID"]}


def _every_other_source(moto: Moto, sources: CredentialSources) -> dict[str, dict[str, str]]:
    """Each source a runner may carry beside keys in its environment, as variables."""
    moto.home.mkdir(parents=True, exist_ok=True)
    oidc = moto.home / "oidc-token"
    oidc.write_text("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOmNpIn0.c2lnbmF0dXJl")
    pod = moto.home / "pod-token"
    pod.write_text(POD_TOKEN)
    moto.write_aws_config(
        {"default": {"region": "us-east-1"}, "dev": {"region": "us-east-1", **STATIC_KEYS}}
    )
    moto.write_aws_credentials({"default": STATIC_KEYS})
    return {
        "profile": {"AWS_PROFILE": "dev"},
        "container": {
            **sources.env_for("container"),
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(pod),
        },
        "web-identity": {
            "AWS_ROLE_ARN": f"arn:aws:iam::{ROLE_ACCOUNT}:role/ci",
            "AWS_WEB_IDENTITY_TOKEN_FILE": str(oidc),
        },
        "imds": sources.env_for("imds"),
    }


@pytest.mark.parametrize(
    "others", ["profile", "container", "web-identity", "imds", "all"], ids=lambda o: o
)
@pytest.mark.parametrize("args", [["ecr", "password"], ["env", "-o", "json"]], ids=" ".join)
def test_explicit_environment_keys_win_over_every_other_source(
    moto: Moto, sources: CredentialSources, others: str, args: list[str]
) -> None:
    """Keys in the environment (as configure-aws-credentials exports them) sign, whatever else
    is set beside them: a profile, the container endpoint (EKS Pod Identity), web identity,
    instance metadata, [default] keys in the files; none of those is even asked
    (aws-actions/amazon-ecr-login#952 used Pod Identity's endpoint instead)."""
    every = _every_other_source(moto, sources)
    chosen = {k: v for group in every.values() for k, v in group.items()}
    if others != "all":
        chosen = every[others]
    before = len(sources.requests)
    keys = {**ENV_KEYS, "AWS_SESSION_TOKEN": "environment-session-token"}
    done = _run(moto, args, **chosen, **keys)
    _assert_clean(done)
    assert done.returncode == 0, done.stderr
    if args[0] == "env":
        assert json.loads(done.stdout)["AccessKeyId"] == ENV_KEYS["AWS_ACCESS_KEY_ID"]
    else:
        assert _signers(moto) == {ENV_KEYS["AWS_ACCESS_KEY_ID"]}
    assert sources.requests[before:] == []
    assert "AssumeRoleWithWebIdentity" not in moto.calls()


def test_an_account_number_where_the_profile_would_be(moto: Moto) -> None:
    """`ecr login 012345678901` on a runner with environment credentials: an ENDPOINT."""
    done = _run(
        moto,
        ["ecr", "login", ROLE_ACCOUNT, "--dry-run", "-o", "json"],
        AWS_REGION="eu-west-1",
        **ENV_KEYS,
    )
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)["results"]
    assert row["registry"] == f"{ROLE_ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com"


def test_web_identity_as_github_and_gitlab_oidc(moto: Moto) -> None:
    """AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE: AssumeRoleWithWebIdentity, the role's token."""
    token = moto.home / "oidc-token"
    moto.home.mkdir(parents=True, exist_ok=True)
    token.write_text("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOmNpIn0.c2lnbmF0dXJl")
    done = _run(
        moto,
        ["ecr", "password"],
        AWS_REGION="us-east-1",
        AWS_ROLE_ARN=f"arn:aws:iam::{ROLE_ACCOUNT}:role/ci",
        AWS_WEB_IDENTITY_TOKEN_FILE=str(token),
        AWS_ROLE_SESSION_NAME="ci-job-1",
    )
    _assert_clean(done)
    assert done.returncode == 0, done.stderr
    assert done.stdout == moto_password(ROLE_ACCOUNT) + "\n"
    assert moto.calls()["AssumeRoleWithWebIdentity"] == 1  # unsigned: no service name


def test_container_credentials_as_ecs_and_codebuild(moto: Moto, sources: CredentialSources) -> None:
    """AWS_CONTAINER_CREDENTIALS_FULL_URI on loopback: its keys sign the token request."""
    done = _run(moto, ["ecr", "password"], AWS_REGION="us-east-1", **sources.env_for("container"))
    _assert_clean(done)
    assert done.returncode == 0, done.stderr
    assert _signers(moto) == {KEYS["container"]}


def test_instance_metadata_imdsv2_as_an_ec2_runner(moto: Moto, sources: CredentialSources) -> None:
    """IMDSv2 (a session token first, then the role's credentials): the instance role signs."""
    before = len(sources.requests)
    done = _run(moto, ["ecr", "password"], AWS_REGION="us-east-1", **sources.env_for("imds"))
    _assert_clean(done)
    assert done.returncode == 0, done.stderr
    assert _signers(moto) == {KEYS["imds"]}
    assert "PUT /latest/api/token" in sources.requests[before:]


@pytest.mark.parametrize("kind", ["session", "legacy"])
def test_sso_with_a_valid_token(moto: Moto, sources: CredentialSources, kind: str) -> None:
    """An SSO profile (sso_session or legacy) with a cached token: the portal's keys sign."""
    moto.write_aws_config(sso_profiles(kind))
    write_sso_token(moto.home, "corp" if kind == "session" else "https://example.awsapps.com/start")
    done = _run(moto, ["ecr", "password", "sso"], **sources.env_for("sso"))
    _assert_clean(done)
    assert done.returncode == 0, done.stderr
    assert _signers(moto) == {KEYS["sso"]}


@pytest.mark.parametrize("kind", ["session", "legacy"])
def test_sso_with_an_expired_token(moto: Moto, sources: CredentialSources, kind: str) -> None:
    """An expired SSO session: one line saying to run `aws sso login`, exit 1, no request."""
    moto.write_aws_config(sso_profiles(kind))
    write_sso_token(
        moto.home,
        "corp" if kind == "session" else "https://example.awsapps.com/start",
        expired=True,
    )
    done = _run(moto, ["ecr", "password", "sso"], **sources.env_for("sso"))
    _assert_clean(done)
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert "aws sso login" in done.stderr
    assert "'sso'" in done.stderr
    assert _signers(moto) == set()


CRT = Path(__file__).resolve().parent.parent / ".crt"
"""awscrt, apart from the venv (.ci/crt, `make crt`): botocore reads `aws login` profiles
only with it."""


def _with_awscrt() -> dict[str, str]:
    """The variables that give a child runas-async the awscrt of .crt/."""
    if not (CRT / "awscrt").is_dir():
        missing(f"awscrt is not in {CRT} for the `aws login` tests (make crt)")
    return {"PYTHONPATH": str(CRT)}


def _aws_login_profile(moto: Moto, *, expired: bool = False) -> None:
    moto.write_aws_config({"web": {"login_session": LOGIN_SESSION, "region": "us-east-1"}})
    write_login_token(moto.home, expired=expired)


def test_aws_login_profile_with_a_valid_cached_login(moto: Moto) -> None:
    """A profile `aws login` made (login_session) with its cached login: those keys sign."""
    _aws_login_profile(moto)
    done = _run(moto, ["ecr", "password", "web"], **_with_awscrt())
    _assert_clean(done)
    assert done.returncode == 0, done.stderr
    assert done.stdout == moto_password(DEFAULT_ACCOUNT) + "\n"
    assert _signers(moto) == {KEYS["login"]}


def test_aws_login_profile_with_an_expired_login(moto: Moto, sources: CredentialSources) -> None:
    """An expired login whose refresh the sign-in service refuses: one line naming the
    profile and saying to run `aws login`, exit 1, no token request."""
    _aws_login_profile(moto, expired=True)
    before = len(sources.requests)
    done = _run(moto, ["ecr", "password", "web"], **_with_awscrt(), **sources.env_for("signin"))
    _assert_clean(done)
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert "aws login --profile web" in done.stderr and "'web'" in done.stderr
    assert sources.requests[before:] == ["POST /v1/token"]
    assert _signers(moto) == set()


def test_aws_login_profile_without_awscrt_says_what_to_install(moto: Moto) -> None:
    """Without awscrt botocore cannot read a login at all: one line naming the profile,
    `aws login` and the package to add, exit 1."""
    _aws_login_profile(moto)
    done = _run(moto, ["ecr", "password", "web"])
    _assert_clean(done)
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert "'web'" in done.stderr and "aws login" in done.stderr
    assert "botocore[crt]" in done.stderr


@pytest.mark.parametrize(
    ("mode", "code", "needle"),
    [
        pytest.param("valid", 0, None, id="valid"),
        pytest.param("fail", 1, "token broker unreachable", id="failing"),
        pytest.param("expired", 1, "expired", id="expired"),
    ],
)
def test_credential_process(moto: Moto, mode: str, code: int, needle: str | None) -> None:
    """credential_process: used when it works; one clean line when it fails or hands back
    credentials that have already expired."""
    program = credential_process(moto.workdir, sys.executable, mode)
    moto.write_aws_config({"proc": {"region": "us-east-1", "credential_process": str(program)}})
    done = _run(moto, ["ecr", "password", "proc"])
    _assert_clean(done)
    assert done.returncode == code, done.stderr
    if needle is None:
        assert _signers(moto) == {KEYS["process"]}
    else:
        assert done.stderr.count("\n") == 1, done.stderr
        assert needle in done.stderr
        assert "'proc'" in done.stderr


def test_no_credentials_anywhere_says_how_to_provide_them(moto: Moto) -> None:
    """No keys, no profile, no role, no metadata: one line that says what to set."""
    done = _run(moto, ["ecr", "password"], AWS_REGION="us-east-1")
    _assert_clean(done)
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert "AWS_ACCESS_KEY_ID" in done.stderr
    assert "aws configure" in done.stderr or "PROFILE" in done.stderr


NAMESPACE_DRIVER = """
import json, os, subprocess, sys
from moto.server import ThreadedMotoServer
from tests.credsources import KEYS, CredentialSources

moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
moto.start()
host, port = moto.get_host_and_port()
with CredentialSources({address!r}, 80) as sources:
    env = {{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}}
    env.update({source_env!r})
    env.update(
        AWS_ENDPOINT_URL=f"http://{{host}}:{{port}}",
        AWS_REGION="us-east-1",
        AWS_CONFIG_FILE="/nonexistent",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
        AWS_EC2_METADATA_DISABLED="true",
    )
    done = subprocess.run(
        [sys.executable, "-m", "runas_async", "ecr", "password"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    print(json.dumps({{"rc": done.returncode, "out": done.stdout, "err": done.stderr,
                      "requests": sources.requests,
                      "authorizations": sources.authorizations}}))
moto.stop()
"""


def _in_network_namespace(address: str, source_env: dict[str, str]) -> dict[str, Any]:
    """`ecr password` with ``source_env``, in a network namespace of the test's own where
    ``address`` (a fixed link-local one botocore trusts) is served by the stand-in."""
    need_root("to make a network namespace with the container endpoint's address")
    need_program("ip", "apt-get install iproute2")
    setup = f'ip link set lo up && ip addr add {address}/32 dev lo && exec "$@"'
    driver = NAMESPACE_DRIVER.format(address=address, source_env=source_env)
    done = subprocess.run(
        ["unshare", "--net", "sh", "-c", setup, "sh", sys.executable, "-c", driver],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["rc"] == 0, result["err"]
    assert result["out"] == moto_password(DEFAULT_ACCOUNT) + "\n"
    return result


def test_container_relative_uri_in_a_private_network_namespace() -> None:
    """AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (ECS) goes to botocore's fixed 169.254.170.2:
    served here inside a network namespace of the test's own, where that address is ours."""
    env = {"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/container/creds"}
    result = _in_network_namespace("169.254.170.2", env)
    assert "GET /container/creds" in result["requests"]


def test_eks_pod_identity_sends_the_token_file_as_authorization(tmp_path: Path) -> None:
    """EKS Pod Identity: AWS_CONTAINER_CREDENTIALS_FULL_URI at the agent's 169.254.170.23 and
    AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE; the file's content is the Authorization header."""
    token = tmp_path / "eks-pod-identity-token"
    token.write_text(POD_TOKEN)
    env = {
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.170.23/v1/credentials",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token),
    }
    result = _in_network_namespace("169.254.170.23", env)
    assert result["requests"] == ["GET /v1/credentials"]
    assert result["authorizations"] == [POD_TOKEN]


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        pytest.param(POD_TOKEN + "\n", "line break", id="newline-at-the-end"),
        pytest.param(None, "No such file", id="missing"),
    ],
)
def test_a_bad_pod_identity_token_file_is_one_line(
    moto: Moto, sources: CredentialSources, content: str | None, needle: str
) -> None:
    """A token file with a line break (botocore refuses it as a header) or no file at all:
    one line naming the problem, exit 1, no traceback, nothing asked of the endpoint."""
    token = moto.workdir / "pod-token"
    token.unlink(missing_ok=True)
    if content is not None:
        token.write_text(content)
    before = len(sources.requests)
    env = {**sources.env_for("container"), "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token)}
    done = _run(moto, ["ecr", "password"], AWS_REGION="us-east-1", **env)
    _assert_clean(done)
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert needle in done.stderr
    assert POD_TOKEN not in done.stderr
    if content is None:
        assert str(token) in done.stderr
    assert sources.requests[before:] == []
