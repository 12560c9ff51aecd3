"""The built-in login (``--client builtin``): check a token with the registry as ``docker
login`` does, with no client program, and keep it in a docker-format auth file.

The check (:class:`RegistryCheck`), with aiohttp (aiobotocore brings it) and one
connection pool for the run:

1. ``GET https://HOST/v2/``. 200: nothing to prove (docker logs in then too).
2. A 401 with ``WWW-Authenticate: Basic``: the same request with the username and token.
   200 is a login; 401 fails the registry with the registry's own message. (For a private
   ECR registry, whose challenge is always Basic, the credentials go with the first
   request, to the registry host itself: one round trip less.)
3. A 401 with ``WWW-Authenticate: Bearer realm=...`` (ECR Public): the username and token
   are exchanged at the realm for a registry token (``GET realm?service=&scope=`` with
   Basic credentials), which must then open ``/v2/``.

Credentials go only where docker would send them: Basic credentials to the registry host
itself, never across a redirect to another host; a Bearer exchange only to an ``https``
realm. Plain HTTP is used only for hosts docker treats as insecure, those that resolve
into 127.0.0.0/8 (after HTTPS fails there, as docker tries it). Bodies are read up to
:data:`MAX_BODY`; headers are bounded by aiohttp's own limits; time by ``--timeout`` (the
engine's deadline around each login).

Connections: given ``opened`` (``aws/_transport.RegistryConnections``, passed in by the
command), the pool takes the sockets opened at start-up, and each registry's connection
is completed (TLS where used) while its token is on its way (:meth:`RegistryCheck.open`),
so the check itself is one round trip. A host where that HTTPS connection fails and plain
HTTP is allowed is checked over plain HTTP at once.

:class:`BuiltinRunner` is the engine's login runner for this client: successful logins are
merged into the auth file under the same lock as every client's, and a ``credsStore`` or
``credHelpers`` helper gets the secret through its ``store`` verb (JSON on stdin), as
docker hands it over, leaving an empty ``auths`` entry as docker does.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import ipaddress
import json
import logging
import urllib.parse
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from subprocess import PIPE
from typing import Any, Protocol

import aiohttp
import anyio

from runas_async.auth.authfile import (
    SELF_SERVING_HELPERS,
    AuthFile,
)
from runas_async.auth.recording import Recorder
from runas_async.auth.runners import Runner
from runas_async.core.errors import LoginError
from runas_async.core.models import Registry, Token
from runas_async.core.sanitize import clean, show

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
"""The most of a registry's answer we read: an error document is well under 1 KiB."""

MAX_REDIRECTS = 3


class _Unreachable(Exception):
    """No connection to this base URL: try the next one (docker's HTTPS-then-HTTP rule)."""


@contextlib.contextmanager
def map_http_errors(host: str) -> Iterator[None]:
    """The one boundary where aiohttp's exceptions become ours (errors.py), as
    aws/boundary.py is botocore's; every request of the check runs inside it.

    =====================================  ==================================================
    aiohttp                                becomes
    =====================================  ==================================================
    ``ClientConnectionError`` (refused,    :class:`_Unreachable`: the next base URL is tried
    reset, DNS, timeouts to connect),      (HTTPS, then plain HTTP for a loopback host), and
    ``ClientSSLError``                     after the last, LoginError ``cannot reach HOST``
    any other ``ClientError``              LoginError ``HOST: <aiohttp's words>``
    =====================================  ==================================================

    Our own errors pass through; anything else goes out as it came.
    """
    try:
        yield
    except (aiohttp.ClientConnectionError, aiohttp.ClientSSLError) as e:
        raise _Unreachable(str(e) or type(e).__name__) from e
    except aiohttp.ClientError as e:
        raise LoginError(f"{host}: {e}") from e


@dataclass(frozen=True)
class Challenge:
    """A parsed ``WWW-Authenticate`` header."""

    scheme: str
    params: Mapping[str, str]


def parse_challenge(header: str) -> Challenge | None:
    """``Basic realm="x"`` or ``Bearer realm="https://...",service="...",scope="..."``."""
    scheme, _, rest = header.strip().partition(" ")
    if not scheme:
        return None
    params: dict[str, str] = {}
    for part in _split_params(rest):
        name, sep, value = part.partition("=")
        if sep:
            params[name.strip().lower()] = value.strip().strip('"')
    return Challenge(scheme=scheme.lower(), params=params)


