"""cli/context.py: a command's context is built once; the auth file is checked once and
read once per command, whatever the command asks of it."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runas_async.auth import authfile, runners
from runas_async.auth.authfile import AuthFile
from runas_async.cli import commands
from runas_async.cli.args import Registration
from runas_async.cli.commands import login as login_command
from runas_async.cli.commands.login import _fresh_logins, _plan_from_files
from runas_async.cli.context import Context, Needs, Outcome
from runas_async.cli.main import main
from runas_async.core.clients import CLIENTS
from runas_async.core.options import CredentialOptions, Login, RunOptions, Targets

HOST = "111111111111.dkr.ecr.us-east-2.amazonaws.com"
OTHER = "222222222222.dkr.ecr.us-east-2.amazonaws.com"


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """An AWS config, a docker config with two logins, a state directory; nothing reachable."""
    (tmp_path / "aws-config").write_text("[profile a]\nregion = us-east-2\n[profile b]\n")
    docker = tmp_path / "docker"
    docker.mkdir()
    auths = {HOST: {"auth": "QVdTOng="}, OTHER: {"auth": "QVdTOnk="}}
    (docker / "config.json").write_text(json.dumps({"auths": auths}))
    env = {
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # anything that slips through fails
        "AWS_EC2_METADATA_DISABLED": "true",
        "DOCKER_CONFIG": str(docker),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "PATH": str(tmp_path / "no-bin"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield env


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every read of an auth file through AuthFile, and every check of its helpers."""
    seen: list[Path] = []
    read_bytes = AuthFile.read_bytes
    check_helpers = runners.check_helpers

    def counting_read(self: AuthFile) -> bytes | None:
        seen.append(self.path)
        return read_bytes(self)

    def counting_check(*args: object, **kwargs: object) -> None:
        seen.append(Path("check_helpers"))
        check_helpers(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(authfile.AuthFile, "read_bytes", counting_read)
    monkeypatch.setattr(runners, "check_helpers", counting_check)
    return seen


def test_logout_checks_and_reads_the_auth_file_once(
    world: dict[str, str], reads: list[Path]
) -> None:
    """``ecr logout`` (built-in client, registry named: no AWS call) reads the auth file
    once and checks its helpers once; the logout is done."""
    assert main(["ecr", "logout", "-c", "builtin", HOST]) == 0
    config = Path(world["DOCKER_CONFIG"]) / "config.json"
    assert reads == [config, Path("check_helpers")]
    assert set(json.loads(config.read_text())["auths"]) == {OTHER}


def test_logout_expired_reads_the_auth_file_once(world: dict[str, str], reads: list[Path]) -> None:
    """``ecr logout --expired`` reads the auth file once for the records and the run."""
    assert main(["ecr", "logout", "-c", "builtin", "--expired"]) == 0
    config = Path(world["DOCKER_CONFIG"]) / "config.json"
    assert [r for r in reads if r == config] == [config]


def test_renew_before_reads_the_auth_file_once(world: dict[str, str], reads: list[Path]) -> None:
    """--renew-before's check of what is fresh and the run's runner share one read."""
    ctx = Context(
        world,
        io.StringIO(),
        client=CLIENTS["builtin"],
        targets=Targets(profile="a", endpoints=(HOST,)),
        run=RunOptions(client=CLIENTS["builtin"]),
    )
    fresh = _fresh_logins(3600.0, ctx)
    plan, _ = _plan_from_files(ctx)
    ctx.runner(fresh.remaining(plan))
    config = Path(world["DOCKER_CONFIG"]) / "config.json"
    assert [r for r in reads if r == config] == [config]
    assert fresh.total == 1 and fresh.results == []  # nothing recorded: nothing fresh


def test_redirect_after_the_auth_file_is_made_is_a_bug(world: dict[str, str]) -> None:
    """A job's private environment must come before the auth file is made, never after."""
    ctx = Context(world, io.StringIO(), client=CLIENTS["docker"])
    assert ctx.auth.path == Path(world["DOCKER_CONFIG"]) / "config.json"
    with pytest.raises(RuntimeError, match="redirect"):
        ctx.redirect({**world, "DOCKER_CONFIG": "/elsewhere"})


@pytest.mark.parametrize(
    ("extra", "recorded"),
    [
        pytest.param({}, True, id="plain-login"),
        pytest.param({"job": ("true",)}, False, id="job"),
        pytest.param({"k8s_secret": "regcred"}, False, id="k8s-secret"),
    ],
)
def test_only_logins_into_the_users_auth_file_are_recorded(
    world: dict[str, str], extra: dict[str, Any], recorded: bool
) -> None:
    """A job's private auth file and printed secrets never enter the state file: their
    context has no recorder; a plain login's records its logins against the user's file."""
    command = Login(Targets(profile="a"), RunOptions(client=CLIENTS["builtin"]), **extra)
    needs = login_command.COMMAND.needs
    assert needs is not None
    ctx = Context.of(needs(command), world, io.StringIO())
    recorder = ctx.recorder
    assert (recorder is not None) is recorded
    if recorder is not None:
        assert recorder.auth_path == Path(world["DOCKER_CONFIG"]) / "config.json"


def test_renew_before_with_no_plan_from_the_files_renews_everything(
    world: dict[str, str],
) -> None:
    """When the files alone cannot make the plan (here: no region), nothing is
    fresh and the full run goes on (it reports the error), never an empty success."""
    # b has no region: an ACCOUNT cannot be placed without botocore's help.
    ctx = Context(
        world,
        io.StringIO(),
        client=CLIENTS["builtin"],
        targets=Targets(profile="b", endpoints=("111111111111",)),
        run=RunOptions(client=CLIENTS["builtin"]),
    )
    fresh = _fresh_logins(3600.0, ctx)
    assert fresh.total == 0
    assert not fresh.everything


def test_a_command_is_dispatched_by_its_registration_alone(world: dict[str, str]) -> None:
    """commands.run builds the context from what the registration's ``needs`` reads off
    the command and calls the registration's ``run``: a command no dispatch names (a new
    module's) runs; and every registered command's function is its own module's."""
    seen: list[Context] = []

    def hello(command: object, ctx: Context) -> Outcome:
        seen.append(ctx)
        ctx.stdout.write(f"hello {command}\n")
        return Outcome(status=7)

    reg = Registration(
        path=("hello",),
        help="say hello",
        description="Say hello.",
        add_arguments=lambda parser, reg: None,
        build=lambda args, job, env: None,  # type: ignore[arg-type,return-value]
        run=hello,
        needs=lambda command: Needs(logout=True, credentials=CredentialOptions(refresh=True)),
    )
    out = io.StringIO()
    assert commands.run(reg, "world", world, out) == Outcome(status=7)  # type: ignore[arg-type]
    assert out.getvalue() == "hello world\n"
    (ctx,) = seen
    assert ctx.logout and ctx.credentials.refresh and ctx.env is world
    for registered in commands.registrations():
        module = registered.run.__module__
        assert module.startswith("runas_async.cli.commands."), (registered.name, module)
