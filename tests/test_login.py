"""ClientRunner (docker) with stand-in clients: argv, stdin, isolation, merge, kill on timeout.

The real docker CLI against real registries is exercised in test_e2e.py; these
stand-ins force what a real client cannot easily do (hang, echo the secret).
"""

from __future__ import annotations

import base64
import json
import os
import sys
import tempfile
import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import pytest

from runas_async.auth.authfile import AuthFile
from runas_async.auth.runners import ClientRunner, check_helpers, failure_reason, find_client
from runas_async.core.clients import CLIENTS
from runas_async.core.errors import ClientNotFound, LoginError, TokenError
from runas_async.core.models import Registry, Token
from tests.sandbox import docker_auths

PASSWORD = "s3cr3t-pw-0123456789"  # the "token" the stand-in expects
TOKEN = Token(username="AWS", password=PASSWORD)

# Behaves like `docker login`: argv checked, password from stdin, config.json in
# $DOCKER_CONFIG rewritten whole. Hosts starting with "hang." never finish,
# "echo." fails printing the password, anything else with a wrong password
# fails like a registry's 401.
STAND_IN = textwrap.dedent(
    """\
    #!{python}
    import base64, json, os, sys, time
    log = os.environ["STAND_IN_LOG"]
    args = sys.argv[1:]
    with open(log + ".started", "a") as f:
        f.write(json.dumps({{"argv": sys.argv, "pid": os.getpid()}}) + "\\n")
    pw = sys.stdin.read()
    host = args[-1]
    with open(log, "a") as f:
        f.write(json.dumps({{"argv": sys.argv, "stdin": pw, "pid": os.getpid(),
                            "config": os.environ.get("DOCKER_CONFIG")}}) + "\\n")
    user = os.environ.get("STAND_IN_USER", "AWS")
    if args[:4] != ["login", "--username", user, "--password-stdin"] or len(args) != 5:
        sys.exit("bad argv")
    if host.startswith("hang."):
        time.sleep(600)
    if host.startswith("quiet."):
        sys.exit(0)
    if host.startswith("echo."):
        print("noise", file=sys.stderr)
        sys.exit("Error: bad password " + pw)
    if pw != {password!r}:
        print("WARNING! some noise", file=sys.stderr)
        sys.exit("Error response from daemon: login attempt to http://" + host
                 + "/v2/ failed with status: 401 Unauthorized")
    path = os.path.join(os.environ["DOCKER_CONFIG"], "config.json")
    doc = json.load(open(path)) if os.path.exists(path) else {{}}
    auth = base64.b64encode(("AWS:" + pw).encode()).decode()
    doc.setdefault("auths", {{}})[host] = {{"auth": auth}}
    json.dump(doc, open(path, "w"))
    print("Login Succeeded")
    """
)


@pytest.fixture
def stand_in(tmp_path: Path) -> tuple[str, Path]:
    exe = tmp_path / "bin" / "docker"
    exe.parent.mkdir()
    exe.write_text(STAND_IN.format(python=sys.executable, password=PASSWORD))
    exe.chmod(0o755)
    return str(exe), tmp_path / "calls.jsonl"


