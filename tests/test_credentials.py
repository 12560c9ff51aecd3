"""Credentials: one MFA prompt per device, awscli's cache shared both ways, against moto.

moto's STS answers GetSessionToken and AssumeRole (it does not check MFA codes), so what is
checked is what we send and how often: the prompts (a fake, a real pseudo-terminal), the STS
calls moto saw, and the cache files botocore and awscli read and write.

The ``test_cli_*`` tests at the end run the real command with the options proposed for the
CLI wiring; they are expected to fail until ``cli.py`` is wired.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import stat
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import botocore.session
import pytest
from botocore.credentials import AssumeRoleProvider, ProfileProviderBuilder, ReadOnlyCredentials
from botocore.utils import JSONFileCache

from runas_async.aws.clicache import (
    SESSION_PREFIX,
    CredentialCache,
    role_cache_key,
    session_cache_key,
)
from runas_async.aws.credentials import CredentialResolver, ResolvedCredentials, default_resolver
from runas_async.aws.mfa import MfaChallenge, TerminalPrompt
from runas_async.aws.tokens import AwsTokenProvider, new_session
from runas_async.core.errors import ConfigError, CredentialsError, MfaCodeRequired
from runas_async.core.places import cli_cache_dir
from tests.missing import need_program, need_root
from tests.sandbox import STATIC_KEYS, Moto, Sandbox, ecr_host, moto_password

REPO = Path(__file__).resolve().parent.parent
MFA = "arn:aws:iam::123456789012:mfa/alice"
OTHER_MFA = "arn:aws:iam::123456789012:mfa/bob"
SOURCE_ACCOUNT = "123456789012"
ROLE_ACCOUNT = "210987654321"
CHAIN_ACCOUNT = "333333333333"
REGION = "us-east-1"
CODE = "918273"
ROLES = ("r1", "r2", "r3")
PROMPT_TEXT = "Enter MFA code for"


def role_arn(name: str, account: str = ROLE_ACCOUNT) -> str:
    return f"arn:aws:iam::{account}:role/{name}"


def profiles(mfa_on: str = "source") -> dict[str, dict[str, str]]:
    """``dev`` (static keys) under roles r1..r3; ``mfa_serial`` on the source, the roles, or none.

    Also ``chain`` (a role assumed from r1), ``plain`` (static keys, no MFA) and ``nomfa`` (a
    role from plain).
    """
    dev = {"region": REGION, **STATIC_KEYS}
    if mfa_on == "source":
        dev["mfa_serial"] = MFA
    result: dict[str, dict[str, str]] = {"dev": dev}
    for name in ROLES:
        role = {"role_arn": role_arn(name), "source_profile": "dev", "region": REGION}
        if mfa_on == "role":
            role["mfa_serial"] = MFA
        result[name] = role
    result["chain"] = {
        "role_arn": role_arn("ci", CHAIN_ACCOUNT),
        "source_profile": "r1",
        "region": REGION,
    }
    result["plain"] = {"region": REGION, **STATIC_KEYS}
    result["nomfa"] = {"role_arn": role_arn("nomfa"), "source_profile": "plain", "region": REGION}
    return result


class FakePrompt:
    """Answers every challenge with ``code`` and remembers the challenges."""

    def __init__(self, code: str = CODE) -> None:
        self.code = code
        self.challenges: list[MfaChallenge] = []

    async def __call__(self, challenge: MfaChallenge) -> str:
        self.challenges.append(challenge)
        await anyio.sleep(0.01)  # let concurrent resolutions pile up behind the first
        return self.code


class RefusingPrompt:
    """A prompt that must not be reached."""

    async def __call__(self, challenge: MfaChallenge) -> str:
        raise AssertionError(f"unexpected MFA prompt: {challenge}")


def sandbox_environ(sb: Moto, monkeypatch: pytest.MonkeyPatch) -> Moto:
    """The sandbox's environment in this process (moto, config files, HOME), MFA on the source."""
    for name, value in sb.env().items():
        monkeypatch.setenv(name, value)
    sb.write_aws_config(profiles("source"))
    return sb


@pytest.fixture
def aws(moto: Moto, monkeypatch: pytest.MonkeyPatch) -> Moto:
    """:func:`sandbox_environ` of moto alone (no namespace, no registry) for one test."""
    return sandbox_environ(moto, monkeypatch)


def cache_dir(sb: Moto) -> Path:
    return sb.home / ".aws" / "cli" / "cache"


