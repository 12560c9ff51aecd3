"""auth/runners.py's Runner: what the client runner and the built-in one share, checked
on both (the refusals, the settle on exit). The clients' own behaviour is in test_login.py
and test_builtin.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from runas_async.auth.authfile import AuthFile
from runas_async.auth.registry import BuiltinRunner
from runas_async.auth.runners import ClientRunner, Runner
from runas_async.core.clients import CLIENTS
from runas_async.core.errors import LoginError
from runas_async.core.models import Registry, Token

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
