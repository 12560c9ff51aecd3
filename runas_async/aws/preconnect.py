"""TCP connections to STS and ECR, opened while Python is still importing botocore and aiohttp.

A run's first network calls are STS AssumeRole (a role profile) and ECR
GetAuthorizationToken, made once botocore and aiohttp are imported and clients are built:
most of a second of CPU on a small machine, during which the network sits idle. Where the
config files say plainly where those calls will go, :func:`start` opens their TCP
connections in threads at start-up, and the first clients that connect to those hosts and
ports (see ``_transport.SharedTLSSession``) take the sockets instead of connecting: the TCP
round trips overlap the imports. The requests are aiohttp's, as always.

Early TLS: where botocore's TLS settings are the plain ones (:func:`tls_guess`: the CA
bundle of ``AWS_CA_BUNDLE``, ``REQUESTS_CA_BUNDLE`` or botocore's default, certifi's; no
``ca_bundle`` in a profile), the threads also do the TLS handshake of the STS and
ECR connections (stdlib ``ssl``, verifying: CERT_REQUIRED and the host name), so that
its round trip overlaps the imports too. This is only a guess: ``_transport.py`` uses such
a connection only if the context botocore gives the request has the same settings and the
request goes to the host the handshake was made for; otherwise it is closed and aiohttp
connects afresh. A failed handshake (a certificate refused, say) is not reported here:
the socket is dropped and aiohttp's own connect reports what it meets. Nothing is sent on
a connection before it is used but the handshake.

Only the plain case is guessed: STS for a ``role_arn`` with a ``source_profile``, in the
profile's region, and ECR in each region the run needs, at their regional endpoints
(botocore's defaults) or ``AWS_ENDPOINT_URL[_STS|_ECR]``. Anything else (proxies, endpoints
or services configured in the file, FIPS, dual-stack, legacy STS endpoints, SSO, web
identity, credential_process, MFA) gets no connection. A guess that goes unused (cached
credentials, say) costs one idle connection, closed at exit; nothing is ever sent on these
connections but what aiohttp sends.

With ``--client builtin`` (no client program: runas-async talks to the registries itself),
the registries of the plan that the arguments and files name plainly (a full host, or an
account in a region known from the files) get theirs too: TCP to port 443 and, for a host
whose addresses are all loopback (where plain HTTP is allowed, as docker allows it), to
port 80 as well. ``_transport.RegistryConnections`` hands them to the built-in client's
pool, which completes them (TLS) while the tokens are on their way. A socket is only ever
taken by a connection to the host and port it was opened for.

Standard library only: this runs before the heavy imports.
"""

from __future__ import annotations

import _thread
import contextlib
import ipaddress
import socket
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING

from runas_async.aws import config as awsconfig
from runas_async.aws.config import AwsFiles
from runas_async.core.endpoints import (
    AccountEndpoint,
    HostEndpoint,
    PublicEndpoint,
    registry_for,
)
from runas_async.core.errors import RunasError
from runas_async.core.partitions import Partition, partition_for_region

if TYPE_CHECKING:
    import ssl

    from runas_async.core.plan import LoginSpec

CONNECT_TIMEOUT = 10.0
MAX_CONNECTIONS = 16
MAX_REGISTRIES = 32
"""Registries connected at start-up (a thread each); the rest connect when they log in."""
HTTPS, HTTP = 443, 80

_PROXY_VARIABLES = ("https_proxy", "http_proxy", "all_proxy")
_TRUE = ("true", "1", "yes")
# Set in a profile, these send its calls somewhere we do not guess.
_OWN_ENDPOINTS = ("endpoint_url", "services", "use_fips_endpoint", "use_dualstack_endpoint")
# A profile with any of these resolves its credentials some other way than a plain
# AssumeRole from a source profile.
_NOT_PLAIN = (
    *_OWN_ENDPOINTS,
    "credential_source",
    "credential_process",
    "web_identity_token_file",
    "mfa_serial",
    "sso_session",
    "sso_start_url",
    "sso_account_id",
    "sts_regional_endpoints",
)


Verify = bool | str
"""botocore's ``verify`` of a client: True (its default CA bundle) or a CA bundle's path."""


@dataclass(frozen=True)
class EarlyTLS:
    """A TLS session set up on a start-up socket: the finished ``SSLObject`` and its BIOs.

    ``verify`` is the botocore setting it was guessed from, ``cafile`` the bundle loaded,
    ``server_hostname`` the name verified; ``_transport.py`` compares them with the
    request's before it uses the connection.
    """

    sslobj: ssl.SSLObject
    incoming: ssl.MemoryBIO
    outgoing: ssl.MemoryBIO
    verify: Verify
    cafile: str
    host: str
    port: int
    server_hostname: str


