"""auth/runners.py's Runner: what the client runner and the built-in one share, checked
on both (the refusals, the settle on exit); and, through ``ecr login``, that a client whose
auth file cannot be redirected (finch) logs in one registry at a time. The clients' own
behaviour is in test_login.py and test_builtin.py."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runas_async.auth.authfile import AuthFile
from runas_async.auth.registry import BuiltinRunner
from runas_async.auth.runners import ClientRunner, Runner
from runas_async.core.clients import CLIENTS
from runas_async.core.errors import LoginError
from runas_async.core.models import Registry, Token
from tests.sandbox import DEFAULT_ACCOUNT, STATIC_KEYS, Moto, ecr_host, moto_password

OURS = "1.dkr.ecr.us-east-1.amazonaws.com"
THEIRS = "2.dkr.ecr.us-east-1.amazonaws.com"
GONE = "3.dkr.ecr.us-east-1.amazonaws.com"


def _auth_file(tmp_path: Path) -> AuthFile:
    auth = AuthFile(tmp_path / "docker" / "config.json")
    auth.directory.mkdir()
    auth.path.write_text(
        json.dumps(
            {
                "credHelpers": {OURS: "runas-async", THEIRS: "ecr-login"},
                "auths": {GONE: {"auth": "QVdTOng="}},
            }
        )
    )
    return auth


def _runners(auth: AuthFile) -> list[ClientRunner | BuiltinRunner]:
    seed = auth.preflight()
    # A client that is never started: both refusals come before any process.
    never = str(Path(sys.executable).with_name("no-such-client"))
    return [
        ClientRunner(CLIENTS["docker"], never, auth, seed, {}),
        BuiltinRunner(auth, seed, {}, connections=1),
    ]


@pytest.mark.parametrize("index", [0, 1], ids=["client", "builtin"])
async def test_both_runners_refuse_a_logout_our_helper_serves(tmp_path: Path, index: int) -> None:
    """A logout of a host docker-credential-runas-async serves fails with one line naming
    the host, the auth file and the way out; the file keeps the entry."""
    auth = _auth_file(tmp_path)
    before = auth.path.read_text()
    async with _runners(auth)[index] as runner:
        with pytest.raises(LoginError) as caught:
            await runner.logout(OURS)
    message = str(caught.value)
    assert "\n" not in message
    assert OURS in message and str(auth.path) in message and "configure-docker --remove" in message
    assert auth.path.read_text() == before


@pytest.mark.parametrize("index", [0, 1], ids=["client", "builtin"])
async def test_both_runners_refuse_a_login_an_ecr_helper_serves(tmp_path: Path, index: int) -> None:
    """A login of a host docker-credential-ecr-login serves fails before any token is
    asked, naming the helper, the host and the auth file."""
    auth = _auth_file(tmp_path)
    asked: list[str] = []

    async def token() -> Token:
        asked.append("token")
        return Token("AWS", "pw")

    async with _runners(auth)[index] as runner:
        with pytest.raises(LoginError) as caught:
            await runner.login(Registry(THEIRS, "2", "us-east-1"), token)
    message = str(caught.value)
    assert f"docker-credential-ecr-login already serves {THEIRS}" in message
    assert str(auth.path) in message
    assert asked == []


async def test_leaving_a_runner_settles_its_logouts_into_the_auth_file(tmp_path: Path) -> None:
    """The base's exit writes what the run did: a logout done leaves the file without the
    host, everything else kept."""
    auth = _auth_file(tmp_path)
    async with _runners(auth)[1] as runner:
        await runner.logout(GONE)
    assert isinstance(runner, Runner)
    doc = json.loads(auth.path.read_text())
    assert doc["auths"] == {}
    assert doc["credHelpers"] == {OURS: "runas-async", THEIRS: "ecr-login"}


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


# A docker stand-in that, for account 222222222222's registry, leaves a directory where
# its auth file goes: reading it back raises IsADirectoryError, none of our errors.
ODD_DOCKER = textwrap.dedent(
    """\
    #!{python}
    import base64, json, os, sys
    password, host = sys.stdin.read(), sys.argv[-1]
    path = os.path.join(os.environ["DOCKER_CONFIG"], "config.json")
    if host.startswith("222222222222."):
        os.remove(path) if os.path.exists(path) else None
        os.makedirs(path)
        sys.exit(0)
    auth = base64.b64encode(("AWS:" + password).encode()).decode()
    json.dump({{"auths": {{host: {{"auth": auth}}}}}}, open(path, "w"))
    """
)


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_a_runners_unexpected_exception_fails_only_its_registry(moto: Moto, debug: bool) -> None:
    """An exception that is none of ours, raised by the runner for one registry, is that
    registry's one-line failure (no traceback unless --debug): the others are logged in and
    merged, and the run exits 1."""
    moto.write_aws_config({"dev": {"region": "us-east-1", **STATIC_KEYS}})
    bin_dir = moto.workdir / "odd-bin"
    bin_dir.mkdir(exist_ok=True)
    docker = bin_dir / "docker"
    docker.write_text(ODD_DOCKER.format(python=sys.executable))
    docker.chmod(0o755)
    good = [ecr_host("111111111111", "us-east-1"), ecr_host("333333333333", "us-east-1")]
    odd = ecr_host("222222222222", "us-east-1")
    env = moto.env(PATH=f"{bin_dir}:{os.environ['PATH']}")
    argv = ["ecr", "login", "dev", good[0], odd, good[1], *(["--debug"] if debug else [])]
    done = subprocess.run(
        [sys.executable, "-m", "runas_async", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout + done.stderr
    assert ("Traceback" in out) is debug, out
    (line,) = [ln for ln in out.splitlines() if odd in ln and "unexpected error" in ln]
    assert "IsADirectoryError" in line
    assert moto_password(DEFAULT_ACCOUNT) not in out
    assert sorted(moto.docker_auths()) == sorted(good)
