"""Profiles, regions, credentials and authorization tokens, through aiobotocore.

Everything botocore already knows how to do (static keys, role chains,
credential_process, SSO, web identity, config files and environment) is left
to botocore. This module only translates its errors into ours, at the edge.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import anyio
import botocore.exceptions as bx
from aiobotocore.config import AioConfig
from aiobotocore.httpsession import AIOHTTPSession
from aiobotocore.session import AioSession

from runas_async.credentials import CredentialResolver, describe
from runas_async.endpoints import show
from runas_async.errors import (
    ConfigError,
    CredentialsError,
    ProfileNotFound,
    TokenError,
)
from runas_async.models import Token, TokenKey

if TYPE_CHECKING:
    from botocore.credentials import ReadOnlyCredentials

# Error codes that mean "these credentials are not accepted at all": the
# profile is misconfigured, not one registry.
_REJECTED_CREDENTIALS = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "AuthFailure",
        "RequestExpired",
    }
)

log = logging.getLogger(__name__)


class _SharedTLSSession(AIOHTTPSession):
    """aiobotocore's HTTP session, with one TLS context for every client of the run.

    aiobotocore builds a context (and loads the CA bundle into it) for each
    client; with one client per region that is repeated work on the way to
    the first request. The context depends only on these settings.
    """

    _contexts: ClassVar[dict[tuple[object, ...], Any]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def _build_ssl_contexts(self, proxy_url: str | None) -> Any:
        # Private attributes of aiobotocore's session (pinned in uv.lock).
        settings = ("_verify", "_cert_file", "_key_file")
        key = (*(getattr(self, name, None) for name in settings), proxy_url)
        with self._lock:  # called from worker threads
            if key not in self._contexts:
                build = super()._build_ssl_contexts  # type: ignore[misc]
                self._contexts[key] = build(proxy_url)
            return self._contexts[key]


DEFAULT_RETRY_MODE = "standard"
DEFAULT_MAX_ATTEMPTS = 5


def client_config(session: AioSession, env: Mapping[str, str]) -> AioConfig:
    """Client settings: jittered retries (the user's retry_mode/max_attempts win), timeouts.

    botocore ignores AWS_RETRY_MODE / AWS_MAX_ATTEMPTS and the profile's
    ``retry_mode`` / ``max_attempts`` once a client Config sets ``retries``,
    so they are read here and passed on. ``total_max_attempts`` counts every
    call, as ``max_attempts`` does in the config file (in a Config,
    ``max_attempts`` would count retries only).
    """
    scoped = session.get_scoped_config()
    mode = env.get("AWS_RETRY_MODE") or scoped.get("retry_mode") or DEFAULT_RETRY_MODE
    raw = env.get("AWS_MAX_ATTEMPTS") or scoped.get("max_attempts") or DEFAULT_MAX_ATTEMPTS
    if mode not in ("standard", "adaptive", "legacy"):
        raise ConfigError(f"retry_mode {show(str(mode))} is not standard, adaptive or legacy")
    try:
        attempts = int(raw)
        if attempts < 1:
            raise ValueError
    except ValueError:
        raise ConfigError(f"max_attempts {show(str(raw))} is not a whole number >= 1") from None
    return AioConfig(
        http_session_cls=_SharedTLSSession,
        retries={"mode": mode, "total_max_attempts": attempts},
        connect_timeout=10,
        read_timeout=30,
        user_agent_appid="runas-async",
    )


def new_session(profile: str) -> AioSession:
    """An aiobotocore session bound to ``profile``; raises ProfileNotFound."""
    session = AioSession(profile=profile)
    try:
        known = session.available_profiles
    except bx.ConfigParseError as e:
        raise ConfigError(f"cannot parse the AWS config for profile {show(profile)}: {e}") from e
    if profile not in known and profile != "default":
        raise ProfileNotFound(
            f"profile {show(profile)} is not in the AWS config files ({_config_files(session)})"
        )
    return session


def _config_files(session: AioSession) -> str:
    cfg = session.get_config_variable("config_file")
    creds = session.get_config_variable("credentials_file")
    return f"{cfg}, {creds}"


def profile_region(session: AioSession, override: str | None, env: Mapping[str, str]) -> str | None:
    """The region in force: --region, AWS_REGION, AWS_DEFAULT_REGION, the profile's."""
    if override:
        return override
    if env.get("AWS_REGION"):
        return env["AWS_REGION"]
    try:
        region = session.get_config_variable("region")
    except bx.BotoCoreError as e:
        raise ConfigError(
            f"cannot read the region of profile {show(session.profile or '')}: {e}"
        ) from e
    return str(region) if region else None


class AwsTokenProvider:
    """Fetches tokens and caller accounts; one credential resolution per profile."""

    def __init__(
        self,
        sessions: Mapping[str, AioSession],
        resolver: CredentialResolver | None = None,
        env: Mapping[str, str] = os.environ,
    ) -> None:
        self._sessions = dict(sessions)
        self._configs = {name: client_config(s, env) for name, s in sessions.items()}
        # The default is botocore's chain alone: no cache files, no MFA prompt of ours.
        self._resolver = resolver if resolver is not None else CredentialResolver()
        self._creds: dict[str, ReadOnlyCredentials] = {}
        self._locks: dict[str, anyio.Lock] = {}
        self._tokens: dict[tuple[str, str, bool], Token] = {}
        self._token_locks: dict[tuple[str, str, bool], anyio.Lock] = {}

    async def credentials(self, profile: str) -> ReadOnlyCredentials:
        """Resolve the profile's credentials once (AssumeRole chains included)."""
        lock = self._locks.setdefault(profile, anyio.Lock())
        async with lock:
            if profile in self._creds:
                return self._creds[profile]
            session = self._sessions[profile]
            started = time.monotonic()
            log.debug("resolving credentials of profile %r", profile)
            # The resolver translates botocore's errors into ours.
            frozen = (await self._resolver.resolve(session, profile)).frozen
            log.debug(
                "credentials of profile %r ready in %.3fs", profile, time.monotonic() - started
            )
            self._creds[profile] = frozen
            return frozen

    def _client_args(self, profile: str, creds: ReadOnlyCredentials, region: str) -> dict[str, Any]:
        return {
            "region_name": region,
            "aws_access_key_id": creds.access_key,
            "aws_secret_access_key": creds.secret_key,
            "aws_session_token": creds.token,
            "config": self._configs[profile],
        }

    async def token(self, key: TokenKey) -> Token:
        """One GetAuthorizationToken per (credentials, region, private or public).

        Profiles that resolve to the same credentials share the call.
        """
        creds = await self.credentials(key.profile)
        shared = (creds.access_key or key.profile, key.region, key.public)
        lock = self._token_locks.setdefault(shared, anyio.Lock())
        async with lock:
            if shared not in self._tokens:
                self._tokens[shared] = await self._fetch_token(key, creds)
            return self._tokens[shared]

    async def _fetch_token(self, key: TokenKey, creds: ReadOnlyCredentials) -> Token:
        session = self._sessions[key.profile]
        service = "ecr-public" if key.public else "ecr"
        what = f"{service} GetAuthorizationToken in {key.region}"
        try:
            async with session.create_client(
                service,  # type: ignore[call-overload]
                **self._client_args(key.profile, creds, key.region),
            ) as client:
                resp = await client.get_authorization_token()
        except bx.ClientError as e:
            self._raise_if_rejected(e, key.profile)
            raise TokenError(f"{what}: {describe(e)}") from e
        except bx.BotoCoreError as e:
            raise TokenError(f"{what}: {describe(e)}") from e
        data = resp.get("authorizationData")
        # ecr answers a list of one entry, ecr-public a single object.
        return decode_token([data] if isinstance(data, dict) else data, what)

    async def account(self, profile: str, region: str) -> str:
        """The account the profile's credentials belong to (STS GetCallerIdentity)."""
        creds = await self.credentials(profile)
        session = self._sessions[profile]
        try:
            async with session.create_client(
                "sts", **self._client_args(profile, creds, region)
            ) as sts:
                resp = await sts.get_caller_identity()
        except bx.ClientError as e:
            self._raise_if_rejected(e, profile)
            raise TokenError(f"GetCallerIdentity in {region}: {describe(e)}") from e
        except bx.BotoCoreError as e:
            raise TokenError(f"GetCallerIdentity in {region}: {describe(e)}") from e
        return str(resp["Account"])

    @staticmethod
    def _raise_if_rejected(e: bx.ClientError, profile: str) -> None:
        code = e.response.get("Error", {}).get("Code", "")
        if code in _REJECTED_CREDENTIALS:
            raise CredentialsError(
                f"the credentials of profile {show(profile)} were rejected "
                f"(expired or invalid): {describe(e)}"
            ) from e


def decode_token(data: Any, what: str) -> Token:
    """Decode ECR's ``authorizationData`` (base64 ``user:password``)."""
    try:
        entry = data[0]
        raw = base64.b64decode(entry["authorizationToken"], validate=True).decode("utf-8")
    except (IndexError, KeyError, TypeError, binascii.Error, UnicodeDecodeError) as e:
        raise TokenError(f"{what} returned no usable token") from e
    username, sep, password = raw.partition(":")
    if not sep or not username or not password:
        raise TokenError(f"{what} returned a malformed token")
    expires = entry.get("expiresAt")
    return Token(
        username=username,
        password=password,
        expires_at=expires.timestamp() if hasattr(expires, "timestamp") else None,
    )
