"""Profiles, regions, credentials and authorization tokens, through aiobotocore.

Everything botocore already knows how to do (static keys, role chains,
credential_process, SSO, web identity, config files and environment) is left
to botocore. This module only translates its errors into ours, at the edge.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import os
import socket
import threading
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import aiohttp
import anyio
from aiobotocore.config import AioConfig
from aiobotocore.httpsession import AIOHTTPSession
from aiobotocore.session import AioSession
from yarl import URL

from runas_async.awserrors import Doing, map_aws_errors
from runas_async.credentials import CredentialResolver
from runas_async.endpoints import show
from runas_async.errors import (
    ConfigError,
    ProfileNotFound,
    TokenError,
)
from runas_async.models import Token, TokenKey
from runas_async.places import region_in_force
from runas_async.preconnect import Preconnected

if TYPE_CHECKING:
    from botocore.credentials import ReadOnlyCredentials

log = logging.getLogger(__name__)

READING = Doing.READING_CONFIG


class _SharedTLSSession(AIOHTTPSession):
    """aiobotocore's HTTP session, with one TLS context for every client of the run.

    aiobotocore builds a context (and loads the CA bundle into it) for each
    client; with one client per region that is repeated work on the way to
    the first request. The context depends only on these settings.
    """

    _contexts: ClassVar[dict[tuple[object, ...], Any]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    on_connect: ClassVar[Callable[[], None] | None] = None
    """Called (in the event loop) as each new connection's connect starts; see
    :meth:`AwsTokenProvider.on_wire`. A provider sets it on a subclass of its own."""

    preconnected: ClassVar[Preconnected | None] = None
    """Sockets opened at start-up (preconnect.py), taken by the first connect to their
    host and port. A provider sets it on a subclass of its own."""

    async def _create_connector(self, proxy_url: str | None) -> Any:
        connector = await super()._create_connector(proxy_url)  # type: ignore[misc]
        hook, pre = type(self).on_connect, type(self).preconnected
        if hook is None and pre is None:
            return connector
        # aiohttp's private step (pinned in uv.lock) that starts the TCP connect once the
        # host is resolved: nothing yields between the hook and the connect() syscall.
        start = connector._wrap_create_connection

        async def connecting(*args: Any, **kwargs: Any) -> Any:
            if hook is not None:
                hook()
            req = kwargs.get("req")
            taken = pre.take(req.url.raw_host, req.port) if pre and req is not None else None
            if taken is not None:
                adopted = await _adopt(connector, taken, args, kwargs)
                if adopted is not None:
                    return adopted
            return await start(*args, **kwargs)

        connector._wrap_create_connection = connecting
        return connector

    def _build_ssl_contexts(self, proxy_url: str | None) -> Any:
        # Private attributes of aiobotocore's session (pinned in uv.lock).
        settings = ("_verify", "_cert_file", "_key_file")
        key = (*(getattr(self, name, None) for name in settings), proxy_url)
        with self._lock:  # called from worker threads
            if key not in self._contexts:
                build = super()._build_ssl_contexts  # type: ignore[misc]
                self._contexts[key] = build(proxy_url)
            return self._contexts[key]

    @classmethod
    def prebuild(cls, verify: bool | str) -> None:
        """Build (and keep) the TLS context of clients with these settings; for a thread.

        Loading the CA bundle takes ~45 ms, on the way to the first request; started in a
        thread at start-up it overlaps the rest (the load runs without the GIL). Clients
        that come meanwhile wait for it on the lock instead of building their own.
        """
        try:
            # aiobotocore annotates verify as bool; botocore passes bundle paths too.
            cls(verify=verify)._build_ssl_contexts(None)  # type: ignore[arg-type]
        except Exception as e:  # the first client builds it again and reports the error
            log.debug("no TLS context built ahead: %s", type(e).__name__)

    async def warm(self, url: str) -> bool:
        """Open one connection to ``url``'s host and leave it idle in the pool; send nothing.

        ``send`` then takes it for its first request instead of connecting: same pool (the
        aiohttp session without a proxy) and same key (host, port, scheme, TLS settings),
        because the request below is the one aiohttp builds for ``send``'s, minus the body.
        False, and nothing done, when a proxy applies to ``url``.
        """
        # aiobotocore's private attribute and method (pinned in uv.lock), used as send() does.
        proxy_url = self._proxy_config.proxy_url_for(url)  # type: ignore[attr-defined]
        if proxy_url:
            return False
        session: aiohttp.ClientSession = await self._get_session(proxy_url)  # type: ignore[attr-defined]
        connector = session.connector
        if connector is None:
            return False
        request = aiohttp.ClientRequest("GET", URL(url, encoded=True), session=session)
        connection = await connector.connect(request, traces=[], timeout=session.timeout)
        connection.release()
        return True


async def _adopt(
    connector: Any, taken: Future[socket.socket], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Complete a connection on a socket connected at start-up; None to connect afresh.

    aiohttp's own path for an existing socket (the one its proxy tunnels use) does the
    TLS handshake and maps its errors. A socket that failed to connect, or that the
    server has dropped meanwhile, is closed and the caller connects as usual.
    """
    try:
        sock = await asyncio.wrap_future(taken)
    except Exception as e:  # whatever the connecting thread met: connect afresh
        log.debug("start-up connection unusable: %s", type(e).__name__)
        return None
    rest = {name: value for name, value in kwargs.items() if name != "addr_infos"}
    try:
        adopted = await connector._wrap_existing_connection(*args, sock=sock, **rest)
    except (aiohttp.ClientError, OSError) as e:
        sock.close()
        log.debug("start-up connection unusable: %s", type(e).__name__)
        return None
    except BaseException:
        sock.close()
        raise
    log.debug("using the connection opened at start-up")
    return adopted