def _split_params(text: str) -> list[str]:
    """Comma-separated ``name=value`` pairs; commas inside quotes do not split."""
    parts, current, quoted = [], "", False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current)
    return parts


async def is_insecure(host: str) -> bool:
    """Whether docker would treat ``host`` as an insecure registry: all its addresses are
    loopback (127.0.0.0/8, ::1). Plain HTTP is tried only for those."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    try:
        infos = await anyio.getaddrinfo(name, None)
    except OSError:
        return False
    addresses = {str(info[4][0]) for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


class Connections(Protocol):
    """Connections opened ahead for the pool (aws/_transport.py's ``RegistryConnections``,
    passed in by the command: auth/ imports nothing of aws/)."""

    def connector(self, limit: int) -> aiohttp.TCPConnector: ...

    async def open(self, session: aiohttp.ClientSession, url: str) -> bool: ...


class RegistryCheck:
    """Checks username and token against registries; one aiohttp session for the run.

    With ``connections``, :meth:`open` makes a registry's connection ahead of the check,
    while the token is on its way, and learns which hosts fail over HTTPS where plain
    HTTP is allowed: their check goes to plain HTTP at once.
    """

    def __init__(
        self, session: aiohttp.ClientSession, connections: Connections | None = None
    ) -> None:
        self._session = session
        self._connections = connections
        self._plain: set[str] = set()
        """Insecure hosts (see :func:`is_insecure`) whose HTTPS connection failed."""

    async def open(self, host: str) -> None:
        """Open the connection the check of ``host`` will use (TCP, and TLS where used);
        send nothing. Best effort: the check reports what goes wrong."""
        if self._connections is None:
            return
        try:
            await self._connections.open(self._session, f"https://{host}/v2/")
            return
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            https_failed = type(e).__name__
        if not await is_insecure(host):
            return
        log.debug("%s: HTTPS failed (%s); plain HTTP from here on", host, https_failed)
        self._plain.add(host)
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
            await self._connections.open(self._session, f"http://{host}/v2/")

    async def check(
        self, host: str, username: str, password: str, *, basic_first: bool = False
    ) -> None:
        """Return if the registry accepts the credentials; LoginError with its reason if not.

        ``basic_first``: send the Basic credentials with the first request, to the registry
        host itself, saving the round trip of the challenge. For private ECR registries,
        whose challenge is always Basic; a Bearer challenge is still answered.
        """
        secrets = (password, auth_value(username, password))
        try:
            await self._check_bases(host, username, password, basic_first)
        except LoginError as e:  # a registry's own words may quote what it was sent
            raise LoginError(clean(str(e), secrets)) from None
        except Exception as e:  # whatever one registry makes a library raise: its failure
            log.debug("checking %s raised", host, exc_info=True)
            reason = clean(str(e), secrets) or type(e).__name__
            raise LoginError(f"{host}: {reason}") from None

    async def _check_bases(
        self, host: str, username: str, password: str, basic_first: bool
    ) -> None:
        """HTTPS, then plain HTTP where docker would try it; LoginError when neither does."""
        bases = [f"https://{host}"]
        if host in self._plain:  # HTTPS failed just now, where plain HTTP is allowed
            bases = [f"http://{host}"]
        elif await is_insecure(host):
            bases.append(f"http://{host}")
        reason = ""
        for base in bases:
            try:
                await self._check(base, host, username, password, basic_first)
                return
            except _Unreachable as e:
                reason = str(e)
                log.debug("%s unreachable: %s", base, reason)
        raise LoginError(f"cannot reach {host}: {reason}")

    async def _check(
        self, base: str, host: str, username: str, password: str, basic_first: bool
    ) -> None:
        # The header made here: aiohttp's BasicAuth is deprecated (and encodes latin-1).
        basic = {"Authorization": f"Basic {auth_value(username, password)}"}
        first = basic if basic_first else None
        status, headers, body = await self._get(f"{base}/v2/", host, headers=first)
        if status == 200:
            return
        if status != 401:
            raise LoginError(_answer(host, status, body))
        challenge = parse_challenge(headers.get("WWW-Authenticate", ""))
        if challenge is None or challenge.scheme == "basic":
            if not basic_first:  # else: these very credentials were just refused
                status, _, body = await self._get(f"{base}/v2/", host, headers=basic)
        elif challenge.scheme == "bearer":
            token = await self._bearer_token(host, challenge, basic, username)
            bearer = {"Authorization": f"Bearer {token}"}
            status, _, body = await self._get(f"{base}/v2/", host, headers=bearer)
        else:
            raise LoginError(f"{host} asks for {challenge.scheme} authentication, not Basic")
        if status != 200:
            raise LoginError(_answer(host, status, body))

    async def _bearer_token(
        self, host: str, challenge: Challenge, basic: Mapping[str, str], username: str
    ) -> str:
        realm = challenge.params.get("realm", "")
        parts = urllib.parse.urlsplit(realm)
        if not parts.hostname or parts.scheme not in ("https", "http"):
            raise LoginError(f"{host} names no usable token realm ({show(realm)})")
        if parts.scheme == "http" and not await is_insecure(parts.hostname):
            raise LoginError(
                f"{host} asks for the credentials at {realm}, over plain HTTP: not sent"
            )
        query = {k: v for k, v in challenge.params.items() if k in ("service", "scope")}
        query["account"] = username
        url = realm + ("&" if parts.query else "?") + urllib.parse.urlencode(query)
        status, _, body = await self._get(url, parts.hostname, headers=basic)
        if status != 200:
            raise LoginError(_answer(host, status, body))
        try:
            doc = json.loads(body)
            token = doc.get("token") or doc.get("access_token")
        except (ValueError, AttributeError, RecursionError):
            token = None
        if not isinstance(token, str) or not token:
            raise LoginError(f"{host}'s token realm gave no token")
        return token

    async def _get(
        self,
        url: str,
        host: str,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Mapping[str, str], bytes]:
        """GET ``url``; redirects followed only within ``host`` (credentials stay there)."""
        for _ in range(MAX_REDIRECTS + 1):
            with map_http_errors(host):
                async with self._session.get(
                    url, headers=headers, allow_redirects=False
                ) as response:
                    body = await _read_bounded(response.content)
                    status, answer = response.status, dict(response.headers)
            if status not in (301, 302, 303, 307, 308):
                return status, answer, body
            url = _same_host_redirect(host, url, answer.get("Location", ""))
        raise LoginError(f"{host} redirected more than {MAX_REDIRECTS} times")


def _same_host_redirect(host: str, url: str, location: str) -> str:
    """Where a redirect from ``url`` goes, if credentials may follow it: the same host, and
    never from HTTPS down to plain HTTP. LoginError otherwise."""
    target = urllib.parse.urljoin(url, location)
    was, goes = urllib.parse.urlsplit(url), urllib.parse.urlsplit(target)
    if goes.hostname != was.hostname:
        raise LoginError(
            f"{host} redirected to another host ({goes.hostname}): credentials not sent there"
        )
    if was.scheme == "https" and goes.scheme != "https":
        raise LoginError(f"{host} redirected from HTTPS to {goes.scheme}: credentials not sent")
    return target


async def _read_bounded(content: aiohttp.StreamReader) -> bytes:
    """The body up to its end or :data:`MAX_BODY` bytes, whichever comes first (one
    ``read(n)`` returns what has arrived so far: an error document may come in pieces)."""
    chunks: list[bytes] = []
    size = 0
    while size < MAX_BODY:
        chunk = await content.read(MAX_BODY - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _answer(host: str, status: int, body: bytes) -> str:
    """The registry's own reason: its first error message, else the HTTP status."""
    try:
        errors = json.loads(body).get("errors") or []
        message = str(errors[0].get("message") or errors[0].get("code"))
    except (ValueError, AttributeError, IndexError, TypeError, RecursionError):
        # RecursionError: a hostile body nests arrays deeper than json's stack
        message = ""
    text = " ".join(message.split())  # whole: redacted, then shortened, in check()
    return f"login attempt to {host} failed with status {status}" + (f": {text}" if text else "")


