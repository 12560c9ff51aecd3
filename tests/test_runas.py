"""Running as a profile: `env` lines, credential_process JSON, exec with signals and exit codes.

The credentials come from the real resolver against moto; the consumers are real too: sh
evaluates the lines, botocore's credential_process provider reads the JSON, and child
processes call moto with what they were given.

The ``test_cli_*`` tests at the end run the proposed `env` and `exec` subcommands; they are
expected to fail until ``cli.py`` is wired.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import botocore.session
import pytest

from runas_async.aws._transport import credentials_expiry
from runas_async.aws.credentials import ResolvedCredentials
from runas_async.cli.runas import (
    child_environ,
    credential_environ,
    credential_process_json,
    env_lines,
    exec_command,
    exit_code,
)
from runas_async.core.errors import CommandNotFound, UsageError
from tests.missing import need_program
from tests.sandbox import Moto
from tests.test_credentials import (
    CODE,
    REGION,
    REPO,
    ROLE_ACCOUNT,
    profiles,
    resolve,
    resolver,
    run_detached,
    sandbox_environ,
    sts_calls,
)

EXPIRY = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
TRICKY = "a'b\"c$d`e\\f g+/=%!*"
"""A secret with every character a shell could misread."""

CREDS = ResolvedCredentials(
    access_key="ASIAEXAMPLE",
    secret_key=TRICKY,
    token="tok/en+==",
    expiry=EXPIRY,
    account_id=ROLE_ACCOUNT,
    method="test",
)
STATIC = ResolvedCredentials(access_key="AKIAEXAMPLE", secret_key="s3cret", token=None)

SHOW_ENV = "import json, os; print(json.dumps({k: v for k, v in os.environ.items() if k.startswith('AWS_')}))"  # noqa: E501
"""A child that prints its AWS_* variables as JSON."""

CALLER = textwrap.dedent(
    """
    import json, botocore.session
    sts = botocore.session.Session().create_client("sts")
    print(json.dumps(sts.get_caller_identity()["Account"]))
    """
)
"""A child that asks moto who its credentials belong to (environment credentials, region)."""


@pytest.fixture
def aws(moto: Moto, monkeypatch: pytest.MonkeyPatch) -> Moto:
    """moto's environment in this process (no namespace), with the profiles of test_credentials."""
    return sandbox_environ(moto, monkeypatch)


# --- pure formatting ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("creds", "region", "shell", "expected"),
    [
        pytest.param(
            CREDS,
            "eu-west-1",
            "sh",
            [
                "export AWS_ACCESS_KEY_ID=ASIAEXAMPLE",
                f"export AWS_SECRET_ACCESS_KEY={shlex.quote(TRICKY)}",
                "export AWS_SESSION_TOKEN=tok/en+==",
                "export AWS_CREDENTIAL_EXPIRATION=2030-01-02T03:04:05Z",
                "export AWS_REGION=eu-west-1",
                "export AWS_DEFAULT_REGION=eu-west-1",
                "unset AWS_PROFILE",
                "unset AWS_DEFAULT_PROFILE",
                "unset AWS_SECURITY_TOKEN",
            ],
            id="sh-session",
        ),
        pytest.param(
            STATIC,
            None,
            "sh",
            [
                "export AWS_ACCESS_KEY_ID=AKIAEXAMPLE",
                "export AWS_SECRET_ACCESS_KEY=s3cret",
                "unset AWS_SESSION_TOKEN",
                "unset AWS_CREDENTIAL_EXPIRATION",
                "unset AWS_PROFILE",
                "unset AWS_DEFAULT_PROFILE",
                "unset AWS_SECURITY_TOKEN",
            ],
            id="sh-static-no-region",
        ),
        pytest.param(
            STATIC,
            "us-east-1",
            "fish",
            [
                "set -gx AWS_ACCESS_KEY_ID AKIAEXAMPLE",
                "set -gx AWS_SECRET_ACCESS_KEY s3cret",
                "set -e AWS_SESSION_TOKEN",
                "set -e AWS_CREDENTIAL_EXPIRATION",
                "set -gx AWS_REGION us-east-1",
                "set -gx AWS_DEFAULT_REGION us-east-1",
                "set -e AWS_PROFILE",
                "set -e AWS_DEFAULT_PROFILE",
                "set -e AWS_SECURITY_TOKEN",
            ],
            id="fish",
        ),
    ],
)
def test_env_lines(
    creds: ResolvedCredentials, region: str | None, shell: str, expected: list[str]
) -> None:
    """The exact lines for each shell: quoted values, unset for what must not linger."""
    assert env_lines(creds, region, shell).splitlines() == expected


def test_env_lines_unknown_shell() -> None:
    """An unknown shell is a usage error naming it."""
    with pytest.raises(UsageError, match="'csh'"):
        env_lines(CREDS, None, "csh")