def spawn(target: Callable[..., None], *args: object) -> None:
    """Run ``target(*args)`` in a new thread, without waiting for it to start.

    ``threading.Thread.start`` blocks until the new thread has run: at start-up, with the
    main thread importing on one of two cores, each start cost it 1 to 2 ms, 40 ms for a
    built-in login's 20 registries. ``_thread`` (the standard library's low-level thread
    API, which threading is built on) returns at once. Its threads are daemons, as these
    were: the process never waits for them. Each target hands its own failure on (to a
    future, or to the log); anything it lets escape is printed by ``sys.unraisablehook``,
    as threading's hook would have printed it.
    """
    _thread.start_new_thread(target, args)


class _EarlyContext:
    """The TLS context of the early handshakes (built once, in a thread of its own)."""

    def __init__(self, verify: Verify) -> None:
        self.verify = verify
        self._context: Future[tuple[ssl.SSLContext, str]] = Future()
        spawn(self._build)

    def _build(self) -> None:
        self._context.set_running_or_notify_cancel()
        try:
            import ssl

            if isinstance(self.verify, str):
                cafile = self.verify
            else:
                import certifi  # botocore's default bundle when certifi is there

                cafile = certifi.where()
            # CERT_REQUIRED and check_hostname, as botocore's context with verify on.
            context = ssl.create_default_context(cafile=cafile)
        except Exception as e:  # then no early TLS; aiohttp does it, and reports
            self._context.set_exception(e)
        else:
            self._context.set_result((context, cafile))

    def handshake(self, sock: socket.socket, host: str, port: int) -> EarlyTLS:
        """The TLS handshake for ``host`` on the blocking ``sock``; nothing else is sent."""
        import ssl

        context, cafile = self._context.result(CONNECT_TIMEOUT)
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        sslobj = context.wrap_bio(incoming, outgoing, server_hostname=host)
        while True:
            try:
                sslobj.do_handshake()
                break
            except ssl.SSLWantReadError:
                sock.sendall(outgoing.read())
                data = sock.recv(65536)
                if not data:
                    raise ConnectionResetError("closed during the TLS handshake") from None
                incoming.write(data)
        sock.sendall(outgoing.read())  # the client's Finished
        return EarlyTLS(sslobj, incoming, outgoing, self.verify, cafile, host, port, host)


class Preconnected:
    """Sockets being connected in threads, each handed out once, by (host, port)."""

    def __init__(self) -> None:
        self._pending: dict[tuple[str, int], list[Future[socket.socket]]] = {}
        self._early: dict[socket.socket, EarlyTLS] = {}
        self._tls: _EarlyContext | None = None
        self._registries = 0
        self._lock = threading.Lock()

    def open(self, host: str, port: int, tls: Verify | None = None) -> None:
        """Start connecting to ``host:port`` in a daemon thread; with ``tls`` (botocore's
        ``verify`` guessed for it), do the TLS handshake for ``host`` there too."""
        with self._lock:
            if sum(map(len, self._pending.values())) >= MAX_CONNECTIONS:
                return
            future: Future[socket.socket] = Future()
            self._pending.setdefault((host, port), []).append(future)
            early = None
            if tls is not None:
                if self._tls is None or self._tls.verify != tls:
                    self._tls = _EarlyContext(tls)
                early = self._tls
        spawn(self._connect, host, port, future, early)

    def _connect(
        self, host: str, port: int, future: Future[socket.socket], tls: _EarlyContext | None
    ) -> None:
        if tls is None:
            _connect(host, port, future)
            return

        def handshake(sock: socket.socket) -> None:
            early = tls.handshake(sock, host, port)
            with self._lock:
                self._early[sock] = early

        _connect(host, port, future, handshake)

    def early_tls(self, sock: socket.socket) -> EarlyTLS | None:
        """The TLS session already set up on ``sock`` (one of this object's), if any."""
        with self._lock:
            return self._early.pop(sock, None)

    def open_registry(self, host: str) -> None:
        """Start connecting to ``host``'s HTTPS port, and to its plain HTTP port if all its
        addresses are loopback (see ``auth.registry.is_insecure``), in one daemon thread."""
        with self._lock:
            if self._registries >= MAX_REGISTRIES:
                return
            self._registries += 1
            https: Future[socket.socket] = Future()
            plain: Future[socket.socket] = Future()
            self._pending.setdefault((host, HTTPS), []).append(https)
            self._pending.setdefault((host, HTTP), []).append(plain)
        spawn(_connect_registry, host, https, plain)

    @property
    def targets(self) -> list[tuple[str, int]]:
        with self._lock:
            return [target for target, futures in self._pending.items() for _ in futures]

    def take(self, host: str, port: int) -> Future[socket.socket] | None:
        """A connection to ``host:port`` (connected, or on its way); each is given once."""
        with self._lock:
            futures = self._pending.get((host, port))
            return futures.pop(0) if futures else None

    def close(self) -> None:
        """Close the connections nobody took (those still connecting, once they are)."""
        with self._lock:
            unused = [f for futures in self._pending.values() for f in futures]
            self._pending = {}
            self._early = {}
        for future in unused:
            future.add_done_callback(_close)


