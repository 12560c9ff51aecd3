"""Every use of aiohttp's, aiobotocore's and botocore's private internals, each with a fallback.

The token provider (aws.py) works without any of these: they only make the first request
come sooner. Each hook is used here and nowhere else; when the private attribute is
missing or not what it was (AttributeError, TypeError, an unexpected type), the code takes
aiobotocore's plain path and says so at DEBUG: logins still happen, only slower. The
versions they were written against are pinned in uv.lock; tests/test_aws.py takes each one
away (as a library that renamed it would) and checks that a token still comes.

==============================================  ==========================  ======================
hook (owner)                                    what it buys                fallback
==============================================  ==========================  ======================
``AIOHTTPSession._build_ssl_contexts``          one TLS context (CA bundle  each client builds its
and its ``_verify``, ``_cert_file``,            loaded once, ~45 ms, ahead  own, as aiobotocore
``_key_file`` (aiobotocore)                     in a thread) for every      does
                                                client of the run
``AIOHTTPSession._create_connector`` and        ``on_connect`` (the         connector as
``TCPConnector._wrap_create_connection``        provider's ``on_wire``) as  aiobotocore made it:
(aiobotocore, aiohttp), its ``req`` argument    each connect starts; takes  no ``on_wire`` (work
                                                the sockets opened at       waits for the first
                                                start-up (preconnect.py)    token instead), no
                                                                            start-up sockets
``TCPConnector._wrap_existing_connection``      TLS on a socket opened at   the socket is closed
(aiohttp)                                       start-up                    and aiohttp connects
``AIOHTTPSession._proxy_config``,               a connection opened while   no warm-up: the call
``AIOHTTPSession._get_session`` (aiobotocore),  credentials resolve, taken  connects by itself
``client._endpoint.http_session`` (botocore)    by the call from the pool
``ClientRequest`` and ``connector.connect``     --client builtin: each      the check connects
(aiohttp), as ``ClientSession._request`` uses   registry's connection       when it sends (one
them; the connect hooks above, on the built-in  (TLS too) opened while its  more round trip, or
client's pool (:class:`RegistryConnections`)    token is on its way         two, per login)
signing-context key ``request_credentials``     a client made (and          a client made with the
read by the signer (botocore, aiobotocore)      connected) before its       credentials once they
                                                credentials are known       are known
``RefreshableCredentials._expiry_time``         when botocore's chain's     expiry unknown: no
(botocore)                                      credentials expire (``env`` ``Expiration`` shown
                                                and credential_process)
``Loader.list_available_services``           a client made without       botocore's listing
(botocore), replaced on the session's loader    listing botocore's 400+     (the loader as it
by a sequence that answers ``in`` from          service directories twice   was)
``list_api_versions`` (public) alone            (~50 ms a session)
``JSONFileLoader._load_file`` (botocore), on    botocore's data decoded     OrderedDicts, as
the session's loader: plain dicts               in half the time (~25 ms    botocore decodes
                                                for endpoints.json)         them
``aiohttp.connector``'s import-time            its two CA loads (~110 ms)  aiohttp loads them at
``set_default_verify_paths`` calls, deferred    off the start-up path; the  import, as always
in ``_lazyca.py`` (it must run before aiohttp   built-in client's loaded in
is imported, which this module cannot)          a thread
==============================================  ==========================  ======================
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import socket
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

import aiohttp
import anyio
from aiobotocore.httpsession import AIOHTTPSession
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import DataNotFoundError
from botocore.loaders import JSONFileLoader
from yarl import URL

from runas_async.aws.preconnect import Preconnected

if TYPE_CHECKING:
    from aiobotocore.session import AioSession
    from botocore.credentials import ReadOnlyCredentials

log = logging.getLogger(__name__)

WARM_TIMEOUT = 10.0
"""Longest wait for a warm-up connection when the client sets no connect timeout."""

_TLS_SETTINGS = ("_verify", "_cert_file", "_key_file")
"""aiobotocore's session attributes a TLS context is built from."""