WARM_TIMEOUT = 10.0
"""Longest wait for a warm-up connection when the client sets no connect timeout."""

DEFAULT_RETRY_MODE = "standard"
DEFAULT_MAX_ATTEMPTS = 5


def client_config(
    session: AioSession,
    env: Mapping[str, str],
    http_session_cls: type[AIOHTTPSession] = _SharedTLSSession,
) -> AioConfig:
    """Client settings: jittered retries (the user's retry_mode/max_attempts win), timeouts.

    botocore ignores AWS_RETRY_MODE / AWS_MAX_ATTEMPTS and the profile's
    ``retry_mode`` / ``max_attempts`` once a client Config sets ``retries``,
    so they are read here and passed on. ``total_max_attempts`` counts every
    call, as ``max_attempts`` does in the config file (in a Config,
    ``max_attempts`` would count retries only).
    """
    profile = session.profile or "default"
    with map_aws_errors(profile=profile, what="read the retry settings of", doing=READING):
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


def new_session(profile: str) -> AioSession:
    """An aiobotocore session bound to ``profile``; raises ProfileNotFound."""
    session = AioSession(profile=profile)
    with map_aws_errors(profile=profile, what="parse the AWS config for", doing=READING):
        known = session.available_profiles
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
    if override or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"):
        return region_in_force(override, env, None)
    profile = session.profile or "default"
    with map_aws_errors(profile=profile, what="read the region of", doing=READING):
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
        env: Mapping[str, str] = os.environ,
        preconnected: Preconnected | None = None,
    ) -> None:
        self._sessions = dict(sessions)
        http: type[_SharedTLSSession] = type(
            "_RunSession",
            (_SharedTLSSession,),
            {"on_connect": self._connecting, "preconnected": preconnected},
        )
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
        client is raised by ``client()``, inside the caller's translation, as before.
        """
        session = self._sessions[profile]
        late = _LateCredentials()
        creds: ReadOnlyCredentials | None = None
        failure: Exception | None = None
        client: Any = None
        unmade: Exception | None = None

        resolved = anyio.Event()

        async with contextlib.AsyncExitStack() as stack:

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
                nonlocal client, unmade
                # Not before the credentials' own request has left (or they are there).
                await _first_of(self.on_wire, resolved)
                try:
                    made = await stack.enter_async_context(
                        session.create_client(  # type: ignore[call-overload]
                            service,
                            region_name=region,
                            # Never sent: _sign_with() replaces them at signing time. Explicit
                            # keys keep botocore from resolving the profile's chain itself.
                            aws_access_key_id=_UNSET,
                            aws_secret_access_key=_UNSET,
                            config=self._configs[profile],
                        )
                    )
                except Exception as e:
                    unmade = e
                    return
                _sign_with(made, late)
                client = made
                await _warm(made)

            async with anyio.create_task_group() as tg:
                tg.start_soon(resolve)  # first: the longer way (STS round trips)
                tg.start_soon(prepare)
            if creds is None:  # the credentials error, unchanged (the client is closed)
                raise failure or RuntimeError(f"no credentials for profile {profile!r}")
            late.set(creds)
            yield _Ready(creds, client, unmade)

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
        with map_aws_errors(profile=key.profile, what=what):
            resp = await ready.client().get_authorization_token()
        data = resp.get("authorizationData")
        # ecr answers a list of one entry, ecr-public a single object.
        return decode_token([data] if isinstance(data, dict) else data, what)

    async def account(self, profile: str, region: str) -> str:
        """The account the profile's credentials belong to (STS GetCallerIdentity)."""
        async with self._ready_client(profile, "sts", region) as ready:
            with map_aws_errors(profile=profile, what=f"GetCallerIdentity in {region}"):
                resp = await ready.client().get_caller_identity()
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


