"""The token provider against moto, in-process: sharing of calls, TLS set-up, warm connections."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import socket
import sys
import threading
import time
import types
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import anyio
import botocore.exceptions as bx
import pytest
from aiobotocore.client import AioBaseClient
from aiobotocore.config import AioConfig
from aiobotocore.httpsession import AIOHTTPSession, _ProxySSLTCPConnector  # type: ignore[attr-defined]
from aiobotocore.session import AioSession
from aiobotocore.signers import AioRequestSigner
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import UnknownServiceError
from botocore.loaders import JSONFileLoader, Loader

from runas_async.auth.registry import BuiltinRunner
from runas_async.aws import _transport
from runas_async.aws import tokens as aws
from runas_async.aws._transport import RegistryConnections
from runas_async.aws.boundary import Doing, map_aws_errors
from runas_async.aws.credentials import CredentialResolver, ResolvedCredentials
from runas_async.aws.preconnect import Preconnected
from runas_async.core.errors import ConfigError, CredentialsError, ProfileNotFound, TokenError
from runas_async.core.models import Registry, Token, TokenKey
from tests.ecr_public import ECR_PUBLIC_PASSWORD, TARGET
from tests.faults import wait_until
from tests.relay import TcpRelay
from tests.sandbox import DEFAULT_ACCOUNT, STATIC_KEYS, Moto, Sandbox, ecr_host, moto_password

ROLE_ACCOUNT = "210987654321"


@pytest.fixture
def provider(moto: Moto, monkeypatch: pytest.MonkeyPatch) -> aws.AwsTokenProvider:
    moto.write_aws_config(
        {
            "dev": {"region": "us-east-2", **STATIC_KEYS},
            "copy": {"region": "eu-west-1", **STATIC_KEYS},
        }
    )
    for name, value in moto.env().items():
        if name.startswith(("AWS_", "HOME")):
            monkeypatch.setenv(name, value)
    return aws.AwsTokenProvider(
        {p: aws.new_session(p) for p in ("dev", "copy")}, env=dict(os.environ)
    )


async def test_tokens_shared_by_credentials_and_region(
    moto: Moto, provider: aws.AwsTokenProvider
) -> None:
    """Same keys + same region: one GetAuthorizationToken, whichever profile asks."""
    a = await provider.token(TokenKey("dev", "us-west-2"))
    b = await provider.token(TokenKey("copy", "us-west-2"))
    c = await provider.token(TokenKey("dev", "ap-south-1"))
    assert a.password == b.password == c.password == moto_password("123456789012")
    assert moto.calls("ecr")["GetAuthorizationToken"] == 2


async def test_concurrent_profiles_with_the_same_keys_share_one_call(
    moto: Moto, provider: aws.AwsTokenProvider
) -> None:
    """Asked at once, two profiles with the same keys still make one call (a client unused)."""
    passwords: list[str] = []

    async def fetch(profile: str) -> None:
        passwords.append((await provider.token(TokenKey(profile, "us-west-2"))).password)

    async with anyio.create_task_group() as tg:
        tg.start_soon(fetch, "dev")
        tg.start_soon(fetch, "copy")
    assert passwords == [moto_password(DEFAULT_ACCOUNT)] * 2
    assert moto.calls("ecr") == {"GetAuthorizationToken": 1}


@pytest.mark.parametrize("public_first", [False, True], ids=["private-first", "public-first"])
async def test_private_and_public_ecr_in_us_east_1_get_a_token_each(
    moto: Moto, provider: aws.AwsTokenProvider, public_first: bool
) -> None:
    """Same credentials, both in us-east-1: ECR and ECR Public tokens are separate requests."""
    keys = [TokenKey("dev", "us-east-1"), TokenKey("dev", "us-east-1", public=True)]
    tokens = {key.public: await provider.token(key) for key in keys[:: -1 if public_first else 1]}
    assert tokens[False].password == moto_password(DEFAULT_ACCOUNT)
    assert tokens[True].password == ECR_PUBLIC_PASSWORD
    assert moto.calls("ecr") == {"GetAuthorizationToken": 1}
    assert moto.ecr_public is not None
    assert [target for target, _ in moto.ecr_public.calls] == [TARGET]


def _count_tls_builds(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """From now on, every TLS context aiobotocore builds (none is kept from before)."""
    built: list[Any] = []
    original = AIOHTTPSession._build_ssl_contexts  # type: ignore[attr-defined]

    def counting(self: Any, proxy_url: Any) -> Any:
        built.append(proxy_url)
        return original(self, proxy_url)

    monkeypatch.setattr(AIOHTTPSession, "_build_ssl_contexts", counting)
    monkeypatch.setattr(_transport.SharedTLSSession, "_contexts", {})
    return built


async def test_one_tls_context_for_all_clients(
    provider: aws.AwsTokenProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Clients for several regions reuse one TLS context instead of loading CAs each time."""
    if provider.tls_ahead is not None:
        provider.tls_ahead.join()  # its context built ahead goes to the dict replaced below
    built = _count_tls_builds(monkeypatch)
    for region in ("us-east-1", "us-west-2", "eu-west-1", "ap-south-1"):
        await provider.token(TokenKey("dev", region))
    assert built == [None]