def test_repr_hides_secrets() -> None:
    """Resolved credentials never show their secret or token in a repr (logs, tracebacks)."""
    assert TRICKY not in repr(CREDS) and "tok/en" not in repr(CREDS)


def test_sh_evaluates_the_lines_exactly() -> None:
    """`eval` in sh sets every value byte for byte and removes the leftovers."""
    script = f'eval "$1"; exec {shlex.quote(sys.executable)} -c "$2"'
    base = {"PATH": os.environ["PATH"], "AWS_PROFILE": "old", "AWS_SECURITY_TOKEN": "old"}
    done = subprocess.run(
        ["sh", "-c", script, "sh", env_lines(CREDS, "eu-west-1"), SHOW_ENV],
        env=base,
        capture_output=True,
        text=True,
        check=True,
    )
    expected = {k: v for k, v in credential_environ(CREDS, "eu-west-1").items() if v}
    assert json.loads(done.stdout) == expected


def test_fish_evaluates_the_lines_exactly() -> None:
    """fish reads its own form back to the same values."""
    need_program("fish", "apt-get install fish")
    done = subprocess.run(
        ["fish", "-c", env_lines(CREDS, None, "fish") + "; env"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert f"AWS_SECRET_ACCESS_KEY={TRICKY}" in done.stdout.splitlines()


def test_credential_process_json_document() -> None:
    """Version 1 with the keys, token, account and a Z-suffixed Expiration; static: keys only."""
    assert json.loads(credential_process_json(CREDS)) == {
        "Version": 1,
        "AccessKeyId": "ASIAEXAMPLE",
        "SecretAccessKey": TRICKY,
        "SessionToken": "tok/en+==",
        "Expiration": "2030-01-02T03:04:05Z",
        "AccountId": ROLE_ACCOUNT,
    }
    assert json.loads(credential_process_json(STATIC)) == {
        "Version": 1,
        "AccessKeyId": "AKIAEXAMPLE",
        "SecretAccessKey": "s3cret",
    }


def test_botocore_reads_the_credential_process_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """botocore's own credential_process provider takes the document as it is, expiry included."""
    expiry = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    creds = ResolvedCredentials("ASIAEXAMPLE", TRICKY, "tok", expiry=expiry)
    document = tmp_path / "creds.json"
    document.write_text(credential_process_json(creds))
    command = f'{sys.executable} -c "import sys; sys.stdout.write(open(sys.argv[1]).read())"'
    config = tmp_path / "config"
    config.write_text(f"[profile cp]\ncredential_process = {command} {document}\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    got = botocore.session.Session(profile="cp").get_credentials()
    assert got is not None and got.method == "custom-process"
    frozen = got.get_frozen_credentials()
    assert (frozen.access_key, frozen.secret_key, frozen.token) == ("ASIAEXAMPLE", TRICKY, "tok")
    assert credentials_expiry(got) == expiry


def test_child_environ_replaces_and_removes() -> None:
    """The child keeps unrelated variables, gets the credentials, loses profile and old token."""
    base = {"PATH": "/bin", "AWS_PROFILE": "p", "AWS_SESSION_TOKEN": "old", "KEEP": "1"}
    env = child_environ(base, STATIC, "eu-west-1")
    assert env == {
        "PATH": "/bin",
        "KEEP": "1",
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "s3cret",
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }


@pytest.mark.parametrize(
    ("returncode", "status"),
    [(0, 0), (1, 1), (255, 255), (-signal.SIGINT, 130), (-signal.SIGTERM, 143), (-9, 137)],
)
def test_exit_code(returncode: int, status: int) -> None:
    """A child's status as a shell shows it: the code, or 128 + the killing signal."""
    assert exit_code(returncode) == status


# --- exec, in this process ---------------------------------------------------------------


async def test_exec_round_trips_credentials_to_the_child(aws: Moto, tmp_path: Path) -> None:
    """Credentials resolved through the MFA session reach a child that calls moto with them."""
    creds = await resolve(resolver(aws), "r1")
    out = tmp_path / "out"
    script = f"import sys; sys.stdout = open({str(out)!r}, 'w')\n" + CALLER
    env = child_environ(dict(os.environ, AWS_PROFILE="dev"), creds, REGION)
    status = await exec_command([sys.executable, "-c", script], env)
    assert status == 0
    assert json.loads(out.read_text()) == ROLE_ACCOUNT
    calls = sts_calls(aws)
    assert calls["GetCallerIdentity"] == 1 and calls["AssumeRole"] == 1


@pytest.mark.parametrize("code", [0, 3, 255])
async def test_exec_passes_the_exit_code(code: int) -> None:
    """The child's exit code is the result."""
    argv = [sys.executable, "-c", f"import sys; sys.exit({code})"]
    assert await exec_command(argv, dict(os.environ)) == code


async def test_exec_child_killed_by_a_signal() -> None:
    """A child killed by signal N gives 128 + N."""
    argv = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"]
    assert await exec_command(argv, dict(os.environ)) == 128 + signal.SIGKILL


async def test_exec_missing_command() -> None:
    """A command that is not on PATH is CommandNotFound, naming it."""
    with pytest.raises(CommandNotFound, match="no-such-command-here"):
        await exec_command(["no-such-command-here"], {"PATH": "/nonexistent"})


# --- exec and signals, in a process of its own -------------------------------------------

EXEC_DRIVER = """
import os, sys, anyio
from runas_async.cli.runas import exec_command
sys.exit(anyio.run(exec_command, sys.argv[1:], dict(os.environ)))
"""

HANDLING_CHILD = """
import signal, sys
def handle(signum, frame):
    print(f"child got {signum}", flush=True)
    sys.exit(40 + signum)
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(s, handle)
print("ready", flush=True)
signal.pause()
"""


@contextlib.contextmanager
def exec_driver(child: list[str]) -> Iterator[subprocess.Popen[str]]:
    """exec_command running ``child`` in a process (and group) of its own, child ready.

    The whole group is killed on the way out, so a failing test leaves nothing running.
    """
    process = subprocess.Popen(
        [sys.executable, "-c", EXEC_DRIVER, *child],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        start_new_session=True,  # our own group: the signal reaches the driver only
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n"
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_exec_forwards_signals_to_the_child(signum: int) -> None:
    """SIGINT/SIGTERM/SIGHUP sent to us reach the child, whose exit code we then return."""
    with exec_driver([sys.executable, "-c", HANDLING_CHILD]) as process:
        process.send_signal(signum)
        out, _ = process.communicate(timeout=10)
    assert out == f"child got {signum}\n"
    assert process.returncode == 40 + signum


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_exec_reports_a_child_killed_by_the_forwarded_signal(signum: int) -> None:
    """A child that does not handle the forwarded signal dies of it: 128 + N."""
    with exec_driver(["sh", "-c", "echo ready; exec sleep 60"]) as process:
        process.send_signal(signum)
        process.communicate(timeout=10)
    assert process.returncode == 128 + signum


# --- the command line (pending the wiring in cli.py) --------------------------------------


def _tool(*args: str) -> list[str]:
    return [sys.executable, "-m", "runas_async", *args]


def test_cli_env_lines_round_trip(moto: Moto) -> None:
    """`eval "$(runas-async env r1 --mfa-code CODE)"` gives a shell the role's credentials."""
    moto.write_aws_config(profiles("source"))
    script = f'eval "$({shlex.join(_tool("env", "r1", "--mfa-code", CODE))})" && exec "$@"'
    done = run_detached(["sh", "-c", script, "sh", sys.executable, "-c", CALLER], moto.env())
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ROLE_ACCOUNT
    assert sts_calls(moto)["GetSessionToken"] == 1


def test_cli_env_json_serves_credential_process(moto: Moto) -> None:
    """`env r1 --output json` works as a credential_process, later from the cache alone."""
    config = profiles("source")
    moto.write_aws_config(config)
    first = run_detached(_tool("env", "r1", "--output", "json", "--mfa-code", CODE), moto.env())
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["Version"] == 1
    config["cp"] = {
        "credential_process": shlex.join(_tool("env", "r1", "--output", "json")),
        "region": REGION,
    }
    moto.write_aws_config(config)
    moto.clear_calls()
    done = run_detached([sys.executable, "-c", CALLER], moto.env(AWS_PROFILE="cp"))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ROLE_ACCOUNT
    assert "GetSessionToken" not in sts_calls(moto) and "AssumeRole" not in sts_calls(moto)


def test_cli_exec_round_trip(moto: Moto) -> None:
    """`exec r1 --mfa-code CODE -- CMD` runs CMD as the role, in the region asked for."""
    moto.write_aws_config(profiles("source"))
    args = ("exec", "r1", "--mfa-code", CODE, "--region", "eu-west-1", "--")
    done = run_detached(_tool(*args, sys.executable, "-c", SHOW_ENV), moto.env(AWS_PROFILE="dev"))
    assert done.returncode == 0, done.stderr
    env = json.loads(done.stdout)
    assert env["AWS_REGION"] == "eu-west-1" and "AWS_PROFILE" not in env
    assert env["AWS_ACCESS_KEY_ID"].startswith("ASIA")
    done = run_detached(_tool("exec", "r1", "--", sys.executable, "-c", CALLER), moto.env())
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ROLE_ACCOUNT


def test_cli_exec_passes_the_exit_code(moto: Moto) -> None:
    """`exec` exits with the command's own status."""
    moto.write_aws_config(profiles("source"))
    argv = _tool("exec", "plain", "--", sys.executable, "-c", "import sys; sys.exit(7)")
    assert run_detached(argv, moto.env()).returncode == 7