def resolver(sb: Moto, prompt: Any = None, *, refresh: bool = False) -> CredentialResolver:
    return CredentialResolver(
        cache=CredentialCache(cache_dir(sb), refresh=refresh),
        prompt=FakePrompt() if prompt is None else prompt,
    )


async def resolve(r: CredentialResolver, profile: str) -> ResolvedCredentials:
    return await r.resolve(new_session(profile), profile)


def sts_calls(sb: Moto) -> dict[str, int]:
    return dict(sb.calls("sts"))


def role_file(sb: Moto, profile: str, config: Mapping[str, Any] | None = None) -> Path:
    """awscli's cache file for a role profile of :func:`profiles` (RoleArn, maybe SerialNumber)."""
    args: dict[str, Any] = {"RoleArn": role_arn(profile)}
    if config and config.get("mfa_serial"):
        args["SerialNumber"] = config["mfa_serial"]
    return cache_dir(sb) / f"{role_cache_key(args)}.json"


def session_file(sb: Moto, source: str = "dev", serial: str = MFA) -> Path:
    return cache_dir(sb) / f"{session_cache_key(source, serial)}.json"


def caller_account(creds: ResolvedCredentials) -> str:
    """GetCallerIdentity with ``creds`` through botocore: proves moto accepts them."""
    client = botocore.session.Session().create_client(
        "sts",
        region_name=REGION,
        aws_access_key_id=creds.access_key,
        aws_secret_access_key=creds.secret_key,
        aws_session_token=creds.token,
    )
    try:
        identity: Mapping[str, Any] = client.get_caller_identity()  # type: ignore[attr-defined]
    finally:
        client.close()
    return str(identity["Account"])


# --- one prompt, one session token, every role ------------------------------------------


@pytest.mark.parametrize("mfa_on", ["source", "role"])
async def test_role_behind_mfa_uses_one_session_token(aws: Moto, mfa_on: str) -> None:
    """mfa_serial on the source or on the role: one prompt, GetSessionToken, then AssumeRole."""
    aws.write_aws_config(profiles(mfa_on))
    prompt = FakePrompt()
    creds = await resolve(resolver(aws, prompt), "r1")
    assert prompt.challenges == [MfaChallenge(profile="r1", source_profile="dev", serial=MFA)]
    assert sts_calls(aws) == {"GetSessionToken": 1, "AssumeRole": 1}
    assert creds.account_id == ROLE_ACCOUNT
    assert creds.expiry is not None and creds.expiry > datetime.now(UTC)
    assert caller_account(creds) == ROLE_ACCOUNT


async def test_three_roles_sharing_a_source_prompt_once(aws: Moto) -> None:
    """Three roles resolved at once behind one source and device: one code, three AssumeRoles."""
    prompt = FakePrompt()
    r = resolver(aws, prompt)
    found: dict[str, ResolvedCredentials] = {}

    async def one(name: str) -> None:
        found[name] = await resolve(r, name)

    async with anyio.create_task_group() as tg:
        for name in ROLES:
            tg.start_soon(one, name)
    assert len(prompt.challenges) == 1
    assert sts_calls(aws) == {"GetSessionToken": 1, "AssumeRole": 3}
    assert len({c.access_key for c in found.values()}) == 3


async def test_second_run_uses_the_cache(aws: Moto) -> None:
    """A new resolver (a second run) finds every role in the cache: no prompt, no STS call."""
    first = {name: await resolve(resolver(aws), name) for name in ROLES}
    aws.clear_calls()
    prompt = FakePrompt()
    second = {name: await resolve(resolver(aws, prompt), name) for name in ROLES}
    assert prompt.challenges == []
    assert sts_calls(aws) == {}
    assert {n: c.access_key for n, c in second.items()} == {
        n: c.access_key for n, c in first.items()
    }


async def test_cached_session_token_serves_a_new_role(aws: Moto) -> None:
    """A role not assumed yet is assumed with the cached MFA session: no new prompt."""
    await resolve(resolver(aws), "r1")
    aws.clear_calls()
    prompt = FakePrompt()
    creds = await resolve(resolver(aws, prompt), "r2")
    assert prompt.challenges == []
    assert sts_calls(aws) == {"AssumeRole": 1}
    assert caller_account(creds) == ROLE_ACCOUNT