def _connect(
    host: str,
    port: int,
    future: Future[socket.socket],
    then: Callable[[socket.socket], None] | None = None,
) -> None:
    """Connect ``future``'s socket; ``then`` (the early TLS handshake) runs on it, still
    blocking, before it is handed over. A failure of either is the future's."""
    # Running from here on: a waiter that gives up (cancelled) cannot cancel the future
    # under this thread, which then always has a place to put its socket (close() or the
    # process's exit closes it).
    future.set_running_or_notify_cancel()
    try:
        sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)
    except Exception as e:  # handed to whoever takes it, or dropped
        future.set_exception(e)
        return
    try:
        if then is not None:
            then(sock)
        sock.setblocking(False)  # asyncio's loop.create_connection(sock=...) wants it so
    except Exception as e:  # a refused certificate too: aiohttp's connect reports it
        sock.close()
        future.set_exception(e)
        return
    future.set_result(sock)


def _connect_registry(
    host: str, https: Future[socket.socket], plain: Future[socket.socket]
) -> None:
    try:
        infos = socket.getaddrinfo(host, HTTPS, type=socket.SOCK_STREAM)
        loopback = all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)
    except (OSError, ValueError) as e:
        loopback = False
        failure: Exception = e
    else:
        failure = ConnectionRefusedError(f"plain HTTP is not used for {host}")
    _connect(host, HTTPS, https)
    if loopback:
        _connect(host, HTTP, plain)
    elif plain.set_running_or_notify_cancel():  # else: cancelled, nobody waits
        plain.set_exception(failure)


def _close(future: Future[socket.socket]) -> None:
    if future.exception() is None:
        future.result().close()


def start(
    specs: Iterable[LoginSpec],
    env: Mapping[str, str],
    partitions: tuple[Partition, ...],
    region: str | None = None,
    files: AwsFiles | None = None,
    *,
    registries: bool = False,
) -> Preconnected:
    """Start connecting to each of :func:`targets` (the TLS handshake too, for the https
    ones, when :func:`tls_guess` has one); with ``registries`` (the built-in client), to
    each of :func:`registry_hosts` too."""
    pre = Preconnected()
    specs = list(specs)
    config = awsconfig.read(env) if files is None else files
    found = _targets(specs, env, partitions, region, config)
    tls = tls_guess(specs, env, config) if any(https for *_, https in found) else None
    for host, port, https in found:
        pre.open(host, port, tls if https else None)
    if registries:
        for host in registry_hosts(specs, env, partitions, region, config):
            pre.open_registry(host)
    return pre


def registry_hosts(
    specs: Iterable[LoginSpec],
    env: Mapping[str, str],
    partitions: tuple[Partition, ...],
    region: str | None,
    files: AwsFiles,
) -> list[str]:
    """The registries of the plan known before any request: each full host asked for, and
    each account's registry in the region the files give its profile (``region``: the
    ``--region`` in force). None behind a proxy: the pool connects through it."""
    if _proxied(env):
        return []
    hosts: dict[str, None] = {}
    for spec in specs:
        own = spec.region or files.region(spec.profile, env, region)
        for ep in spec.endpoints:
            if isinstance(ep, HostEndpoint | PublicEndpoint):
                hosts[ep.registry.host] = None
            elif isinstance(ep, AccountEndpoint) and own:
                with contextlib.suppress(RunasError):  # the plan reports it
                    hosts[registry_for(ep.account, own, partitions).host] = None
    return list(hosts)


def tls_guess(specs: Iterable[LoginSpec], env: Mapping[str, str], files: AwsFiles) -> Verify | None:
    """botocore's ``verify`` for these profiles' STS and ECR clients, when plain: the path
    of ``AWS_CA_BUNDLE``, else of ``REQUESTS_CA_BUNDLE``, else True (its default bundle), as
    botocore picks it for a client that sets none. None (no early TLS) when a profile sets
    ``ca_bundle``: not guessed. A guess only; ``_transport.py`` checks it against
    botocore's before any use."""
    if any("ca_bundle" in (files.section(spec.profile) or {}) for spec in specs):
        return None
    return env.get("AWS_CA_BUNDLE") or env.get("REQUESTS_CA_BUNDLE") or True


