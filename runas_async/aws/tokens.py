"""The token provider: profiles, regions, credentials and authorization tokens, via aiobotocore.

Everything botocore already knows how to do (static keys, role chains,
credential_process, SSO, web identity, config files and environment) is left
to botocore. Its errors become ours at one boundary (awserrors.py); what makes the first
request come sooner by using aiohttp's and aiobotocore's internals is in _transport.py.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
from aiobotocore.config import AioConfig
from aiobotocore.httpsession import AIOHTTPSession
from aiobotocore.session import AioSession

from runas_async.aws import _transport
from runas_async.aws.boundary import Doing, map_aws_errors
from runas_async.aws.config import did_you_mean
from runas_async.aws.credentials import CredentialResolver
from runas_async.aws.preconnect import Preconnected
from runas_async.core.errors import ConfigError, ProfileNotFound, TokenError
from runas_async.core.models import Token, TokenKey
from runas_async.core.places import region_in_force
from runas_async.core.sanitize import show

if TYPE_CHECKING:
    from botocore.credentials import ReadOnlyCredentials

log = logging.getLogger(__name__)


DEFAULT_RETRY_MODE = "standard"
DEFAULT_MAX_ATTEMPTS = 5


def client_config(
    session: AioSession,
    env: Mapping[str, str],
    http_session_cls: type[AIOHTTPSession] = _transport.SharedTLSSession,
) -> AioConfig:
    """Client settings: jittered retries (the user's retry_mode/max_attempts win), timeouts.

    botocore ignores AWS_RETRY_MODE / AWS_MAX_ATTEMPTS and the profile's
    ``retry_mode`` / ``max_attempts`` once a client Config sets ``retries``,
    so they are read here and passed on. ``total_max_attempts`` counts every
    call, as ``max_attempts`` does in the config file (in a Config,
    ``max_attempts`` would count retries only).
    """
    profile = session.profile or "default"
    with map_aws_errors(
        profile=profile, what="read the retry settings of", doing=Doing.READING_CONFIG
    ):
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
        http_session_cls=http_session_cls,
        retries={"mode": mode, "total_max_attempts": attempts},
        connect_timeout=10,
        read_timeout=30,
        user_agent_appid="runas-async",
    )


def new_session(profile: str | None) -> AioSession:
    """An aiobotocore session bound to ``profile``; raises ProfileNotFound.

    ``None`` is the default credentials, as awscli has them with no ``--profile``: a session
    with no profile named, so that botocore's whole chain applies (environment keys first,
    then ``$AWS_PROFILE`` or ``default``, web identity, SSO, container, instance). Naming a
    profile, even ``default``, would make botocore skip the environment's keys.
    """
    session = AioSession(profile=profile)
    named = profile or session.get_config_variable("profile")
    with map_aws_errors(
        profile=named or "default", what="parse the AWS config for", doing=Doing.READING_CONFIG
    ):
        known = session.available_profiles
    if named and named not in known and (profile is None or named != "default"):
        where = "" if profile else " (from AWS_PROFILE)"
        raise ProfileNotFound(
            f"profile {show(named)}{where} is not in the AWS config files "
            f"({_config_files(session)}){did_you_mean(named, known)}"
        )
    _transport.quick_loader(session)
    return session


def _config_files(session: AioSession) -> str:
    cfg = session.get_config_variable("config_file")
    creds = session.get_config_variable("credentials_file")
    return f"{cfg}, {creds}"


def profile_region(session: AioSession, override: str | None, env: Mapping[str, str]) -> str | None:
    """The region in force: --region, AWS_REGION, AWS_DEFAULT_REGION, the profile's."""
    if override or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"):
        return region_in_force(override, env, None)
    profile = session.profile or "default"
    with map_aws_errors(profile=profile, what="read the region of", doing=Doing.READING_CONFIG):
        region = session.get_scoped_config().get("region")
    return str(region) if region else None