async def test_refresh_ignores_the_cache(aws: Moto) -> None:
    """--refresh: prompt and call STS again despite a fresh cache, and rewrite the files."""
    await resolve(resolver(aws), "r1")
    before = json.loads(role_file(aws, "r1").read_text())
    aws.clear_calls()
    prompt = FakePrompt()
    creds = await resolve(resolver(aws, prompt, refresh=True), "r1")
    assert len(prompt.challenges) == 1
    assert sts_calls(aws) == {"GetSessionToken": 1, "AssumeRole": 1}
    after = json.loads(role_file(aws, "r1").read_text())
    assert after["Credentials"]["AccessKeyId"] == creds.access_key
    assert after["Credentials"]["AccessKeyId"] != before["Credentials"]["AccessKeyId"]


async def test_role_chain_prompts_once_at_the_bottom(aws: Moto) -> None:
    """chain -> r1 -> dev (MFA): one GetSessionToken, two AssumeRoles, each hop cached."""
    prompt = FakePrompt()
    creds = await resolve(resolver(aws, prompt), "chain")
    assert len(prompt.challenges) == 1
    assert prompt.challenges[0].profile == "chain"
    assert sts_calls(aws) == {"GetSessionToken": 1, "AssumeRole": 2}
    assert caller_account(creds) == CHAIN_ACCOUNT
    aws.clear_calls()
    assert (await resolve(resolver(aws, RefusingPrompt()), "r1")).account_id == ROLE_ACCOUNT
    assert sts_calls(aws) == {}


async def test_static_profile_with_mfa_serial_gets_a_session(aws: Moto) -> None:
    """A profile with keys and mfa_serial used directly: its own MFA session credentials."""
    prompt = FakePrompt()
    creds = await resolve(resolver(aws, prompt), "dev")
    assert len(prompt.challenges) == 1
    assert sts_calls(aws) == {"GetSessionToken": 1}
    assert creds.token and creds.method == "mfa-session"
    assert session_file(aws).exists()


async def test_two_devices_in_one_chain_are_refused(aws: Moto) -> None:
    """A chain naming two different MFA devices is a configuration error, before any call."""
    config = profiles("source")
    config["r1"]["mfa_serial"] = OTHER_MFA
    aws.write_aws_config(config)
    with pytest.raises(ConfigError, match=r"more than one MFA device.*alice.*bob|bob.*alice"):
        await resolve(resolver(aws), "r1")
    assert sts_calls(aws) == {}


async def test_empty_code_is_refused_before_sts(aws: Moto) -> None:
    """An empty answer to the prompt fails the profile without calling GetSessionToken."""
    with pytest.raises(CredentialsError, match="no MFA code given"):
        await resolve(resolver(aws, FakePrompt(code="  ")), "r1")
    assert sts_calls(aws) == {}


async def test_role_without_mfa_keeps_botocores_chain_with_awscli_cache(aws: Moto) -> None:
    """No mfa_serial: botocore assumes the role, writing awscli's file; a second run reuses it."""
    prompt = FakePrompt()
    creds = await resolve(resolver(aws, prompt), "nomfa")
    assert creds.method == "assume-role"
    assert prompt.challenges == []
    assert sts_calls(aws) == {"AssumeRole": 1}
    assert role_file(aws, "nomfa").exists()
    aws.clear_calls()
    again = await resolve(resolver(aws, prompt), "nomfa")
    assert again.access_key == creds.access_key
    assert sts_calls(aws) == {}


async def test_default_resolver_is_botocore_unchanged(aws: Moto) -> None:
    """CredentialResolver() writes no cache and leaves a source's mfa_serial to botocore."""
    creds = await resolve(CredentialResolver(), "r1")
    assert creds.method == "assume-role"
    assert sts_calls(aws) == {"AssumeRole": 1}
    assert not cache_dir(aws).exists()


async def test_token_provider_delegates_to_the_resolver(aws: Moto) -> None:
    """AwsTokenProvider(resolver=...) resolves through it: one prompt serves credentials and STS."""
    prompt = FakePrompt()
    provider = AwsTokenProvider(
        {"r1": new_session("r1")}, resolver=resolver(aws, prompt), env=dict(os.environ)
    )
    assert await provider.account("r1", REGION) == ROLE_ACCOUNT
    await provider.credentials("r1")
    assert len(prompt.challenges) == 1
    assert sts_calls(aws) == {"GetSessionToken": 1, "AssumeRole": 1, "GetCallerIdentity": 1}