_UNSET = "runas-async-unset"
"""The keys a client is made with before the profile's are known; replaced when signing."""


def _shared(creds: ReadOnlyCredentials, key: TokenKey) -> tuple[str, str, bool]:
    """What a token is shared by: the access key (the profile without one), region, public."""
    return (creds.access_key or key.profile, key.region, key.public)


@dataclass(frozen=True)
class _Ready:
    """A profile's credentials and the client made for them, or why it could not be made."""

    credentials: ReadOnlyCredentials
    made: Any
    error: Exception | None

    def client(self) -> Any:
        """The client; raises the error that prevented making it."""
        if self.error is not None:
            raise self.error
        return self.made


class _LateCredentials:
    """Credentials for a client's signer that are set after the client is made."""

    def __init__(self) -> None:
        self._creds: ReadOnlyCredentials | None = None

    def set(self, creds: ReadOnlyCredentials) -> None:
        self._creds = creds

    async def get_frozen_credentials(self) -> ReadOnlyCredentials:
        """What botocore's signer awaits; only ever called once they are set."""
        if self._creds is None:
            raise RuntimeError("a request was signed before the credentials were resolved")
        return self._creds


def _sign_with(client: Any, late: _LateCredentials) -> None:
    """Have ``client`` sign every request with ``late`` instead of the keys it was made with.

    botocore's signer prefers the credentials found under ``request_credentials`` in the
    request's signing context to the client's own; a ``before-sign`` handler puts them
    there (public events; the context key is the one botocore and aiobotocore read,
    pinned in uv.lock, and a test checks the keys moto sees).
    """

    def use(request: Any, **_: Any) -> None:
        request.context.setdefault("signing", {})["request_credentials"] = late

    client.meta.events.register("before-sign", use)


async def _warm(client: Any) -> None:
    """Open a connection to ``client``'s endpoint ahead of its first call. Best effort.

    Any failure (resolution, refusal, timeout, aiohttp's internals changing) is logged at
    DEBUG and ignored: the call then connects by itself and reports its own errors.
    Nothing secret is in reach here: the credentials are not known yet.
    """
    url = str(client.meta.endpoint_url)
    parts = urllib.parse.urlsplit(url)
    where = f"{parts.hostname}:{parts.port or ''}".rstrip(":")
    # botocore's private attribute (pinned): the HTTP session the client sends through.
    http = getattr(getattr(client, "_endpoint", None), "http_session", None)
    if not isinstance(http, _SharedTLSSession):
        log.debug("no warm connection to %s: not our HTTP session", where)
        return
    started = time.monotonic()
    try:
        with anyio.fail_after(client.meta.config.connect_timeout or WARM_TIMEOUT):
            opened = await http.warm(url)
    except Exception as e:
        # aiohttp names host and port in its errors; a URL with user info could be quoted whole.
        text = "" if parts.username or parts.password else (str(e).strip().splitlines() or [""])[0]
        log.debug("no warm connection to %s: %s %s", where, type(e).__name__, text)
        return
    if opened:
        log.debug("warm connection to %s in %.3fs", where, time.monotonic() - started)
    else:
        log.debug("no warm connection to %s: through a proxy", where)


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