class AwsTokenProvider:
    """Fetches tokens and caller accounts; one credential resolution per profile.

    Each call's client is made, and connected, while the profile's credentials are being
    resolved (see ``_ready_client``): once the first connection is under way
    (:attr:`on_wire`), so that making clients does not delay it.

    Its sessions' default client config is the provider's own, so that the STS clients
    botocore's credential providers make also share the TLS context and report their
    connections.
    """

    def __init__(
        self,
        sessions: Mapping[str, AioSession],
        resolver: CredentialResolver | None = None,
        *,
        env: Mapping[str, str],
        preconnected: Preconnected | None = None,
        notify: Notify | None = None,
    ) -> None:
        self._sessions = dict(sessions)
        self._notify = notify
        http = _transport.session_class(self._connecting, preconnected)
        self._configs = {name: client_config(s, env, http) for name, s in sessions.items()}
        for name, session in self._sessions.items():
            session.set_default_client_config(self._configs[name])
        self.tls_ahead: threading.Thread | None = None
        for session in list(self._sessions.values())[:1]:
            # botocore's choice of CA bundle for a client that sets none (endpoint.py).
            verify = session.get_config_variable("ca_bundle") or env.get("REQUESTS_CA_BUNDLE")
            self.tls_ahead = threading.Thread(
                target=http.prebuild, args=(verify or True,), name="runas-async-tls", daemon=True
            )
            self.tls_ahead.start()
        # The default is botocore's chain alone: no cache files, no MFA prompt of ours.
        self._resolver = resolver if resolver is not None else CredentialResolver()
        self._creds: dict[str, ReadOnlyCredentials] = {}
        self._locks: dict[str, anyio.Lock] = {}
        self._tokens: dict[tuple[str, str, bool], Token] = {}
        self._token_locks: dict[tuple[str, str, bool], anyio.Lock] = {}
        self._on_wire: anyio.Event | None = None

    @property
    def on_wire(self) -> anyio.Event:
        """Set once the run's first connection to AWS is being opened (its SYN sent).

        Work that can wait (making clients, starting login clients) waits for it, so
        that the first request is not delayed by it: from here on the event loop is
        only waiting for the network.
        """
        if self._on_wire is None:
            self._on_wire = anyio.Event()
        return self._on_wire

    def _connecting(self) -> None:
        self.on_wire.set()

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

    @contextlib.asynccontextmanager
    async def _ready_client(self, profile: str, service: str, region: str) -> AsyncIterator[_Ready]:
        """The profile's credentials, and a client of ``service`` in ``region`` signing with them.

        The client is made, and a connection to its endpoint opened, while the credentials
        are being resolved, so that once they are ready its first call costs one round trip.
        A credentials error is raised as it is (the client closed); an error making the
        client is raised by ``call()``, inside the caller's translation.
        """
        config = self._configs[profile]
        early = _EarlyClient(self._sessions[profile], service, region, config)
        async with contextlib.AsyncExitStack() as stack:
            creds = await self._credentials_meanwhile(profile, early, stack)
            yield _Ready(creds, early, functools.partial(early.plain, creds))

    async def _credentials_meanwhile(
        self, profile: str, early: _EarlyClient, stack: contextlib.AsyncExitStack
    ) -> ReadOnlyCredentials:
        """The profile's credentials; ``early`` is made (its context in ``stack``) meanwhile."""
        creds: ReadOnlyCredentials | None = None
        failure: Exception | None = None
        resolved = anyio.Event()

        async def resolve() -> None:
            nonlocal creds, failure
            try:
                creds = await self.credentials(profile)
            except Exception as e:
                failure = e
                tg.cancel_scope.cancel()  # no client needed after all
            finally:
                resolved.set()

        async def prepare() -> None:
            # Not before the credentials' own request has left (or they are there).
            await _first_of(self.on_wire, resolved)
            await early.make(stack)

        async with anyio.create_task_group() as tg:
            tg.start_soon(resolve)  # first: the longer way (STS round trips)
            tg.start_soon(prepare)
        if creds is None:  # the credentials error, unchanged (the client is closed)
            raise failure or RuntimeError(f"no credentials for profile {profile!r}")
        early.late.set(creds)
        return creds

    async def token(self, key: TokenKey) -> Token:
        """One GetAuthorizationToken per (credentials, region, private or public).

        Profiles that resolve to the same credentials share the call.
        """
        known = self._creds.get(key.profile)
        if known is not None and (cached := self._tokens.get(_shared(known, key))) is not None:
            return cached
        service = "ecr-public" if key.public else "ecr"
        async with self._ready_client(key.profile, service, key.region) as ready:
            # A second profile with the same keys finds the token fetched: its client goes unused.
            shared = _shared(ready.credentials, key)
            lock = self._token_locks.setdefault(shared, anyio.Lock())
            async with lock:
                if shared not in self._tokens:
                    self._tokens[shared] = await self._fetch_token(key, ready)
                return self._tokens[shared]

    async def _fetch_token(self, key: TokenKey, ready: _Ready) -> Token:
        what = f"{'ecr-public' if key.public else 'ecr'} GetAuthorizationToken in {key.region}"
        notify = self._notify
        on_retry = None if notify is None else functools.partial(notify, key)
        try:
            with map_aws_errors(profile=key.profile, what=what):
                resp = await ready.call("get_authorization_token", on_retry)
        finally:
            if notify is not None:
                notify(key, None)
        data = resp.get("authorizationData")
        # ecr answers a list of one entry, ecr-public a single object.
        return decode_token([data] if isinstance(data, dict) else data, what)

    async def account(self, profile: str, region: str) -> str:
        """The account the profile's credentials belong to (STS GetCallerIdentity)."""
        async with self._ready_client(profile, "sts", region) as ready:
            with map_aws_errors(profile=profile, what=f"GetCallerIdentity in {region}"):
                resp = await ready.call("get_caller_identity")
        return str(resp["Account"])