async def test_broken_credential_process_is_a_credentials_error(aws: Moto) -> None:
    """A credential_process that cannot start is one CredentialsError naming the profile."""
    config = profiles("source")
    config["broken"] = {"credential_process": "/nonexistent/helper", "region": REGION}
    aws.write_aws_config(config)
    with pytest.raises(CredentialsError, match="'broken'"):
        await resolve(resolver(aws), "broken")


def test_cache_dir_follows_home(tmp_path: Path) -> None:
    """The cache lives under $HOME, as awscli's does."""
    assert cli_cache_dir({"HOME": str(tmp_path)}) == tmp_path / ".aws" / "cli" / "cache"


def test_default_resolver_takes_the_code_from_mfa_code(tmp_path: Path) -> None:
    """default_resolver: --mfa-code wins over MFA_CODE; the cache is awscli's under HOME."""
    env = {"HOME": str(tmp_path), "MFA_CODE": "111111"}
    challenge = MfaChallenge(profile="p", source_profile="s", serial=MFA)
    for code, expected in ((None, "111111"), ("222222", "222222")):
        r = default_resolver(env, mfa_code=code)
        assert r.prompt is not None
        assert anyio.run(r.prompt, challenge) == expected
        assert r.cache is not None and r.cache.directory == cli_cache_dir(env)


# --- the cache files ---------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_cache_files_are_private(aws: Moto) -> None:
    """Both files are 0600 and ours, named as awscli would (role) and runas-async-session-*."""
    await resolve(resolver(aws), "r1")
    names = sorted(p.name for p in cache_dir(aws).iterdir())
    assert names == sorted([role_file(aws, "r1").name, session_file(aws).name])
    assert session_file(aws).name.startswith(SESSION_PREFIX)
    for path in cache_dir(aws).iterdir():
        assert _mode(path) == 0o600
        assert path.stat().st_uid == os.geteuid()
    assert _mode(cache_dir(aws)) == 0o700


def _set_expiration(path: Path, value: str) -> None:
    doc = json.loads(path.read_text())
    doc["Credentials"]["Expiration"] = value
    path.write_text(json.dumps(doc))


