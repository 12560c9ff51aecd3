"""No traceback for anything a user can cause: each condition through the real ``main()``.

Every case runs ``python -m runas_async`` (that is ``cli.main``) against moto or a fault in
front of it, and checks the exit status and that stderr holds no traceback and no secret.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.credsources import credential_process
from tests.faults import ApiFaultProxy, Rule
from tests.sandbox import STATIC_KEYS, Moto, ecr_host
from tests.test_profiles import _stand_ins

ROLE_A = "arn:aws:iam::210987654321:role/a"
ROLE_B = "arn:aws:iam::310987654321:role/b"
ROLE_C = "arn:aws:iam::410987654321:role/c"


def _profiles() -> dict[str, dict[str, str]]:
    """Three roles from one source; role b's region (eu-west-1) is where AssumeRole is denied."""
    return {
        "src": {"region": "us-east-1", **STATIC_KEYS},
        "a": {"region": "us-east-1", "role_arn": ROLE_A, "source_profile": "src"},
        "b": {"region": "eu-west-1", "role_arn": ROLE_B, "source_profile": "src"},
        "c": {"region": "us-west-2", "role_arn": ROLE_C, "source_profile": "src"},
    }


@pytest.fixture
def denied(moto: Moto) -> Iterator[ApiFaultProxy]:
    """moto behind a proxy that denies AssumeRole in eu-west-1 (role b), every time."""
    moto.write_aws_config(_profiles())
    with ApiFaultProxy(moto.moto_url, [Rule("AssumeRole", "denied", None, "eu-west-1")]) as proxy:
        yield proxy


def _clean(done: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in done.stderr, done.stderr
    assert STATIC_KEYS["aws_secret_access_key"] not in done.stderr + done.stdout


@pytest.mark.parametrize("how", ["profiles", "file"])
def test_a_denied_role_among_three_fails_only_its_registry(
    moto: Moto, denied: ApiFaultProxy, how: str
) -> None:
    """`-p a -p b -p c` (or a --file of the three) with b's AssumeRole denied: a and c are
    logged in, b's row says AccessDenied, one JSON document with three rows, exit 1."""
    env, _ = _stand_ins(moto)
    env["AWS_ENDPOINT_URL"] = denied.url
    if how == "file":
        (moto.workdir / "three.toml").write_text(
            "".join(f'[[login]]\nprofile = "{p}"\n\n' for p in "abc")
        )
        targets = ["--file", str(moto.workdir / "three.toml")]
    else:
        targets = ["-p", "a", "-p", "b", "-p", "c"]
    argv = [sys.executable, "-m", "runas_async", "ecr", "login", *targets, "-o", "json"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    _clean(done)
    assert done.returncode == 1, done.stderr
    rows = {row["profile"]: row for row in json.loads(done.stdout)["results"]}
    assert {p: r["status"] for p, r in rows.items()} == {"a": "ok", "b": "failed", "c": "ok"}
    assert "AccessDenied" in rows["b"]["error"]
    assert rows["b"]["registry"] == ecr_host("310987654321", "eu-west-1")
    assert set(moto.docker_auths()) == {
        ecr_host("210987654321", "us-east-1"),
        ecr_host("410987654321", "us-west-2"),
    }


@pytest.mark.parametrize(
    ("args", "env", "code", "needle"),
    [
        pytest.param(
            ["ecr", "password", "src"],
            {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1"},
            1,
            "check the network",
            id="connection-refused",
        ),
        pytest.param(
            ["ecr", "password", "src"],
            {"HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": "", "AWS_MAX_ATTEMPTS": "1"},
            1,
            "HTTPS_PROXY",
            id="proxy-refused",
        ),
        pytest.param(["ecr", "login", "nosuch"], {}, 2, "'nosuch'", id="unknown-profile"),
        pytest.param(
            ["ecr", "login", "src", "-o", "json"],
            {"AWS_RETRY_MODE": "sometimes"},
            2,
            "'sometimes'",
            id="bad-retry-mode",
        ),
        pytest.param(["exec", "--help"], {}, 0, None, id="exec-help"),
        pytest.param(["exec", "src"], {}, 2, "after '--'", id="exec-without-command"),
    ],
)
def test_user_caused_conditions(
    moto: Moto, args: list[str], env: dict[str, str], code: int, needle: str | None
) -> None:
    """Each condition: the right exit status, one line naming what to fix, no traceback."""
    moto.write_aws_config(_profiles())
    done = moto.run_tool(args, env=moto.env(**env))
    _clean(done)
    assert done.returncode == code, done.stdout + done.stderr
    if needle is not None:
        assert needle in done.stderr
        assert done.stderr.count("\n") == 1, done.stderr


def test_expired_keys_are_named_as_such(moto: Moto) -> None:
    """Keys the service rejects as expired: one line saying so and what to do, exit 1."""
    moto.write_aws_config(_profiles())
    with ApiFaultProxy(moto.moto_url, [Rule("GetAuthorizationToken", "expired", None)]) as proxy:
        done = moto.run_tool(["ecr", "password", "src"], env=moto.env(AWS_ENDPOINT_URL=proxy.url))
    _clean(done)
    assert done.returncode == 1, done.stderr
    assert "rejected (expired or invalid)" in done.stderr
    assert "renew them" in done.stderr


def test_json_error_document_for_an_exit_2_run(moto: Moto) -> None:
    """-o json on a run stopped before any request: one document with the error line."""
    done = moto.run_tool(["ecr", "login", "nosuch", "-o", "json"])
    assert done.returncode == 2
    doc = json.loads(done.stdout)
    assert doc == {"error": done.stderr.strip(), "results": []}


def test_closed_stdout_stops_the_output_not_the_run(moto: Moto) -> None:
    """`... -o json | head -c1`: no BrokenPipeError traceback, the status the run earned."""
    moto.write_aws_config(_profiles())
    tool = [
        sys.executable,
        "-m",
        "runas_async",
        "ecr",
        "login",
        "a",
        "b",
        "--dry-run",
        "-o",
        "json",
    ]
    done = subprocess.run(
        ["sh", "-c", '"$@" | head -c1; exit "${PIPESTATUS:-0}"', "sh", *tool],
        env=moto.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert "BrokenPipe" not in done.stderr
    assert done.stdout == "{"


def test_credential_process_expired_on_arrival(moto: Moto) -> None:
    """A credential_process handing back expired credentials: its row says so, exit 1."""
    program = credential_process(moto.workdir, sys.executable, "expired")
    moto.write_aws_config({"p": {"region": "us-east-1", "credential_process": str(program)}})
    env, _ = _stand_ins(moto)
    argv = [sys.executable, "-m", "runas_async", "ecr", "login", "p", "-o", "json"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    _clean(done)
    assert done.returncode == 1, done.stderr
    (row,) = json.loads(done.stdout)["results"]
    assert row["status"] == "failed"
    assert "already expired" in row["error"]