async def _first_of(*events: anyio.Event) -> None:
    """Return as soon as one of ``events`` is set."""
    if any(e.is_set() for e in events):
        return
    async with anyio.create_task_group() as tg:

        async def wait(event: anyio.Event) -> None:
            await event.wait()
            tg.cancel_scope.cancel()

        for event in events:
            tg.start_soon(wait, event)


def _shared(creds: ReadOnlyCredentials, key: TokenKey) -> tuple[str, str, bool]:
    """What a token is shared by: the access key (the profile without one), region, public."""
    return (creds.access_key or key.profile, key.region, key.public)


class _EarlyClient:
    """A client made, and connected, before its credentials are known; they are set late.

    Made with placeholder keys (explicit keys keep botocore from resolving the profile's
    chain itself); it signs with :attr:`late` (see ``_transport.sign_with``).
    """

    def __init__(self, session: AioSession, service: str, region: str, config: AioConfig) -> None:
        self.session = session
        self.service = service
        self.region = region
        self.config = config
        self.late = _transport.LateCredentials()
        self.client: Any = None
        self.error: Exception | None = None

    async def make(self, stack: contextlib.AsyncExitStack) -> None:
        """Make the client (closed with ``stack``) and warm its connection; keep any error."""
        try:
            self.client = await stack.enter_async_context(
                self.session.create_client(  # type: ignore[call-overload]
                    self.service,
                    region_name=self.region,
                    aws_access_key_id=_transport.PLACEHOLDER,
                    aws_secret_access_key=_transport.PLACEHOLDER,
                    config=self.config,
                )
            )
        except Exception as e:
            self.error = e
            return
        _transport.sign_with(self.client, self.late)
        await _transport.warm_up(self.client)

    def plain(self, creds: ReadOnlyCredentials) -> AbstractAsyncContextManager[Any]:
        """The plain path: a client of the same service and settings, made with ``creds``."""
        return self.session.create_client(  # type: ignore[call-overload,no-any-return]
            self.service,
            region_name=self.region,
            aws_access_key_id=creds.access_key,
            aws_secret_access_key=creds.secret_key,
            aws_session_token=creds.token,
            config=self.config,
        )


@dataclass(frozen=True)
class _Ready:
    """A profile's credentials and the client made for them (or why it could not be made)."""

    credentials: ReadOnlyCredentials
    early: _EarlyClient
    plain: Callable[[], AbstractAsyncContextManager[Any]]

    async def call(self, operation: str, on_retry: Callable[[str], None] | None = None) -> Any:
        """Call ``operation`` (no arguments); raises the error that prevented making the client.

        Through the client made early; should its signer not take the late credentials,
        through a client made with them (the plain path). ``on_retry`` is told "retrying 2/5"
        as each retry is sent.
        """
        if self.early.error is not None:
            raise self.early.error
        if self.early.client is not None:
            try:
                _watch_retries(self.early.client, on_retry)
                return await getattr(self.early.client, operation)()
            except _transport.LateCredentialsUnused as e:
                log.debug("%s: a client made with the credentials instead", e)
        async with self.plain() as client:
            _watch_retries(client, on_retry)
            return await getattr(client, operation)()


Notify = Callable[[TokenKey, "str | None"], None]
"""Told what a token request is waiting for ("retrying 2/5"), and None once it is done."""


def _watch_retries(client: Any, on_retry: Callable[[str], None] | None) -> None:
    """Tell ``on_retry`` of each retry the client sends: "retrying 2/5" (attempt 2 of 5).

    botocore's ``before-send`` event comes once per attempt, with the attempt number in
    the request's context; the most attempts are in the client's retry settings.
    """
    if on_retry is None:
        return
    retries = getattr(client.meta.config, "retries", None) or {}
    most = retries.get("total_max_attempts")

    def before_send(request: Any, **_: Any) -> None:
        context = getattr(request, "context", None) or {}
        attempt = context.get("retries", {}).get("attempt", 1)
        if isinstance(attempt, int) and attempt > 1:
            on_retry(f"retrying {attempt}/{most}" if most else f"retrying ({attempt})")

    client.meta.events.register("before-send", before_send)


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