PLACEHOLDER = "runas-async-unset"
"""The keys a client is made with before the profile's are known; replaced when signing."""


# --- one TLS context, hooked connects, warm connections ---------------------------------


class SharedTLSSession(AIOHTTPSession):
    """aiobotocore's HTTP session, with one TLS context for every client of the run.

    aiobotocore builds a context (and loads the CA bundle into it) for each
    client; with one client per region that is repeated work on the way to
    the first request. The context depends only on these settings.
    """

    _contexts: ClassVar[dict[tuple[object, ...], Any]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    on_connect: ClassVar[Callable[[], None] | None] = None
    """Called (in the event loop) as each new connection's connect starts, or once a socket
    opened at start-up is adopted (its TLS handshake done: the request leaves next); see
    ``AwsTokenProvider.on_wire``. Set on a subclass of its own (:func:`session_class`)."""

    preconnected: ClassVar[Preconnected | None] = None
    """Sockets opened at start-up (preconnect.py), taken by the first connect to their
    host and port. Set on a subclass of its own (:func:`session_class`)."""

    async def _create_connector(self, proxy_url: str | None) -> Any:
        connector = await super()._create_connector(proxy_url)  # type: ignore[misc]
        hook, pre = type(self).on_connect, type(self).preconnected
        if hook is not None or pre is not None:
            _hook_connects(connector, hook, pre)
        return connector

    def _build_ssl_contexts(self, proxy_url: str | None) -> Any:
        build = super()._build_ssl_contexts  # type: ignore[misc]
        key = self._tls_key(proxy_url)
        if key is None:
            return build(proxy_url)
        with self._lock:  # called from worker threads
            if key not in self._contexts:
                self._contexts[key] = build(proxy_url)
            return self._contexts[key]

    def _tls_key(self, proxy_url: str | None) -> tuple[object, ...] | None:
        """What this session's TLS context is built from; None (no sharing) when unknown."""
        missing = object()
        settings = tuple(getattr(self, name, missing) for name in _TLS_SETTINGS)
        if any(value is missing for value in settings):
            log.debug("TLS context not shared: aiobotocore's session has no %s", _TLS_SETTINGS)
            return None
        return (*settings, proxy_url)

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
        except (AttributeError, TypeError) as e:
            log.debug("no TLS context built ahead: aiobotocore's differs (%s)", e)
        except (OSError, ValueError) as e:  # the first client builds it again, reports it
            log.debug("no TLS context built ahead: %s", type(e).__name__)

    async def warm(self, url: str) -> bool:
        """Open one connection to ``url``'s host and leave it idle in the pool; send nothing.

        ``send`` then takes it for its first request instead of connecting: same pool (the
        aiohttp session without a proxy) and same key (host, port, scheme, TLS settings),
        because the request below is the one aiohttp builds for ``send``'s, minus the body.
        False, and nothing done, when a proxy applies to ``url`` or aiobotocore's internals
        are not the ones this was written for.
        """
        try:
            # aiobotocore's private attribute and method, used as send() does.
            proxy_url = self._proxy_config.proxy_url_for(url)  # type: ignore[attr-defined]
            if proxy_url:
                return False
            session = await self._get_session(proxy_url)  # type: ignore[attr-defined]
            if not isinstance(session, aiohttp.ClientSession):
                raise TypeError(f"_get_session() gave a {type(session).__name__}")
        except (AttributeError, TypeError) as e:
            log.debug("no warm-up: aiobotocore's session differs (%s)", e)
            return False
        return await _open_idle(session, url)


async def _open_idle(session: aiohttp.ClientSession, url: str) -> bool:
    """Open a connection for ``url`` (TCP, and TLS for https) into ``session``'s pool, idle.

    The request aiohttp would build for a GET of ``url``, handed to the connector as
    ``ClientSession._request`` does (aiohttp's own private sequence), so the connection is
    pooled under the key that GET looks for. False when the connector is gone; connection
    errors are raised.
    """
    connector = session.connector
    if connector is None:
        return False
    request = aiohttp.ClientRequest("GET", URL(url, encoded=True), session=session)
    connection = await connector.connect(request, traces=[], timeout=session.timeout)
    connection.release()
    return True


class RegistryConnections:
    """The built-in client's connections (auth/registry.py), opened ahead of its requests.

    ``BuiltinRunner`` takes this as an argument (auth/ imports nothing of aws/): its pool's
    connector takes the sockets opened at start-up (preconnect.py's registry targets, by
    host and port: a socket only ever carries requests to the host it was opened for), and
    :meth:`open` completes a registry's connection (TLS for https) while its token is on
    the way, so the credentials' request is then one round trip. Without the private
    steps (``_wrap_create_connection``, ``_wrap_existing_connection``, ``ClientRequest``
    with ``connector.connect``) the pool connects when the request is made, as usual.
    """

    def __init__(self, preconnected: Preconnected | None) -> None:
        self._pre = preconnected

    def connector(self, limit: int) -> aiohttp.TCPConnector:
        """The pool's connector (made in the event loop), with the start-up sockets."""
        connector = aiohttp.TCPConnector(limit=limit)
        if self._pre is not None and self._pre.targets:
            _hook_connects(connector, None, self._pre)
        return connector

    async def open(self, session: aiohttp.ClientSession, url: str) -> bool:
        """Open ``url``'s connection and leave it idle in ``session``'s pool; send nothing.

        False, and nothing done, when a proxy may apply or aiohttp's internals differ;
        connection errors (refused, TLS) are raised, for the caller to learn from.
        """
        if session.trust_env and urllib.request.getproxies_environment():
            return False
        try:
            return await _open_idle(session, url)
        except (AttributeError, TypeError) as e:
            log.debug("registry connection not opened ahead: aiohttp differs (%s)", e)
            return False


def session_class(
    on_connect: Callable[[], None] | None, preconnected: Preconnected | None
) -> type[SharedTLSSession]:
    """A :class:`SharedTLSSession` of one provider's own, with its hooks."""
    return type(
        "_RunSession",
        (SharedTLSSession,),
        {"on_connect": on_connect, "preconnected": preconnected},
    )


def _hook_connects(
    connector: Any, hook: Callable[[], None] | None, pre: Preconnected | None
) -> None:
    """Have ``connector`` call ``hook`` as each connect starts, and take ``pre``'s sockets.

    aiohttp's private step that starts the TCP connect once the host is resolved: nothing
    yields between the hook and the connect() syscall. Without it, the connector is left
    as aiobotocore made it.
    """
    try:
        start = connector._wrap_create_connection
        if not callable(start):
            raise TypeError(f"_wrap_create_connection is a {type(start).__name__}")

        async def connecting(*args: Any, **kwargs: Any) -> Any:
            taken = _take(pre, kwargs)
            if taken is not None:
                adopted = await _adopt(connector, taken, args, kwargs)
                if adopted is not None:
                    # Only now: work that waits for the signal would otherwise run in the
                    # adoption's awaits, before the request's bytes leave.
                    if hook is not None:
                        hook()
                    return adopted
            if hook is not None:
                hook()
            return await start(*args, **kwargs)

        connector._wrap_create_connection = connecting
    except (AttributeError, TypeError) as e:
        log.debug("connects not hooked (no start-up sockets, no on_wire): aiohttp differs (%s)", e)


def _take(pre: Preconnected | None, kwargs: dict[str, Any]) -> Future[socket.socket] | None:
    """The socket opened at start-up for the connect aiohttp is making, if any."""
    if pre is None or not pre.targets:
        return None
    req = kwargs.get("req")
    host = getattr(getattr(req, "url", None), "raw_host", None)
    port = getattr(req, "port", None)
    if not isinstance(host, str) or not isinstance(port, int):
        log.debug("start-up connection not used: aiohttp's connect names no host and port")
        return None
    return pre.take(host, port)


async def _adopt(
    connector: Any, taken: Future[socket.socket], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Complete a connection on a socket connected at start-up; None to connect afresh.

    aiohttp's own path for an existing socket (the one its proxy tunnels use) does the
    TLS handshake and maps its errors. A socket that failed to connect, that the server
    has dropped meanwhile, or that aiohttp cannot take, is closed and the caller connects
    as usual.
    """
    try:
        sock = await asyncio.wrap_future(taken)
    except Exception as e:  # whatever the connecting thread met: connect afresh
        log.debug("start-up connection unusable: %s", type(e).__name__)
        return None
    rest = {name: value for name, value in kwargs.items() if name != "addr_infos"}
    try:
        adopted = await connector._wrap_existing_connection(*args, sock=sock, **rest)
    except (AttributeError, TypeError) as e:
        sock.close()
        log.debug("start-up connection not used: aiohttp differs (%s)", e)
        return None
    except (aiohttp.ClientError, OSError) as e:
        sock.close()
        log.debug("start-up connection unusable: %s", type(e).__name__)
        return None
    except BaseException:
        sock.close()
        raise
    log.debug("using the connection opened at start-up")
    return adopted


async def warm_up(client: Any) -> None:
    """Open a connection to ``client``'s endpoint ahead of its first call. Best effort.

    Any failure (resolution, refusal, timeout, the internals changing) is logged at DEBUG
    and ignored: the call then connects by itself and reports its own errors. Nothing
    secret is in reach here: the credentials are not known yet.
    """
    url = str(client.meta.endpoint_url)
    parts = urllib.parse.urlsplit(url)
    where = f"{parts.hostname}:{parts.port or ''}".rstrip(":")
    # botocore's private attribute: the HTTP session the client sends through.
    http = getattr(getattr(client, "_endpoint", None), "http_session", None)
    if not isinstance(http, SharedTLSSession):
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
        log.debug("no warm connection to %s", where)


# --- a client without listing every service ---------------------------------------------

_SERVICE_NAME = re.compile(r"[a-z0-9][a-z0-9.-]*")


class _KnownServices(Sequence[str]):
    """``Loader.list_available_services(type_name)``, answering ``name in`` from ``name``'s
    own directory; the whole listing (botocore's, a walk of every service's directory) is
    made only if something iterates, indexes or measures it."""

    def __init__(self, loader: Any, type_name: str, every: Callable[[str], list[str]]) -> None:
        self._loader, self._type, self._every = loader, type_name, every
        self._list: list[str] | None = None

    def _all(self) -> list[str]:
        if self._list is None:
            self._list = list(self._every(self._type))
        return self._list

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str) or _SERVICE_NAME.fullmatch(name) is None:
            return name in self._all()
        try:
            return bool(self._loader.list_api_versions(name, self._type))
        except DataNotFoundError:
            return False

    def __getitem__(self, index: Any) -> Any:
        return self._all()[index]

    def __len__(self) -> int:
        return len(self._all())

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())


class _PlainJSONFiles(JSONFileLoader):
    """botocore's JSON file loader, decoding into plain dicts rather than OrderedDicts.

    botocore reads its data as mappings only (and a dict keeps the order too): the same
    content, decoded in about half the time (endpoints.json is 1.2 MB, on the way to the
    first client). Only ``_load_file``, botocore's own step, is replaced: which files and
    extensions are tried stays botocore's.
    """

    def _load_file(self, full_path: str, open_method: Callable[..., Any]) -> Any:
        if not os.path.isfile(full_path):
            return None
        with open_method(full_path, "rb") as fp:
            payload = fp.read().decode("utf-8")
        return json.loads(payload)


_LOAD_FILE_ARGS = ("self", "full_path", "open_method")


def quick_loader(session: AioSession) -> None:
    """Let ``session``'s clients be made without botocore's slow steps of loading data.

    botocore's ``load_service_model`` lists every service (400+ directories, once for the
    model and once for the endpoint rules) only to check that the one it loads is among
    them: the listing, replaced on this session's loader only, answers that check from the
    service's own directory (``list_api_versions``, public, and cached as botocore caches
    it). And its JSON files are decoded into plain dicts (:class:`_PlainJSONFiles`).
    Without either (a loader that differs) clients are made as usual.
    """
    try:
        loader = session.get_component("data_loader")
        every = loader.list_available_services
        if not callable(every) or not callable(loader.list_api_versions):
            raise TypeError("the loader lists no services")
    except (AttributeError, TypeError, ValueError) as e:
        log.debug("services listed as botocore does: its loader differs (%s)", e)
        return

    def known(type_name: str) -> _KnownServices:
        return _KnownServices(loader, type_name, every)

    loader.list_available_services = known
    own = getattr(JSONFileLoader, "_load_file", None)
    code = getattr(own, "__code__", None)
    if type(getattr(loader, "file_loader", None)) is not JSONFileLoader or (
        code is None or code.co_varnames[: len(_LOAD_FILE_ARGS)] != _LOAD_FILE_ARGS
    ):
        log.debug("data decoded as botocore does: its JSON file loader differs")
        return
    loader.file_loader = _PlainJSONFiles()


# --- credentials known after the client is made -----------------------------------------


class LateCredentialsUnused(Exception):
    """A request was signed without consulting the late credentials: it is not sent."""


class LateCredentials:
    """Credentials for a client's signer that are set after the client is made."""

    def __init__(self) -> None:
        self._creds: ReadOnlyCredentials | None = None
        self.consulted = False

    def set(self, creds: ReadOnlyCredentials) -> None:
        self._creds = creds

    async def get_frozen_credentials(self) -> ReadOnlyCredentials:
        """What botocore's signer awaits; only ever called once they are set."""
        if self._creds is None:
            raise RuntimeError("a request was signed before the credentials were resolved")
        self.consulted = True
        return self._creds