def _calls(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def _started(log: Path) -> list[dict[str, object]]:
    """Every client process started, as it recorded itself before reading stdin."""
    path = log.with_name(log.name + ".started")
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def when_started(log: Path, token: Token, count: int = 1) -> Callable[[], Awaitable[Token]]:
    """A token source that answers only once ``count`` clients are running and waiting for it."""

    async def source() -> Token:
        with anyio.fail_after(10):
            while len(_started(log)) < count:  # noqa: ASYNC110 - polls a file another process writes
                await anyio.sleep(0.01)
        return token

    return source


def ready(token: Token) -> Callable[[], Awaitable[Token]]:
    """A token source whose token is already there."""

    async def source() -> Token:
        return token

    return source


def _registry(host: str) -> Registry:
    return Registry(host=host, account="123456789012", region="us-east-1")


def _runner(exe: str, log: Path, cfg: AuthFile) -> ClientRunner:
    seed = cfg.preflight()
    return ClientRunner(CLIENTS["docker"], exe, cfg, seed, {**os.environ, "STAND_IN_LOG": str(log)})


async def test_password_goes_on_stdin_never_argv(
    stand_in: tuple[str, Path], tmp_path: Path
) -> None:
    """The client gets `login --username AWS --password-stdin HOST` and the secret on stdin."""
    exe, log = stand_in
    cfg = AuthFile(tmp_path / "docker" / "config.json")
    async with _runner(exe, log, cfg) as runner:
        await runner.login(_registry("a.example"), ready(TOKEN))
    (call,) = _calls(log)
    assert call["argv"] == [exe, "login", "--username", "AWS", "--password-stdin", "a.example"]
    assert call["stdin"] == PASSWORD
    assert PASSWORD not in json.dumps(call["argv"])


async def test_logins_are_isolated_then_merged(stand_in: tuple[str, Path], tmp_path: Path) -> None:
    """Each login sees its own seeded DOCKER_CONFIG; all end up in the real file; temp dirs go."""
    exe, log = stand_in
    cfg = AuthFile(tmp_path / "docker" / "config.json")
    cfg.directory.mkdir()
    cfg.path.write_text(json.dumps({"auths": {"old": {"auth": "b2xk"}}, "credHelpers": {"x": "y"}}))
    hosts = [f"r{i}.example" for i in range(12)]
    async with _runner(exe, log, cfg) as runner, anyio.create_task_group() as tg:
        for host in hosts:
            tg.start_soon(runner.login, _registry(host), ready(TOKEN))
    calls = _calls(log)
    dirs = {str(c["config"]) for c in calls}
    assert len(dirs) == len(hosts)
    assert str(cfg.directory) not in dirs
    assert not any(Path(d).exists() for d in dirs)
    doc = json.loads(cfg.path.read_text())
    assert doc["credHelpers"] == {"x": "y"}
    assert set(doc["auths"]) == {"old", *hosts}
    for host in hosts:
        assert base64.b64decode(doc["auths"][host]["auth"]).decode() == f"AWS:{PASSWORD}"


async def test_failure_reason_is_last_stderr_line(
    stand_in: tuple[str, Path], tmp_path: Path
) -> None:
    """A refused login raises LoginError with the client's last meaningful line."""
    exe, log = stand_in
    cfg = AuthFile(tmp_path / "docker" / "config.json")
    async with _runner(exe, log, cfg) as runner:
        with pytest.raises(LoginError) as info:
            await runner.login(_registry("bad.example"), ready(Token("AWS", "wrong")))
    assert str(info.value) == (
        "login attempt to http://bad.example/v2/ failed with status: 401 Unauthorized"
    )
    assert not cfg.path.exists()


async def test_secret_echoed_by_client_is_redacted(
    stand_in: tuple[str, Path], tmp_path: Path
) -> None:
    """If a client prints the password, our error shows <redacted> instead."""
    exe, log = stand_in
    async with _runner(exe, log, AuthFile(tmp_path / "docker" / "config.json")) as runner:
        with pytest.raises(LoginError) as info:
            await runner.login(_registry("echo.example"), ready(TOKEN))
    assert PASSWORD not in str(info.value)
    assert "<redacted>" in str(info.value)


async def test_cancelled_login_kills_the_child(stand_in: tuple[str, Path], tmp_path: Path) -> None:
    """A login cancelled by its deadline leaves no child process and no temp dir."""
    exe, log = stand_in
    cfg = AuthFile(tmp_path / "docker" / "config.json")
    async with _runner(exe, log, cfg) as runner:
        with anyio.move_on_after(1.5) as scope:
            await runner.login(_registry("hang.example"), ready(TOKEN))
        assert scope.cancelled_caught
    (call,) = _calls(log)
    pid = int(str(call["pid"]))
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not Path(str(call["config"])).exists()
    assert not cfg.path.exists()


async def test_workdir_is_private_and_removed(
    stand_in: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The temporary directory holding credentials is 0700 and gone after the run."""
    exe, log = stand_in
    temp = tmp_path / "temp"  # ours alone: another run or xdist worker makes its own meanwhile
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    async with _runner(exe, log, AuthFile(tmp_path / "docker" / "config.json")) as runner:
        (workdir,) = temp.glob("runas-async-*")
        assert workdir.stat().st_mode & 0o777 == 0o700
        await runner.login(_registry("a.example"), ready(TOKEN))
    assert not workdir.exists()


async def _two_logins_then(ending: str, runner: ClientRunner) -> None:
    """Two logins that succeed, then an error: ours, or a refused login's LoginError."""
    await runner.login(_registry("a.example"), ready(TOKEN))
    await runner.login(_registry("b.example"), ready(TOKEN))
    if ending == "error":
        raise RuntimeError("the run fails after two logins")
    await runner.login(_registry("bad.example"), ready(Token("AWS", "wrong")))  # LoginError


@pytest.mark.parametrize("ending", ["error", "failed-login", "cancelled"])
async def test_finished_logins_are_merged_when_the_run_ends_in_an_error(
    stand_in: tuple[str, Path], tmp_path: Path, ending: str
) -> None:
    """Logins that finished reach the auth file though the run then fails or is cancelled."""
    exe, log = stand_in
    cfg = AuthFile(tmp_path / "docker" / "config.json")
    if ending == "cancelled":
        with anyio.CancelScope() as scope:
            async with _runner(exe, log, cfg) as runner:
                await runner.login(_registry("a.example"), ready(TOKEN))
                await runner.login(_registry("b.example"), ready(TOKEN))
                scope.cancel()
                await anyio.sleep(10)
        assert scope.cancelled_caught
    else:
        with pytest.raises((RuntimeError, LoginError)):
            async with _runner(exe, log, cfg) as runner:
                await _two_logins_then(ending, runner)
    assert docker_auths(cfg.directory) == {
        "a.example": f"AWS:{PASSWORD}",
        "b.example": f"AWS:{PASSWORD}",
    }


async def test_client_starts_before_the_token_and_reads_it_later(
    stand_in: tuple[str, Path], tmp_path: Path
) -> None:
    """The client is running before the token exists; the password reaches it when it comes."""
    exe, log = stand_in
    cfg = AuthFile(tmp_path / "docker" / "config.json")
    async with _runner(exe, log, cfg) as runner:
        # when_started only answers once the client has recorded itself: had the runner
        # waited for the token first, this would time out.
        await runner.login(_registry("a.example"), when_started(log, TOKEN))
    (call,) = _calls(log)
    assert call["stdin"] == PASSWORD
    assert set(json.loads(cfg.path.read_text())["auths"]) == {"a.example"}


async def test_client_is_killed_unfed_when_its_token_fails(
    stand_in: tuple[str, Path], tmp_path: Path
) -> None:
    """A token that never comes kills the waiting client before it reads anything."""
    exe, log = stand_in
    cfg = AuthFile(tmp_path / "docker" / "config.json")

    async def no_token() -> Token:
        await when_started(log, TOKEN)()
        raise TokenError("GetAuthorizationToken in us-east-1: AccessDenied")

    async with _runner(exe, log, cfg) as runner:
        with pytest.raises(TokenError):
            await runner.login(_registry("a.example"), no_token)
    (started,) = _started(log)
    with pytest.raises(ProcessLookupError):
        os.kill(int(str(started["pid"])), 0)
    assert not log.exists()  # it never got past reading stdin
    assert not cfg.path.exists()


async def test_token_of_another_username_restarts_the_client(
    stand_in: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Clients start as ECR's user "AWS"; a token naming another one gets a client of its own."""
    exe, log = stand_in
    monkeypatch.setenv("STAND_IN_USER", "robot")
    cfg = AuthFile(tmp_path / "docker" / "config.json")
    async with _runner(exe, log, cfg) as runner:
        await runner.login(_registry("a.example"), when_started(log, Token("robot", PASSWORD)))
    first, second = _started(log)
    assert first["argv"][1:4] == ["login", "--username", "AWS"]  # type: ignore[index]
    assert second["argv"][1:4] == ["login", "--username", "robot"]  # type: ignore[index]
    (call,) = _calls(log)  # only the second one read a password
    assert call["stdin"] == PASSWORD


@pytest.mark.parametrize(
    ("stderr", "stdout", "expected"),
    [
        pytest.param(b"noise\n\nlast line\n\n", b"", "last line", id="last-nonempty"),
        pytest.param(b"", b"out line\n", "out line", id="stdout-fallback"),
        pytest.param(b"", b"", "exited with status 3", id="nothing"),
        pytest.param(
            b"Error response from daemon: Get x: denied\n", b"", "Get x: denied", id="daemon-prefix"
        ),
    ],
)
def test_failure_reason(stderr: bytes, stdout: bytes, expected: str) -> None:
    """failure_reason picks the last meaningful line."""
    assert failure_reason(stderr, stdout, 3, "pw") == expected


def test_find_client_names_missing_program() -> None:
    """A client that is not on PATH is named in the error."""
    from runas_async.core.errors import ClientNotFound

    with pytest.raises(ClientNotFound, match="'docker' was not found on PATH"):
        find_client("docker", {"PATH": "/nonexistent"})


async def test_host_served_by_an_ecr_token_helper_is_not_logged_in(
    stand_in: tuple[str, Path], tmp_path: Path
) -> None:
    """credHelpers sending a host to docker-credential-ecr-login: no client runs, the row
    says the helper already serves it and how to log in instead; other hosts log in."""
    exe, log = stand_in
    served, other = "1.dkr.ecr.us-east-1.amazonaws.com", "2.dkr.ecr.us-east-1.amazonaws.com"
    cfg = AuthFile(tmp_path / "docker" / "config.json")
    cfg.path.parent.mkdir()
    cfg.path.write_text(json.dumps({"credHelpers": {served: "ecr-login"}}))
    async with _runner(exe, log, cfg) as runner:
        with pytest.raises(
            LoginError, match=r"docker-credential-ecr-login already serves .*remove"
        ):
            await runner.login(_registry(served), ready(TOKEN))
        await runner.login(_registry(other), ready(TOKEN))
    assert [c["argv"][-1] for c in _calls(log)] == [other]  # type: ignore[index]
    assert set(json.loads(cfg.path.read_text())["auths"]) == {other}


@pytest.mark.parametrize(
    ("doc", "hosts", "missing"),
    [
        pytest.param({"credsStore": "nosuch"}, [None], "docker-credential-nosuch", id="store"),
        pytest.param(
            {"credHelpers": {"h.example": "nosuch"}},
            ["h.example"],
            "docker-credential-nosuch",
            id="helper",
        ),
        pytest.param({"credHelpers": {"gcr.io": "nosuch"}}, ["h.example", None], None, id="other"),
        pytest.param({"credsStore": "present"}, ["h.example"], None, id="on-path"),
        pytest.param({"credHelpers": {"h.example": "ecr-login"}}, ["h.example"], None, id="ecr"),
    ],
)
def test_missing_credential_helper_is_found_before_anything_runs(
    tmp_path: Path, doc: dict[str, object], hosts: list[str | None], missing: str | None
) -> None:
    """A helper that would store a login of this run and is not on PATH is a ConfigError
    naming it; helpers for other hosts, or ones that serve ECR themselves, do not matter."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    present = bin_dir / "docker-credential-present"
    present.write_text("#!/bin/sh\n")
    present.chmod(0o755)
    cfg = AuthFile(tmp_path / "docker" / "config.json")
    seed = json.dumps(doc).encode()
    env = {"PATH": str(bin_dir)}
    if missing is None:
        check_helpers(hosts, cfg, seed, env)
        return
    with pytest.raises(ClientNotFound, match=missing) as info:
        check_helpers(hosts, cfg, seed, env)
    assert str(cfg.path) in str(info.value)


async def test_client_that_succeeds_without_writing_is_a_failed_login(
    stand_in: tuple[str, Path], tmp_path: Path
) -> None:
    """A client that exits 0 but writes no auth file fails its registry, no traceback."""
    exe, log = stand_in
    cfg = AuthFile(tmp_path / "docker" / "config.json")
    async with _runner(exe, log, cfg) as runner:
        with pytest.raises(LoginError, match="wrote no auth file"):
            await runner.login(_registry("quiet.example"), ready(TOKEN))
    assert not cfg.path.exists() or "quiet.example" not in cfg.path.read_text()