def _proxied(env: Mapping[str, str]) -> bool:
    return any(env.get(name) or env.get(name.upper()) for name in _PROXY_VARIABLES)


def targets(
    specs: Iterable[LoginSpec],
    env: Mapping[str, str],
    partitions: tuple[Partition, ...],
    region: str | None = None,
    files: AwsFiles | None = None,
) -> list[tuple[str, int]]:
    """The STS and ECR endpoints the run will call first, where they can be known for sure.

    One per call: each profile's AssumeRole, each (profile, region)'s token (several may
    share a host and port, as behind one endpoint URL). ``region`` is ``--region``: the
    region of the profiles' own registries and accounts. ``files``: the AWS config files
    as the caller read them (read here when not given).
    """
    config = awsconfig.read(env) if files is None else files
    return [(host, port) for host, port, _ in _targets(specs, env, partitions, region, config)]


def _targets(
    specs: Iterable[LoginSpec],
    env: Mapping[str, str],
    partitions: tuple[Partition, ...],
    region: str | None,
    config: AwsFiles,
) -> list[tuple[str, int, bool]]:
    """:func:`targets`, each with whether it is https."""
    if _proxied(env):
        return []
    if not config.config:
        return []
    found: dict[tuple[str, str], tuple[str, int, bool]] = {}
    for spec in specs:
        sts = sts_target(config, spec.profile, env, partitions)
        if sts is not None:
            found[(spec.profile, "")] = sts
        own = spec.region or region or _profile_region(config, spec.profile, env)
        for ecr_region in _ecr_regions(spec, own):
            ecr = ecr_target(config, spec.profile, ecr_region, env, partitions)
            if ecr is not None:
                found[(spec.profile, ecr_region)] = ecr
    return list(found.values())


def _ecr_regions(spec: LoginSpec, own: str | None) -> list[str]:
    """The regions of the spec's private registries (public ones are left alone)."""
    regions: dict[str, None] = {}
    for ep in spec.endpoints or (None,):
        if isinstance(ep, HostEndpoint):
            regions[ep.registry.region] = None
        elif (ep is None or isinstance(ep, AccountEndpoint)) and own:
            regions[own] = None
    return list(regions)


def ecr_target(
    config: AwsFiles,
    profile: str,
    region: str,
    env: Mapping[str, str],
    partitions: tuple[Partition, ...],
) -> tuple[str, int, bool] | None:
    """Host, port and https of ECR's GetAuthorizationToken in ``region``, or None if unsure."""
    section = config.section(profile) or {}
    if any(key in section for key in _OWN_ENDPOINTS):
        return None
    return _service_target("ECR", f"api.ecr.{region}", region, env, partitions)


def sts_target(
    config: AwsFiles,
    profile: str,
    env: Mapping[str, str],
    partitions: tuple[Partition, ...],
) -> tuple[str, int, bool] | None:
    """Host, port and https of the AssumeRole call of ``profile``'s credentials, or None if
    unsure."""
    section = config.section(profile)
    if section is None:
        return None
    if not (section.get("role_arn") and section.get("source_profile")):
        return None
    if any(key in section for key in _NOT_PLAIN):
        return None
    if env.get("AWS_STS_REGIONAL_ENDPOINTS", "regional").lower() != "regional":
        return None
    # The STS client of botocore's provider is made in the session's region.
    region = _profile_region(config, profile, env, aws_region=False)
    if not region:
        return None
    return _service_target("STS", f"sts.{region}", region, env, partitions)


def _service_target(
    service: str, name: str, region: str, env: Mapping[str, str], partitions: tuple[Partition, ...]
) -> tuple[str, int, bool] | None:
    """The service's URL from the environment, else ``NAME.<partition suffix>:443`` (https)."""
    for flag in ("AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT"):
        if env.get(flag, "").lower() in _TRUE:
            return None
    if env.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() not in _TRUE:
        url = env.get(f"AWS_ENDPOINT_URL_{service}") or env.get("AWS_ENDPOINT_URL")
        if url:
            return _url_target(url)
    partition = partition_for_region(region, partitions)
    if partition is None:
        return None
    return f"{name}.{partition.dns_suffix}", 443, True


def _profile_region(
    config: AwsFiles,
    profile: str,
    env: Mapping[str, str],
    *,
    aws_region: bool = True,
) -> str | None:
    """AWS_REGION (ours, not botocore's), AWS_DEFAULT_REGION, then the profile's region."""
    if not aws_region:  # botocore's own clients: AWS_REGION is not botocore's
        env = {k: v for k, v in env.items() if k != "AWS_REGION"}
    return config.region(profile, env)


def _url_target(url: str) -> tuple[str, int, bool] | None:
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    https = parts.scheme == "https"
    return parts.hostname, port or (443 if https else 80), https