def _expiring_in(path: Path, delta: timedelta) -> None:
    _set_expiration(path, (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%S%Z"))


def _symlinked(path: Path) -> None:
    real = path.with_suffix(".real")
    path.rename(real)
    path.symlink_to(real)


def _directory(path: Path) -> None:
    path.unlink()
    path.mkdir()


TAMPERINGS: dict[str, Callable[[Path], object]] = {
    "group-readable": lambda p: p.chmod(0o640),
    "world-readable": lambda p: p.chmod(0o604),
    "symlink": _symlinked,
    "not-json": lambda p: p.write_text("{not json"),
    "empty": lambda p: p.write_text(""),
    "no-credentials": lambda p: p.write_text('{"Credentials": {}}'),
    "naive-expiration": lambda p: _set_expiration(p, "2099-01-01T00:00:00"),
    "bad-expiration": lambda p: _set_expiration(p, "soon"),
    "expired": lambda p: _expiring_in(p, timedelta(hours=-1)),
    "expires-in-5-minutes": lambda p: _expiring_in(p, timedelta(minutes=5)),
}


def _other_owner(path: Path) -> None:
    os.chown(path, 65534, 65534)


@pytest.mark.parametrize("which", ["role", "session"])
@pytest.mark.parametrize("tampering", [*TAMPERINGS, "other-owner"])
async def test_untrusted_or_stale_entries_are_replaced(
    aws: Moto, which: str, tampering: str
) -> None:
    """A file that is loose, foreign, linked, corrupt or (nearly) expired is ignored, replaced."""
    if tampering == "other-owner":
        need_root("chown to another user needs root")
    await resolve(resolver(aws), "r1")
    path = role_file(aws, "r1") if which == "role" else session_file(aws)
    if which == "session":
        role_file(aws, "r1").unlink()  # so that the session is needed again
    (TAMPERINGS.get(tampering) or _other_owner)(path)
    aws.clear_calls()
    prompt = FakePrompt()
    creds = await resolve(resolver(aws, prompt), "r1")
    expected = {"AssumeRole": 1} if which == "role" else {"GetSessionToken": 1, "AssumeRole": 1}
    assert sts_calls(aws) == expected
    assert len(prompt.challenges) == (which == "session")
    st = os.lstat(path)
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_uid == os.geteuid()
    if which == "role":
        assert json.loads(path.read_text())["Credentials"]["AccessKeyId"] == creds.access_key


async def test_botocore_path_ignores_untrusted_files_too(aws: Moto) -> None:
    """botocore's own assume-role provider, given our cache, skips a group-readable file."""
    first = await resolve(resolver(aws), "nomfa")
    role_file(aws, "nomfa").chmod(0o644)
    aws.clear_calls()
    again = await resolve(resolver(aws), "nomfa")
    assert sts_calls(aws) == {"AssumeRole": 1}
    assert again.access_key != first.access_key
    assert _mode(role_file(aws, "nomfa")) == 0o600


async def test_directory_in_the_way_is_not_fatal(aws: Moto) -> None:
    """A cache entry that cannot be replaced (a directory) costs a call, not the run."""
    await resolve(resolver(aws), "r1")
    _directory(role_file(aws, "r1"))
    aws.clear_calls()
    creds = await resolve(resolver(aws), "r1")
    assert caller_account(creds) == ROLE_ACCOUNT
    assert sts_calls(aws) == {"AssumeRole": 1, "GetCallerIdentity": 1}
    assert not list(cache_dir(aws).glob("*.tmp"))


def test_unwritable_cache_is_not_fatal(tmp_path: Path) -> None:
    """A cache that cannot be written logs and goes on (a run without a cache)."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    cache = CredentialCache(blocker / "cache")
    cache["k"] = {"Credentials": {}}
    assert "k" not in cache


# --- the same files as botocore and awscli -----------------------------------------------


def _botocore_assume(
    profile: str, directory: Path, prompter: Callable[[str], str]
) -> ReadOnlyCredentials:
    """botocore's own AssumeRoleProvider with awscli's JSONFileCache (sync, as awscli runs)."""
    session = botocore.session.Session(profile=profile)
    provider = AssumeRoleProvider(
        load_config=lambda: session.full_config,
        client_creator=session.create_client,
        cache=JSONFileCache(str(directory)),  # type: ignore[arg-type]
        profile_name=profile,
        prompter=prompter,
        profile_provider_builder=ProfileProviderBuilder(session),
    )
    creds = provider.load()
    assert creds is not None
    return creds.get_frozen_credentials()


def _never(prompt: str) -> str:
    raise AssertionError(f"botocore prompted: {prompt}")


ROLE_OPTIONS = {
    "mfa-on-role": {"mfa_serial": MFA},
    "mfa-on-role-with-options": {
        "mfa_serial": MFA,
        "external_id": "ext-1",
        "role_session_name": "alice",
        "duration_seconds": "1800",
    },
}


def _config_with(options: Mapping[str, str]) -> dict[str, dict[str, str]]:
    config = profiles("none")
    config["r1"].update(options)
    return config


@pytest.mark.parametrize("options", list(ROLE_OPTIONS.values()), ids=list(ROLE_OPTIONS))
async def test_botocore_reads_the_file_we_write(aws: Moto, options: dict[str, str]) -> None:
    """Our AssumeRole result is found by botocore's JSONFileCache under awscli's key: no call."""
    aws.write_aws_config(_config_with(options))
    ours = await resolve(resolver(aws), "r1")
    aws.clear_calls()
    theirs = await anyio.to_thread.run_sync(_botocore_assume, "r1", cache_dir(aws), _never)
    assert theirs.access_key == ours.access_key
    assert sts_calls(aws) == {}


@pytest.mark.parametrize("options", list(ROLE_OPTIONS.values()), ids=list(ROLE_OPTIONS))
async def test_we_read_the_file_botocore_writes(aws: Moto, options: dict[str, str]) -> None:
    """A role botocore assumed (with its own MFA prompt) is reused by us: no prompt, no call."""
    aws.write_aws_config(_config_with(options))
    prompts: list[str] = []

    def prompter(text: str) -> str:
        prompts.append(text)
        return CODE

    theirs = await anyio.to_thread.run_sync(_botocore_assume, "r1", cache_dir(aws), prompter)
    assert len(prompts) == 1 and sts_calls(aws) == {"AssumeRole": 1}
    aws.clear_calls()
    ours = await resolve(resolver(aws, RefusingPrompt()), "r1")
    assert ours.access_key == theirs.access_key
    assert sts_calls(aws) == {}


AWSCLI_INSTALL = "make awscli: uv tool install, see .ci/awscli"


def _awscli(sb: Moto, profile: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``aws sts get-caller-identity`` with no terminal (a prompt would read ``stdin``)."""
    return subprocess.run(
        [
            shutil.which("aws") or "aws",
            "sts",
            "get-caller-identity",
            "--profile",
            profile,
            "--output",
            "json",
        ],
        env=sb.env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,
        check=False,
    )


async def test_awscli_reuses_the_role_we_assumed(aws: Moto) -> None:
    """The real awscli finds our cached role (mfa_serial on the role): no AssumeRole, no prompt."""
    need_program("aws", AWSCLI_INSTALL)
    aws.write_aws_config(profiles("role"))
    await resolve(resolver(aws), "r1")
    aws.clear_calls()
    done = await anyio.to_thread.run_sync(_awscli, aws, "r1")
    assert done.returncode == 0, done.stderr
    assert f":{ROLE_ACCOUNT}:" in json.loads(done.stdout)["Arn"]
    assert sts_calls(aws) == {"GetCallerIdentity": 1}


async def test_we_reuse_the_role_awscli_assumed(aws: Moto) -> None:
    """A role the real awscli assumed with an MFA code is reused by us without a prompt."""
    need_program("aws", AWSCLI_INSTALL)
    aws.write_aws_config(profiles("role"))
    done = await anyio.to_thread.run_sync(_awscli, aws, "r1", f"{CODE}\n")
    assert done.returncode == 0, done.stderr
    assert role_file(aws, "r1", {"mfa_serial": MFA}).exists()
    aws.clear_calls()
    creds = await resolve(resolver(aws, RefusingPrompt()), "r1")
    assert sts_calls(aws) == {}
    assert caller_account(creds) == ROLE_ACCOUNT


# --- the terminal prompt -----------------------------------------------------------------


CHALLENGE = MfaChallenge(profile="r1", source_profile="dev", serial=MFA)


async def test_mfa_code_answers_without_a_terminal() -> None:
    """A given code (--mfa-code, MFA_CODE) is the answer; no terminal is opened."""
    prompt = TerminalPrompt(code=f" {CODE}\n", tty="/nonexistent/tty")
    assert await prompt(CHALLENGE) == CODE


async def test_no_terminal_and_no_code_names_profile_and_device() -> None:
    """Without a terminal or a code: MfaCodeRequired naming the profile, the device, the fixes."""
    with pytest.raises(MfaCodeRequired) as caught:
        await TerminalPrompt(tty="/nonexistent/tty")(CHALLENGE)
    message = str(caught.value)
    for part in ("'r1'", MFA, "--mfa-code", "MFA_CODE"):
        assert part in message


@dataclass
class Terminal:
    """The test's end of a pseudo-terminal whose other end is the prompt's tty."""

    main: int
    tty: str
    screen: bytes = b""

    async def wait_for(self, text: bytes) -> None:
        with anyio.fail_after(10):
            while text not in self.screen:
                await anyio.wait_readable(self.main)
                self.screen += os.read(self.main, 4096)

    def type(self, line: str) -> None:
        os.write(self.main, line.encode() + b"\n")


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    main, secondary = pty.openpty()
    try:
        yield Terminal(main=main, tty=os.ttyname(secondary))
    finally:
        os.close(main)
        os.close(secondary)


def _echo_on(tty: str) -> bool:
    fd = os.open(tty, os.O_RDWR | os.O_NOCTTY)
    try:
        return bool(termios.tcgetattr(fd)[3] & termios.ECHO)
    finally:
        os.close(fd)


async def test_prompts_are_serialised_and_pause_the_display(terminal: Terminal) -> None:
    """Two prompts at once: one after the other, each inside the pause, codes never echoed."""
    events: list[str] = []

    class Pause:
        def __enter__(self) -> None:
            events.append("pause")

        def __exit__(self, *exc: object) -> None:
            events.append("resume")

    prompt = TerminalPrompt(tty=terminal.tty, pause=Pause)
    answers: dict[str, str] = {}
    first = MfaChallenge(profile="a", source_profile="dev", serial=MFA)
    second = MfaChallenge(profile="b", source_profile="ops", serial=OTHER_MFA)

    async def ask(challenge: MfaChallenge) -> None:
        answers[challenge.profile] = await prompt(challenge)

    async with anyio.create_task_group() as tg:
        tg.start_soon(ask, first)
        tg.start_soon(ask, second)
        await terminal.wait_for(b"): ")
        await anyio.sleep(0.2)  # the other prompt must not appear meanwhile
        assert terminal.screen.count(PROMPT_TEXT.encode()) == 1
        shown_first = MFA.encode() in terminal.screen
        terminal.type("111111")
        await terminal.wait_for(OTHER_MFA.encode() if shown_first else MFA.encode())
        assert terminal.screen.count(PROMPT_TEXT.encode()) == 2
        terminal.type("222222")
    order = ("a", "b") if shown_first else ("b", "a")
    assert answers == {order[0]: "111111", order[1]: "222222"}
    assert events == ["pause", "resume", "pause", "resume"]
    assert b"111111" not in terminal.screen and b"222222" not in terminal.screen
    assert _echo_on(terminal.tty)


async def test_cancelled_prompt_restores_echo(terminal: Terminal) -> None:
    """A prompt cancelled while it waits (Ctrl-C, deadline) leaves the terminal echoing again."""
    prompt = TerminalPrompt(tty=terminal.tty)
    async with anyio.create_task_group() as tg:
        tg.start_soon(prompt, CHALLENGE)
        await terminal.wait_for(PROMPT_TEXT.encode())
        assert not _echo_on(terminal.tty)
        tg.cancel_scope.cancel()
    assert _echo_on(terminal.tty)


# --- the real /dev/tty, in a process of its own ------------------------------------------

DRIVER = """
import json, os, sys, anyio
from runas_async.aws.tokens import new_session
from runas_async.aws.clicache import CredentialCache
from runas_async.aws.credentials import CredentialResolver
from runas_async.aws.mfa import TerminalPrompt
from runas_async.core.places import cli_cache_dir

async def main() -> None:
    cache = CredentialCache(cli_cache_dir(os.environ))
    resolver = CredentialResolver(cache=cache, prompt=TerminalPrompt())
    found = {}

    async def one(name):
        found[name] = (await resolver.resolve(new_session(name), name)).account_id

    async with anyio.create_task_group() as tg:
        for name in sys.argv[1:]:
            tg.start_soon(one, name)
    print(json.dumps(found))

anyio.run(main)
"""


@dataclass(frozen=True)
class TerminalRun:
    returncode: int
    screen: str
    """Everything the process wrote to its terminal."""
    stdout: str
    """Its stdout when that is a pipe (``stdout_is_tty=False``)."""

    @property
    def prompts(self) -> int:
        return self.screen.count(PROMPT_TEXT)

    @property
    def text(self) -> str:
        """The screen without terminal escape sequences."""
        return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", self.screen)


def run_on_terminal(
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    answer: str | None = CODE,
    stdout_is_tty: bool = False,
    timeout: float = 60,
) -> TerminalRun:
    """Run ``argv`` with a pseudo-terminal as its controlling terminal (``setsid -c``).

    stdin and stderr are the terminal, stdout too with ``stdout_is_tty``, a pipe otherwise.
    Each MFA prompt that appears on the terminal is answered with ``answer``.
    """
    main, secondary = pty.openpty()
    process = subprocess.Popen(
        ["setsid", "-w", "-c", *argv],
        stdin=secondary,
        stdout=secondary if stdout_is_tty else subprocess.PIPE,
        stderr=secondary,
        env=dict(env),
        cwd=REPO,
    )
    os.close(secondary)
    screen = b""
    answered = 0
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(main, 65536)
                except OSError:  # EIO: every process holding the terminal is gone
                    break
                if not chunk:
                    break
                screen += chunk
                if answer is not None and screen.count(PROMPT_TEXT.encode()) > answered:
                    answered += 1
                    time.sleep(0.05)
                    os.write(main, answer.encode() + b"\n")
            elif process.poll() is not None:
                break
        stdout = process.stdout.read().decode() if process.stdout else ""
        returncode = process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()
        os.close(main)
    return TerminalRun(returncode, screen.decode("utf-8", "replace"), stdout)


def run_detached(
    argv: Sequence[str], env: Mapping[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in a new session: no controlling terminal, so /dev/tty cannot be opened."""
    return subprocess.run(
        list(argv),
        env=dict(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        start_new_session=True,
        cwd=REPO,
        check=False,
    )


def test_prompt_on_a_real_terminal(moto: Moto) -> None:
    """Three roles in a real process: one prompt on /dev/tty, never on stdout, code not echoed."""
    moto.write_aws_config(profiles("source"))
    done = run_on_terminal([sys.executable, "-c", DRIVER, *ROLES], moto.env())
    assert done.returncode == 0, done.screen
    assert json.loads(done.stdout) == dict.fromkeys(ROLES, ROLE_ACCOUNT)
    assert done.prompts == 1
    assert MFA in done.screen and PROMPT_TEXT not in done.stdout
    assert CODE not in done.screen
    assert sts_calls(moto) == {"GetSessionToken": 1, "AssumeRole": 3}
    again = run_on_terminal([sys.executable, "-c", DRIVER, *ROLES], moto.env())
    assert again.returncode == 0 and again.prompts == 0
    assert sts_calls(moto) == {"GetSessionToken": 1, "AssumeRole": 3}


def test_no_controlling_terminal_is_refused(moto: Moto) -> None:
    """A process without a terminal and without a code fails naming the profile and device."""
    moto.write_aws_config(profiles("source"))
    done = run_detached([sys.executable, "-c", DRIVER, "r1"], moto.env())
    assert done.returncode != 0
    assert "MfaCodeRequired" in done.stderr and "'r1'" in done.stderr and MFA in done.stderr
    assert sts_calls(moto) == {}


# --- the command line (pending the wiring in cli.py) --------------------------------------


def _tool(*args: str) -> list[str]:
    return [sys.executable, "-m", "runas_async", *args]


def _with_registry(sb: Sandbox) -> str:
    sb.write_aws_config(profiles("source"))
    host = ecr_host(ROLE_ACCOUNT, REGION)
    sb.add_registry(host, moto_password(ROLE_ACCOUNT))
    return host


def test_cli_ecr_login_prompts_once_then_uses_the_cache(sb: Sandbox) -> None:
    """`ecr login r1` asks on the terminal (live table paused), then a second run asks nothing."""
    host = _with_registry(sb)
    env = sb.env(TERM="xterm", COLUMNS="200", LINES="50")
    done = run_on_terminal(sb.wrap(_tool("ecr", "login", "r1")), env, stdout_is_tty=True)
    assert done.returncode == 0, done.screen
    assert done.prompts == 1 and "1 logged in" in done.text
    assert sb.docker_auths() == {host: f"AWS:{moto_password(ROLE_ACCOUNT)}"}
    assert sts_calls(sb)["GetSessionToken"] == 1
    sb.clear_calls()
    again = run_detached(sb.wrap(_tool("ecr", "login", "r1")), sb.env())
    assert again.returncode == 0, again.stderr
    assert "GetSessionToken" not in sts_calls(sb) and "AssumeRole" not in sts_calls(sb)


@pytest.mark.parametrize("how", ["option", "variable"])
def test_cli_mfa_code_without_a_terminal(sb: Sandbox, how: str) -> None:
    """`--mfa-code CODE` or MFA_CODE answers the prompt of `ecr login` with no terminal."""
    _with_registry(sb)
    args = ["ecr", "login", "r1", *(["--mfa-code", CODE] if how == "option" else [])]
    env = sb.env(**({"MFA_CODE": CODE} if how == "variable" else {}))
    done = run_detached(sb.wrap(_tool(*args)), env)
    assert done.returncode == 0, done.stderr
    assert sts_calls(sb)["GetSessionToken"] == 1


def test_cli_no_terminal_no_code_fails_its_registries(sb: Sandbox) -> None:
    """`ecr login r1` with neither a terminal nor a code: r1's registry fails (exit 1), its
    one line naming r1 and the device and saying how to give a code."""
    _with_registry(sb)
    done = run_detached(sb.wrap(_tool("ecr", "login", "r1")), sb.env())
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.startswith("failed  ") and done.stdout.count("\n") == 1
    assert "'r1'" in done.stdout and MFA in done.stdout and "--mfa-code" in done.stdout
    assert "GetSessionToken" not in sts_calls(sb)


def test_cli_refresh_ignores_the_cache(sb: Sandbox) -> None:
    """`ecr login r1 --refresh` asks STS again although the cache is fresh."""
    _with_registry(sb)
    first = run_detached(sb.wrap(_tool("ecr", "login", "r1", "--mfa-code", CODE)), sb.env())
    assert first.returncode == 0, first.stderr
    sb.clear_calls()
    args = ("ecr", "login", "r1", "--refresh", "--mfa-code", CODE)
    again = run_detached(sb.wrap(_tool(*args)), sb.env())
    assert again.returncode == 0, again.stderr
    assert sts_calls(sb)["GetSessionToken"] == 1 and sts_calls(sb)["AssumeRole"] == 1