def auth_value(username: str, password: str) -> str:
    """docker's ``auth`` field: base64 of ``username:password``."""
    return base64.b64encode(f"{username}:{password}".encode()).decode()


class BuiltinRunner(Runner):
    """The engine's login runner for ``--client builtin``; use as an async context manager.

    On exit every successful login is merged into ``auth`` as :class:`Runner` says
    (None: nowhere, for ``-o dockerconfigjson``); ``secrets`` keeps them for the outputs
    that print them. One aiohttp session serves the run.
    """

    def __init__(
        self,
        auth: AuthFile | None,
        seed: bytes | None,
        env: Mapping[str, str],
        *,
        connections: int,
        keep_secrets: bool = False,
        recorder: Recorder | None = None,
        opened: Connections | None = None,
    ) -> None:
        super().__init__(auth, seed, env, recorder)
        self._opened = opened
        self._connections = connections
        self._keep = keep_secrets
        self._session: aiohttp.ClientSession | None = None
        self._check: RegistryCheck | None = None
        self.secrets: dict[str, tuple[str, str]] = {}

    async def _open(self) -> None:
        limit = max(self._connections, 1)
        if self._opened is None:
            connector = aiohttp.TCPConnector(limit=limit)
        else:
            connector = self._opened.connector(limit)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=timeout, trust_env=True, raise_for_status=False
        )
        self._check = RegistryCheck(self._session, self._opened)

    async def _close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def logout(self, host: str) -> None:
        """Forget one registry: its store's secret (the helper's ``erase``), then, on the
        way out, its entries in the auth file, every spelling."""
        helper = self.refuse_ours(host)
        if helper is not None and helper not in SELF_SERVING_HELPERS:
            await _run_helper(helper, "erase", host.encode(), self._env, secret=None)
        self.logged_out.add(host)

    async def login(self, registry: Registry, token: Any) -> None:
        """Check the token with the registry; keep the login. LoginError when refused."""
        if self._check is None:
            raise RuntimeError("use BuiltinRunner as an async context manager")
        helper = self.refuse_served(registry.host)
        got = await _meanwhile(functools.partial(self._check.open, registry.host), token)
        if self.recorder is not None:
            self.recorder.token(registry.host, got.expires_at)
        await self._check.check(
            registry.host, got.username, got.password, basic_first=registry.account is not None
        )
        if self._keep:
            self.secrets[registry.host] = (got.username, got.password)
        if self.auth is None:
            return
        if helper is None:
            self.logged_in[registry.host] = {"auth": auth_value(got.username, got.password)}
            return
        await store_with_helper(helper, registry.host, got, self._env)
        self.logged_in[registry.host] = {}  # docker leaves an empty entry beside the store