async def test_tls_context_is_built_ahead_for_the_first_client(
    moto: Moto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider builds the clients' TLS context in a thread at once; clients then reuse it."""
    built = _count_tls_builds(monkeypatch)
    moto.write_aws_config({"dev": {"region": "us-east-2", **STATIC_KEYS}})
    for name, value in moto.env().items():
        if name.startswith(("AWS_", "HOME")):
            monkeypatch.setenv(name, value)
    provider = aws.AwsTokenProvider({"dev": aws.new_session("dev")}, env=dict(os.environ))
    assert await anyio.to_thread.run_sync(wait_until, lambda: built == [None], 10.0)
    await provider.token(TokenKey("dev", "us-east-2"))
    assert built == [None]  # same settings: the client took the one built ahead


@pytest.mark.parametrize(
    ("env", "profile", "expected"),
    [
        pytest.param({}, {}, {"mode": "standard", "total_max_attempts": 5}, id="defaults"),
        pytest.param(
            {"AWS_MAX_ATTEMPTS": "2", "AWS_RETRY_MODE": "adaptive"},
            {"max_attempts": "9"},
            {"mode": "adaptive", "total_max_attempts": 2},
            id="environment-wins",
        ),
        pytest.param(
            {},
            {"max_attempts": "3", "retry_mode": "legacy"},
            {"mode": "legacy", "total_max_attempts": 3},
            id="profile",
        ),
    ],
)
def test_retry_settings_of_the_user_are_honoured(
    moto: Moto,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    profile: dict[str, str],
    expected: dict[str, object],
) -> None:
    """AWS_RETRY_MODE/AWS_MAX_ATTEMPTS and the profile's settings replace the defaults."""
    moto.write_aws_config({"p": {"region": "us-east-1", **STATIC_KEYS, **profile}})
    session = _session(moto, "p", monkeypatch)
    assert getattr(aws.client_config(session, env), "retries", None) == expected


@pytest.mark.parametrize(
    "env",
    [{"AWS_MAX_ATTEMPTS": "zero"}, {"AWS_MAX_ATTEMPTS": "0"}, {"AWS_RETRY_MODE": "eager"}],
    ids=["not-a-number", "zero", "unknown-mode"],
)
def test_bad_retry_settings_are_named(
    moto: Moto, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    """An unusable retry setting is a configuration error naming the value."""
    moto.write_aws_config({"p": {"region": "us-east-1", **STATIC_KEYS}})
    with pytest.raises(ConfigError, match=repr(next(iter(env.values())))):
        aws.client_config(_session(moto, "p", monkeypatch), env)


def _session(moto: Moto, profile: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(moto.aws_config_file))
    return aws.new_session(profile)


# --- the ECR connection opened while the credentials are resolved --------------------------

LATE_KEYS = ResolvedCredentials(
    access_key="AKIALATEKEYSEXAMPLE1",
    secret_key="late/secret/key/never/logged/EXAMPLEKEY",
    token=None,
    method="test",
)
GATE_TIMEOUT = 10.0


class GatedResolver(CredentialResolver):
    """Answers ``outcome`` once ``gate()`` holds (never when None); fails if it does not soon.

    Like botocore's providers for a role, it first sends a request of its own (an STS call
    through the profile's session) unless ``send`` is False (static keys send nothing).
    """

    def __init__(
        self,
        gate: Callable[[], bool] | None,
        outcome: ResolvedCredentials | Exception = LATE_KEYS,
        *,
        send: bool = True,
    ) -> None:
        super().__init__()
        self.gate = gate
        self.outcome = outcome
        self.send = send

    async def resolve(self, session: AioSession, profile: str) -> ResolvedCredentials:
        if self.send:
            async with session.create_client(
                "sts",
                region_name="us-east-1",
                aws_access_key_id=STATIC_KEYS["aws_access_key_id"],
                aws_secret_access_key=STATIC_KEYS["aws_secret_access_key"],
            ) as sts:
                await sts.get_caller_identity()
        if self.gate is None:
            await anyio.sleep_forever()
        else:
            await _until(self.gate, "the gate of the credentials opens")
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


def _relay_to_moto(moto: Moto) -> TcpRelay:
    url = urllib.parse.urlsplit(moto.moto_url)
    return TcpRelay(url.hostname or "", url.port or 0)


def _gated_provider(
    moto: Moto, monkeypatch: pytest.MonkeyPatch, resolver: CredentialResolver, ecr_url: str
) -> aws.AwsTokenProvider:
    """Profile ``dev`` (no keys of its own: ``resolver`` gives them), ECR reached at ``ecr_url``."""
    moto.write_aws_config({"dev": {"region": "us-east-2"}})
    for name, value in moto.env(AWS_ENDPOINT_URL_ECR=ecr_url).items():
        if name.startswith(("AWS_", "HOME")):
            monkeypatch.setenv(name, value)
    return aws.AwsTokenProvider(
        {"dev": aws.new_session("dev")}, resolver=resolver, env=dict(os.environ)
    )


async def _until(predicate: Callable[[], bool], what: str) -> None:
    """Wait (in a thread: the relay counts in threads) until ``predicate()``; fail after a while."""
    if not await anyio.to_thread.run_sync(wait_until, predicate, GATE_TIMEOUT, 0.002):
        raise TimeoutError(f"timed out waiting until {what}")


async def test_token_call_uses_the_connection_opened_while_credentials_resolve(
    moto: Moto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ECR is connected to before the keys exist; that one connection then carries the call."""
    with _relay_to_moto(moto) as relay:
        # The keys come only once the relay has seen the client's connection to ECR.
        resolver = GatedResolver(lambda: relay.accepted >= 1)
        provider = _gated_provider(moto, monkeypatch, resolver, relay.url)
        token = await provider.token(TokenKey("dev", "us-west-2"))
        assert token.password == moto_password(DEFAULT_ACCOUNT)
        assert relay.accepted == 1
    ecr = [(c.operation, c.access_key) for c in moto.moto_calls() if c.service == "ecr"]
    # Signed with the keys resolved after the client was made, not its placeholders.
    assert ecr == [("GetAuthorizationToken", LATE_KEYS.access_key)]


async def test_no_client_is_made_before_the_credentials_request_is_sent(
    moto: Moto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Making clients waits for the first request on the wire (or the credentials)."""
    with _relay_to_moto(moto) as relay:
        seen: list[int] = []
        until = time.monotonic() + 0.5

        def gate() -> bool:
            seen.append(relay.accepted)
            return time.monotonic() > until  # time enough to make a client and connect

        resolver = GatedResolver(gate, send=False)  # nothing sent: no clients meanwhile
        provider = _gated_provider(moto, monkeypatch, resolver, relay.url)
        token = await provider.token(TokenKey("dev", "us-west-2"))
        assert token.password == moto_password(DEFAULT_ACCOUNT)
        assert set(seen) == {0}
        assert relay.accepted == 1


def _refused_url() -> str:
    with socket.socket() as s:  # bound, never listening: connecting is refused
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param("refused", id="connection-refused"),
        pytest.param(AttributeError("_get_session"), id="aiohttp-internals-changed"),
    ],
)
async def test_failed_warm_up_changes_nothing(
    moto: Moto,
    provider: aws.AwsTokenProvider,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    failure: str | Exception,
) -> None:
    """A warm-up that fails is logged at DEBUG (no secret) and the token comes as before."""
    original = _transport.SharedTLSSession.warm
    refused = _refused_url()
    tried: list[str] = []

    async def failing(self: _transport.SharedTLSSession, url: str) -> bool:
        tried.append(url)
        if isinstance(failure, Exception):
            raise failure
        return await original(self, refused)

    monkeypatch.setattr(_transport.SharedTLSSession, "warm", failing)
    caplog.set_level(logging.DEBUG, logger="runas_async.aws._transport")
    token = await provider.token(TokenKey("dev", "us-west-2"))
    assert token.password == moto_password(DEFAULT_ACCOUNT)
    assert tried == [moto.moto_url]
    assert moto.calls("ecr") == {"GetAuthorizationToken": 1}
    assert "no warm connection to 127.0.0.1" in caplog.text
    assert STATIC_KEYS["aws_secret_access_key"] not in caplog.text


async def test_credentials_error_closes_the_prepared_client(
    moto: Moto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Credentials that fail after the warm-up: their error as it is, the connection closed."""
    error = CredentialsError("cannot get credentials for profile 'dev': AccessDenied")
    with _relay_to_moto(moto) as relay:
        resolver = GatedResolver(lambda: relay.accepted >= 1, error)
        provider = _gated_provider(moto, monkeypatch, resolver, relay.url)
        with pytest.raises(CredentialsError) as raised:
            await provider.token(TokenKey("dev", "us-west-2"))
        assert raised.value is error
        await _until(lambda: relay.closed == relay.accepted == 1, "the connection is closed")
    assert moto.calls("ecr") == {}


async def test_cancelled_token_closes_the_prepared_client(
    moto: Moto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelled while the credentials are awaited: the warm connection is closed."""
    with _relay_to_moto(moto) as relay:
        resolver = GatedResolver(None)  # never ready
        provider = _gated_provider(moto, monkeypatch, resolver, relay.url)
        async with anyio.create_task_group() as tg:
            tg.start_soon(provider.token, TokenKey("dev", "us-west-2"))
            await _until(lambda: relay.accepted == 1, "the warm-up connects")
            tg.cancel_scope.cancel()
        await _until(lambda: relay.closed == 1, "the connection is closed")
    assert moto.calls("ecr") == {}


async def test_no_warm_up_through_a_proxy(moto: Moto) -> None:
    """Where a proxy applies, warm() connects nowhere (the request needs a CONNECT of its own)."""
    with _relay_to_moto(moto) as relay:
        async with _transport.SharedTLSSession(proxies={"http": relay.url}) as http:
            assert await http.warm(moto.moto_url) is False
        assert relay.accepted == 0


# --- the error boundary ------------------------------------------------------------------


def _client_error(code: str) -> bx.ClientError:
    return bx.ClientError({"Error": {"Code": code, "Message": "no"}}, "GetAuthorizationToken")


@pytest.mark.parametrize(
    ("doing", "raised", "expected", "text"),
    [
        pytest.param(
            Doing.CALLING,
            _client_error("ExpiredToken"),
            CredentialsError,
            "the credentials of profile 'p' were rejected (expired or invalid): ExpiredToken: no",
            id="call-rejected-credentials",
        ),
        pytest.param(
            Doing.CALLING,
            _client_error("AccessDenied"),
            TokenError,
            "ecr X in r for profile 'p': AccessDenied: no",
            id="call-denied",
        ),
        pytest.param(
            Doing.CALLING,
            bx.EndpointConnectionError(endpoint_url="http://x"),
            TokenError,
            "ecr X in r for profile 'p': Could not connect",
            id="call-no-connection",
        ),
        pytest.param(
            Doing.RESOLVING,
            bx.ProfileNotFound(profile="p"),
            ProfileNotFound,
            "profile 'p': The config profile (p) could not be found",
            id="resolve-no-profile",
        ),
        pytest.param(
            Doing.RESOLVING,
            _client_error("AccessDenied"),
            CredentialsError,
            "cannot get credentials for profile 'p': AccessDenied: no",
            id="resolve-denied",
        ),
        pytest.param(
            Doing.RESOLVING,
            json.JSONDecodeError("Expecting value", "oops", 0),
            CredentialsError,
            "cannot get credentials for profile 'p': credential_process printed something "
            "that is not JSON",
            id="resolve-process-not-json",
        ),
        pytest.param(
            Doing.RESOLVING,
            FileNotFoundError(2, "No such file or directory", "/nonexistent/helper"),
            CredentialsError,
            "cannot get credentials for profile 'p': [Errno 2] No such file or directory",
            id="resolve-process-cannot-start",
        ),
        pytest.param(
            Doing.FETCHING_CREDENTIALS,
            _client_error("AccessDenied"),
            CredentialsError,
            "ecr X in r for profile 'p' failed: AccessDenied: no",
            id="sts-denied",
        ),
        pytest.param(
            Doing.READING_CONFIG,
            bx.ConfigParseError(path="/cfg"),
            ConfigError,
            "cannot ecr X in r profile 'p': Unable to parse config file: /cfg",
            id="config-unparsable",
        ),
    ],
)
def test_botocore_errors_map_to_ours(
    doing: Doing, raised: Exception, expected: type[Exception], text: str
) -> None:
    """Each botocore error becomes one of ours, on one line, naming the profile."""
    with (
        pytest.raises(expected) as caught,
        map_aws_errors(profile="p", what="ecr X in r", doing=doing),
    ):
        raise raised
    assert type(caught.value) is expected
    assert str(caught.value).startswith(text)
    assert "\n" not in str(caught.value)
    assert caught.value.__cause__ is raised


@pytest.mark.parametrize(
    ("doing", "raised"),
    [
        pytest.param(Doing.CALLING, CredentialsError("ours"), id="ours-pass-through"),
        pytest.param(Doing.CALLING, KeyError("bug"), id="bugs-pass-through"),
        pytest.param(Doing.CALLING, OSError("not while calling"), id="oserror-while-calling"),
        pytest.param(Doing.FETCHING_CREDENTIALS, bx.NoCredentialsError(), id="left-to-resolving"),
    ],
)
def test_errors_not_mapped_pass_unchanged(doing: Doing, raised: Exception) -> None:
    """Our own errors, and ones the table does not name, leave the boundary as they came."""
    with pytest.raises(type(raised)) as caught, map_aws_errors(profile="p", doing=doing):
        raise raised
    assert caught.value is raised


# --- every private hook has a plain fallback ---------------------------------------------
#
# Each test takes one hook away the way a new aiohttp/aiobotocore/botocore could (the
# attribute missing or not what it was) while the library's own code still works, and
# checks that a token still comes, by the plain path, said at DEBUG.

_ABSENT = object()


def _hide_from_transport(
    monkeypatch: pytest.MonkeyPatch, owner: type, name: str, seen_as: object = _ABSENT
) -> None:
    """``owner.name`` as after a rename: missing (or ``seen_as``) for runas_async.aws._transport.

    The library's own code (any other module) still finds the attribute, class or instance
    level, so its plain path works; only the hook's own lookups meet the change.
    """
    original = inspect.getattr_static(owner, name, _ABSENT)

    class Hidden:
        def __get__(self, obj: object, objtype: type | None = None) -> Any:
            if sys._getframe(1).f_globals.get("__name__") == _transport.__name__:
                if seen_as is _ABSENT:
                    raise AttributeError(f"{owner.__name__!r} object has no attribute {name!r}")
                return seen_as
            if obj is not None and name in vars(obj):
                return vars(obj)[name]
            if original is _ABSENT:
                raise AttributeError(name)
            getter = getattr(original, "__get__", None)
            return original if getter is None else getter(obj, objtype)

        def __set__(self, obj: object, value: object) -> None:
            vars(obj)[name] = value

    monkeypatch.setattr(owner, name, Hidden(), raising=False)


def _static_provider(
    moto: Moto, monkeypatch: pytest.MonkeyPatch, **env: str
) -> aws.AwsTokenProvider:
    """Profile ``dev`` with static keys; made after the test has changed what it changes."""
    moto.write_aws_config({"dev": {"region": "us-east-2", **STATIC_KEYS}})
    for name, value in moto.env(**env).items():
        if name.startswith(("AWS_", "HOME")):
            monkeypatch.setenv(name, value)
    return aws.AwsTokenProvider({"dev": aws.new_session("dev")}, env=dict(os.environ))


async def _token_still_comes(moto: Moto, provider: aws.AwsTokenProvider) -> None:
    token = await provider.token(TokenKey("dev", "us-west-2"))
    assert token.password == moto_password(DEFAULT_ACCOUNT)
    assert moto.calls("ecr") == {"GetAuthorizationToken": 1}
    if provider.tls_ahead is not None:
        provider.tls_ahead.join()  # its error, if any, is reported with this test


@pytest.fixture
def debug_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="runas_async")
    return caplog


@pytest.mark.parametrize(
    "seen_as",
    [pytest.param(_ABSENT, id="missing"), pytest.param("not a method", id="not-callable")],
)
async def test_connects_not_hooked_without_wrap_create_connection(
    moto: Moto,
    monkeypatch: pytest.MonkeyPatch,
    debug_log: pytest.LogCaptureFixture,
    seen_as: object,
) -> None:
    """aiohttp's connector without _wrap_create_connection: no on_wire, still a token."""
    _hide_from_transport(monkeypatch, aiohttp.TCPConnector, "_wrap_create_connection", seen_as)
    provider = _static_provider(moto, monkeypatch)
    await _token_still_comes(moto, provider)
    assert "connects not hooked" in debug_log.text
    assert not provider.on_wire.is_set()


async def test_start_up_socket_closed_without_wrap_existing_connection(
    moto: Moto, monkeypatch: pytest.MonkeyPatch, debug_log: pytest.LogCaptureFixture
) -> None:
    """aiohttp's connector without _wrap_existing_connection: AssumeRole connects afresh."""
    monkeypatch.delattr(aiohttp.TCPConnector, "_wrap_existing_connection")
    with _relay_to_moto(moto) as relay:
        moto.write_aws_config(
            {
                "role": {
                    "role_arn": f"arn:aws:iam::{ROLE_ACCOUNT}:role/r",
                    "source_profile": "src",
                    "region": "us-east-2",
                },
                "src": {"region": "us-east-2", **STATIC_KEYS},
            }
        )
        env = moto.env(AWS_ENDPOINT_URL=relay.url)
        for name, value in env.items():
            if name.startswith(("AWS_", "HOME")):
                monkeypatch.setenv(name, value)
        pre = Preconnected()
        pre.open("127.0.0.1", relay.port)
        try:
            await _until(lambda: relay.accepted == 1, "the start-up connection is open")
            provider = aws.AwsTokenProvider(
                {"role": aws.new_session("role")}, env=env, preconnected=pre
            )
            token = await provider.token(TokenKey("role", "us-east-2"))
        finally:
            pre.close()
        assert token.password == moto_password(ROLE_ACCOUNT)
        assert pre.targets == []  # taken, then given up
        await _until(lambda: relay.closed >= 1, "the start-up connection is closed")
    assert "start-up connection not used: aiohttp differs" in debug_log.text
    assert moto.calls("sts") == {"AssumeRole": 1}


def _aiobotocore_without_build_ssl_contexts(monkeypatch: pytest.MonkeyPatch) -> None:
    """aiobotocore as if _build_ssl_contexts were renamed: its connector calls the new name."""
    build = AIOHTTPSession._build_ssl_contexts  # type: ignore[attr-defined]
    monkeypatch.delattr(AIOHTTPSession, "_build_ssl_contexts")

    async def create_connector(self: Any, proxy_url: str | None) -> Any:
        # aiobotocore 3.10's _create_connector, with the method under another name.
        ssl_context, proxy_ssl_context = await asyncio.to_thread(build, self, proxy_url)
        return _ProxySSLTCPConnector(
            limit=self._max_pool_connections,
            ssl=ssl_context,
            proxy_ssl_context=proxy_ssl_context,
            **self._connector_args,
        )

    monkeypatch.setattr(AIOHTTPSession, "_create_connector", create_connector)


async def test_no_tls_context_ahead_without_build_ssl_contexts(
    moto: Moto, monkeypatch: pytest.MonkeyPatch, debug_log: pytest.LogCaptureFixture
) -> None:
    """aiobotocore without _build_ssl_contexts: nothing built ahead, each client its own."""
    _aiobotocore_without_build_ssl_contexts(monkeypatch)
    provider = _static_provider(moto, monkeypatch)
    await _token_still_comes(moto, provider)
    assert "no TLS context built ahead: aiobotocore's differs" in debug_log.text


async def test_tls_context_not_shared_without_its_settings(
    moto: Moto, monkeypatch: pytest.MonkeyPatch, debug_log: pytest.LogCaptureFixture
) -> None:
    """aiobotocore's session without _verify: what a context depends on is unknown, no sharing."""
    _hide_from_transport(monkeypatch, AIOHTTPSession, "_verify")
    built = _count_tls_builds(monkeypatch)
    provider = _static_provider(moto, monkeypatch)
    for region in ("us-east-1", "us-west-2"):
        await provider.token(TokenKey("dev", region))
    assert provider.tls_ahead is not None
    provider.tls_ahead.join()
    assert len(built) == 3  # ahead, and one per client: aiobotocore's own way
    assert "TLS context not shared" in debug_log.text


async def _not_a_client_session(proxy_url: str | None) -> object:
    return object()


@pytest.mark.parametrize(
    ("name", "seen_as"),
    [
        pytest.param("_proxy_config", _ABSENT, id="no-proxy-config"),
        pytest.param("_proxy_config", object(), id="proxy-config-of-another-type"),
        pytest.param("_get_session", _ABSENT, id="no-get-session"),
        pytest.param("_get_session", _not_a_client_session, id="get-session-gives-other"),
    ],
)
async def test_no_warm_up_when_aiobotocores_session_differs(
    moto: Moto,
    monkeypatch: pytest.MonkeyPatch,
    debug_log: pytest.LogCaptureFixture,
    name: str,
    seen_as: object,
) -> None:
    """aiobotocore's session without (or with another) _proxy_config/_get_session: no warm-up."""
    _hide_from_transport(monkeypatch, AIOHTTPSession, name, seen_as)
    with _relay_to_moto(moto) as relay:
        provider = _static_provider(moto, monkeypatch, AWS_ENDPOINT_URL_ECR=relay.url)
        await _token_still_comes(moto, provider)
        assert relay.accepted == 1  # the call's own connection only
    assert "no warm-up: aiobotocore's session differs" in debug_log.text


@pytest.mark.parametrize(
    "seen_as",
    [pytest.param(_ABSENT, id="missing"), pytest.param(object(), id="without-http-session")],
)
async def test_no_warm_up_without_the_clients_endpoint(
    moto: Moto,
    monkeypatch: pytest.MonkeyPatch,
    debug_log: pytest.LogCaptureFixture,
    seen_as: object,
) -> None:
    """A botocore client without _endpoint (or its http_session): no warm-up, still a token."""
    _hide_from_transport(monkeypatch, AioBaseClient, "_endpoint", seen_as)
    provider = _static_provider(moto, monkeypatch)
    await _token_still_comes(moto, provider)
    assert "no warm connection to 127.0.0.1" in debug_log.text
    assert "not our HTTP session" in debug_log.text


async def test_client_made_with_the_credentials_when_the_signer_ignores_them(
    moto: Moto, monkeypatch: pytest.MonkeyPatch, debug_log: pytest.LogCaptureFixture
) -> None:
    """A signer that no longer reads request_credentials: the call goes through a plain client.

    Nothing is sent signed with the placeholder keys; moto sees only the late keys.
    """
    original = AioRequestSigner.get_auth_instance

    async def ignoring(self: Any, *args: Any, request_credentials: Any = None, **kw: Any) -> Any:
        return await original(self, *args, **kw)

    monkeypatch.setattr(AioRequestSigner, "get_auth_instance", ignoring)
    with _relay_to_moto(moto) as relay:
        resolver = GatedResolver(lambda: relay.accepted >= 1)
        provider = _gated_provider(moto, monkeypatch, resolver, relay.url)
        token = await provider.token(TokenKey("dev", "us-west-2"))
    assert token.password == moto_password(DEFAULT_ACCOUNT)
    ecr = [(c.operation, c.access_key) for c in moto.moto_calls() if c.service == "ecr"]
    assert ecr == [("GetAuthorizationToken", LATE_KEYS.access_key)]
    assert "the signer did not use request_credentials" in debug_log.text
    assert LATE_KEYS.secret_key not in debug_log.text


async def _role_credentials(moto: Moto, monkeypatch: pytest.MonkeyPatch) -> ResolvedCredentials:
    """A role profile resolved by botocore's own chain (AssumeRole: refreshable credentials)."""
    moto.write_aws_config(
        {
            "src": {"region": "us-east-1", **STATIC_KEYS},
            "r": {
                "region": "us-east-1",
                "role_arn": f"arn:aws:iam::{ROLE_ACCOUNT}:role/r",
                "source_profile": "src",
            },
        }
    )
    for name, value in moto.env().items():
        if name.startswith(("AWS_", "HOME")):
            monkeypatch.setenv(name, value)
    return await CredentialResolver().resolve(aws.new_session("r"), "r")


async def test_botocore_chain_credentials_carry_their_expiry(
    moto: Moto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """botocore's refreshable credentials keep their expiry private; the hook reads it."""
    creds = await _role_credentials(moto, monkeypatch)
    assert creds.expiry is not None and creds.expiry > datetime.now(UTC)


@pytest.mark.parametrize(
    "seen_as",
    [pytest.param(_ABSENT, id="missing"), pytest.param("2030-01-01", id="not-a-datetime")],
)
async def test_expiry_unknown_without_botocores_expiry_time(
    moto: Moto,
    monkeypatch: pytest.MonkeyPatch,
    debug_log: pytest.LogCaptureFixture,
    seen_as: object,
) -> None:
    """RefreshableCredentials without _expiry_time: the credentials still come, expiry unknown."""
    _hide_from_transport(monkeypatch, RefreshableCredentials, "_expiry_time", seen_as)
    creds = await _role_credentials(moto, monkeypatch)
    assert creds.access_key and creds.account_id in (None, ROLE_ACCOUNT)
    assert creds.expiry is None
    assert "credentials' expiry unknown" in debug_log.text


class _ModuleWithout(types.ModuleType):
    """``module`` as a release without ``missing`` would be (for _transport's lookups only)."""

    def __init__(self, module: types.ModuleType, missing: str) -> None:
        super().__init__(module.__name__)
        self._module, self._missing = module, missing

    def __getattr__(self, name: str) -> Any:
        if name == self._missing:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        return getattr(self._module, name)


@pytest.mark.parametrize(
    ("hidden", "said"),
    [
        pytest.param("_wrap_create_connection", "connects not hooked", id="wrap_create"),
        pytest.param(
            "_wrap_existing_connection", "start-up connection not used", id="wrap_existing"
        ),
        pytest.param("ClientRequest", "registry connection not opened ahead", id="ClientRequest"),
    ],
)
async def test_builtin_login_without_the_registry_connection_hooks(
    sb: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    debug_log: pytest.LogCaptureFixture,
    hidden: str,
    said: str,
) -> None:
    """--client builtin with one of its private steps gone (start-up sockets, connections
    opened while the token comes): a real registry still logs it in, connected the plain way."""
    password = "fallback-password"
    registry = sb.add_registry(ecr_host("444455556666", "eu-west-3"), password)
    if hidden == "ClientRequest":
        monkeypatch.setattr(_transport, "aiohttp", _ModuleWithout(aiohttp, hidden))
    else:
        _hide_from_transport(monkeypatch, aiohttp.TCPConnector, hidden)
    pre = Preconnected()
    pre.open_registry(registry.address)
    runner = BuiltinRunner(
        None, None, {}, connections=2, keep_secrets=True, opened=RegistryConnections(pre)
    )

    async def token() -> Token:
        return Token("AWS", password)

    try:
        async with runner:
            await runner.login(Registry(registry.address, "444455556666", "eu-west-3"), token)
    finally:
        pre.close()
    assert runner.secrets == {registry.address: ("AWS", password)}
    assert said in debug_log.text


# --- clients made without botocore's listing of every service ---------------------------


def _listings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every walk of botocore's service directories from now on in this thread (moto's
    server, in a thread of its own, walks them too), by type name."""
    walks: list[str] = []
    original = Loader.list_available_services
    ours = threading.get_ident()

    def counting(self: Loader, type_name: str) -> list[str]:
        if threading.get_ident() == ours:
            walks.append(type_name)
        return original(self, type_name)

    monkeypatch.setattr(Loader, "list_available_services", counting)
    return walks


async def test_token_clients_are_made_without_listing_every_service(
    moto: Moto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AssumeRole's STS client and the ECR client: no walk of botocore's 400+ services."""
    walks = _listings(monkeypatch)
    creds = await _role_credentials(moto, monkeypatch)
    assert creds.account_id in (None, ROLE_ACCOUNT)
    provider = _static_provider(moto, monkeypatch)
    await _token_still_comes(moto, provider)
    assert walks == []


def test_the_service_list_still_answers_as_botocores() -> None:
    """``in`` from the service's directory; the rest (and odd names) from the full list;
    an unknown service is refused with the known ones named, as botocore does."""
    session = aws.new_session(None)
    loader = session.get_component("data_loader")
    services = loader.list_available_services("service-2")
    assert "sts" in services and "ecr-public" in services
    assert "no-such-service" not in services and "../ecr" not in services and 3 not in services
    assert list(services) == Loader().list_available_services("service-2")
    assert len(services) > 300 and services[0] == sorted(services)[0]
    with pytest.raises(UnknownServiceError, match="Valid service names are: .*ecr"):
        loader.load_service_model("no-such-service", "service-2")


def test_botocores_data_decodes_to_the_same_content_in_plain_dicts() -> None:
    """The session's loader gives plain dicts, equal to botocore's own OrderedDicts."""
    loader = aws.new_session(None).get_component("data_loader")
    plain = loader.load_data("endpoints")
    assert type(plain) is dict and type(plain["partitions"][0]) is dict
    assert plain == Loader().load_data("endpoints")
    model = loader.load_service_model("ecr", "service-2")
    assert type(model["shapes"]) is dict
    assert model == Loader().load_service_model("ecr", "service-2")


@pytest.mark.parametrize(
    ("service", "region", "options"),
    [
        ("sts", "us-east-1", {}),
        ("sts", "us-gov-west-1", {"use_fips_endpoint": True}),
        ("ecr", "eu-west-1", {"use_dualstack_endpoint": True}),
        ("ecr", "cn-north-1", {}),
        ("ecr", "us-east-2", {"use_fips_endpoint": True, "use_dualstack_endpoint": True}),
        ("ecr-public", "us-east-1", {}),
    ],
)
async def test_endpoints_resolve_as_botocores_own(
    service: str, region: str, options: dict[str, bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client of a session with the quick loader goes where botocore's plain one goes."""
    for name in ("AWS_ENDPOINT_URL", "AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    config = AioConfig(**options)  # type: ignore[arg-type]
    urls = []
    for session in (aws.new_session(None), AioSession()):
        async with session.create_client(
            service,  # type: ignore[call-overload]
            region_name=region,
            config=config,
            aws_access_key_id="AKIDEXAMPLE",
            aws_secret_access_key="secret",
        ) as client:
            urls.append(client.meta.endpoint_url)
    assert urls[0] == urls[1]


def test_data_decoded_as_botocore_does_without_its_load_file(
    monkeypatch: pytest.MonkeyPatch, debug_log: pytest.LogCaptureFixture
) -> None:
    """A JSON file loader without ``_load_file`` (or another signature) is left as it is."""
    _hide_from_transport(monkeypatch, JSONFileLoader, "_load_file")
    loader = aws.new_session(None).get_component("data_loader")
    assert type(loader.file_loader) is JSONFileLoader
    assert "data decoded as botocore does" in debug_log.text
    assert loader.load_data("endpoints")["partitions"]


async def test_services_listed_as_botocore_does_without_list_api_versions(
    moto: Moto, monkeypatch: pytest.MonkeyPatch, debug_log: pytest.LogCaptureFixture
) -> None:
    """A loader without ``list_api_versions`` keeps botocore's listing; tokens still come."""
    _hide_from_transport(monkeypatch, Loader, "list_api_versions")
    walks = _listings(monkeypatch)
    provider = _static_provider(moto, monkeypatch)
    await _token_still_comes(moto, provider)
    assert "services listed as botocore does" in debug_log.text
    assert walks  # the plain path: botocore's own walk