def sign_with(client: Any, late: LateCredentials) -> None:
    """Have ``client`` sign every request with ``late`` instead of the keys it was made with.

    botocore's signer prefers the credentials found under ``request_credentials`` in the
    request's signing context to the client's own; a ``before-sign`` handler puts them
    there (public events; the context key is the one botocore and aiobotocore read, and a
    test checks the keys moto sees). Should the signer not read them, a ``before-send``
    handler stops the request (signed with the placeholder keys) with
    :class:`LateCredentialsUnused`: the caller then makes a client with the credentials.
    """

    def use(request: Any, **_: Any) -> None:
        request.context.setdefault("signing", {})["request_credentials"] = late

    def check(request: Any, **_: Any) -> None:
        if not late.consulted:
            raise LateCredentialsUnused("the signer did not use request_credentials")

    client.meta.events.register("before-sign", use)
    client.meta.events.register("before-send", check)


# --- what botocore keeps private about credentials ---------------------------------------


def credentials_expiry(creds: object) -> datetime | None:
    """When botocore's refreshable credentials expire: ``RefreshableCredentials._expiry_time``
    (private; awscli's ``configure export-credentials`` reads the same attribute). None for
    credentials that do not expire, and the fallback when the attribute is gone or not a
    datetime: the expiry is then unknown (``env`` prints none, the ``credential_process``
    JSON has no ``Expiration``), said at DEBUG."""
    expiry = getattr(creds, "_expiry_time", None)
    if isinstance(expiry, datetime):
        return expiry
    if isinstance(creds, RefreshableCredentials):
        log.debug("credentials' expiry unknown: botocore's RefreshableCredentials differs")
    return None