async def _meanwhile(
    work: Callable[[], Awaitable[None]], token: Callable[[], Awaitable[Token]]
) -> Token:
    """The token, with ``work`` (opening the registry's connection, best effort) done while
    it comes. The token's failure is raised as it is, ``work`` cancelled."""
    got: list[Token] = []
    failure: list[Exception] = []

    async def wait() -> None:
        try:
            got.append(await token())
        except Exception as e:
            failure.append(e)
            tg.cancel_scope.cancel()

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait)
        try:
            await work()
        except Exception as e:  # best effort: the check connects, and reports, itself
            log.debug("registry connection not opened ahead: %s", type(e).__name__)
    if failure:
        raise failure[0]
    return got[0]


async def store_with_helper(helper: str, host: str, token: Token, env: Mapping[str, str]) -> None:
    """``docker-credential-HELPER store`` with the credentials as JSON on stdin, as docker."""
    payload = json.dumps({"ServerURL": host, "Username": token.username, "Secret": token.password})
    await _run_helper(helper, "store", payload.encode(), env, secret=token.password)


async def _run_helper(
    helper: str, verb: str, payload: bytes, env: Mapping[str, str], *, secret: str | None
) -> None:
    """``docker-credential-HELPER VERB`` with ``payload`` on stdin; LoginError if it fails
    (its last line, the secret redacted)."""
    program = f"docker-credential-{helper}"
    try:
        process = await anyio.run_process(
            [program, verb], input=payload, stdout=PIPE, stderr=PIPE, env=dict(env), check=False
        )
    except OSError as e:
        raise LoginError(f"cannot run {program}: {e.strerror or e}") from e
    if process.returncode != 0:
        out = (process.stderr or process.stdout or b"").decode("utf-8", "replace").strip()
        reason = out.splitlines()[-1] if out else f"exited with status {process.returncode}"
        raise LoginError(f"{program} {verb} failed: {clean(reason, [secret or ''])}")
