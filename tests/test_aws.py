"""The token provider against moto, in-process: sharing of calls and of TLS set-up."""

from __future__ import annotations

from typing import Any

import pytest
from aiobotocore.httpsession import AIOHTTPSession

from runas_async import aws
from runas_async.models import TokenKey
from tests.sandbox import STATIC_KEYS, Sandbox, moto_password


@pytest.fixture
def provider(sb: Sandbox, monkeypatch: pytest.MonkeyPatch) -> aws.AwsTokenProvider:
    sb.write_aws_config(
        {
            "dev": {"region": "us-east-2", **STATIC_KEYS},
            "copy": {"region": "eu-west-1", **STATIC_KEYS},
        }
    )
    for name, value in sb.env().items():
        if name.startswith(("AWS_", "HOME")):
            monkeypatch.setenv(name, value)
    return aws.AwsTokenProvider({p: aws.new_session(p) for p in ("dev", "copy")})


async def test_tokens_shared_by_credentials_and_region(
    sb: Sandbox, provider: aws.AwsTokenProvider
) -> None:
    """Same keys + same region: one GetAuthorizationToken, whichever profile asks."""
    a = await provider.token(TokenKey("dev", "us-west-2"))
    b = await provider.token(TokenKey("copy", "us-west-2"))
    c = await provider.token(TokenKey("dev", "ap-south-1"))
    assert a.password == b.password == c.password == moto_password("123456789012")
    assert sb.calls("ecr")["GetAuthorizationToken"] == 2


async def test_one_tls_context_for_all_clients(
    provider: aws.AwsTokenProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Clients for several regions reuse one TLS context instead of loading CAs each time."""
    built: list[Any] = []
    original = AIOHTTPSession._build_ssl_contexts  # type: ignore[attr-defined]

    def counting(self: Any, proxy_url: Any) -> Any:
        built.append(proxy_url)
        return original(self, proxy_url)

    monkeypatch.setattr(AIOHTTPSession, "_build_ssl_contexts", counting)
    monkeypatch.setattr(aws._SharedTLSSession, "_contexts", {})
    for region in ("us-east-1", "us-west-2", "eu-west-1", "ap-south-1"):
        await provider.token(TokenKey("dev", region))
    assert built == [None]


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
    sb: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    profile: dict[str, str],
    expected: dict[str, object],
) -> None:
    """AWS_RETRY_MODE/AWS_MAX_ATTEMPTS and the profile's settings replace the defaults."""
    sb.write_aws_config({"p": {"region": "us-east-1", **STATIC_KEYS, **profile}})
    session = _session(sb, "p", monkeypatch)
    assert getattr(aws.client_config(session, env), "retries", None) == expected


@pytest.mark.parametrize(
    "env",
    [{"AWS_MAX_ATTEMPTS": "zero"}, {"AWS_MAX_ATTEMPTS": "0"}, {"AWS_RETRY_MODE": "eager"}],
    ids=["not-a-number", "zero", "unknown-mode"],
)
def test_bad_retry_settings_are_named(
    sb: Sandbox, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    """An unusable retry setting is a configuration error naming the value."""
    from runas_async.errors import ConfigError

    sb.write_aws_config({"p": {"region": "us-east-1", **STATIC_KEYS}})
    with pytest.raises(ConfigError, match=repr(next(iter(env.values())))):
        aws.client_config(_session(sb, "p", monkeypatch), env)


def _session(sb: Sandbox, profile: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(sb.aws_config_file))
    return aws.new_session(profile)
