"""A sandbox of real components: moto for the AWS APIs, real registries, the real docker CLI.

Used by the pytest suite (``tests/conftest.py``), ``make demo`` and the benchmark. Synchronous
on purpose, so that any of them can drive it without an event loop::

    with Sandbox() as sb:
        sb.add_registry(ecr_host("123456789012", "us-east-1"), moto_password("123456789012"))
        sb.write_aws_config({"default": {"region": "us-east-1", **STATIC_KEYS}})
        result = sb.run_tool(["ecr", "login", "default"])

:class:`Moto` is the part that needs no root, namespace or registry: moto, the ECR Public
stand-in and the tool's files. Tests that only talk to the AWS APIs use it (the ``moto``
fixture); :class:`Sandbox` adds the registries and the namespace.

What it runs, all on loopback (see ``/work/shared/HARNESS.md`` for the measurements):

* moto's server in a thread of this process, on ``127.0.0.1`` and a free port. Every request
  it answers is logged (:meth:`Sandbox.moto_calls`, :meth:`Sandbox.calls`).
* one ``docker-registry serve`` process per registry host (distribution 2.8), each on its own
  ``127.0.0.N:80`` with a bcrypt htpasswd file, because the docker CLI talks plain HTTP only on
  port 80 to a host that resolves into 127.0.0.0/8.
* the tool under test (or docker itself) inside a private mount namespace (:meth:`Sandbox.wrap`)
  where the sandbox's hosts file is bind-mounted over ``/etc/hosts``, so real ECR host names
  resolve to those registries without touching the machine's ``/etc/hosts``. A resolv.conf
  naming a loopback address where nothing listens is bind-mounted over ``/etc/resolv.conf``
  too, so a name missing from the hosts file fails fast instead of leaving the machine.

moto hands out ECR passwords of the form ``"<account>-auth-token"`` (:func:`moto_password`):
static keys belong to account 123456789012 (:data:`DEFAULT_ACCOUNT`), credentials from
``AssumeRole`` to the role's account. A registry for account A must therefore be added with
``moto_password(A)``.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import functools
import http.client
import io
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

from tests.ecr_public import EcrPublicServer

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

    from werkzeug.serving import BaseWSGIServer

__all__ = [
    "DEFAULT_ACCOUNT",
    "STATIC_KEYS",
    "Moto",
    "MotoCall",
    "Registry",
    "Sandbox",
    "SandboxError",
    "docker_auths",
    "ecr_host",
    "is_leaky_env_var",
    "moto_password",
    "sandbox_missing",
]

DEFAULT_ACCOUNT = "123456789012"
"""The account moto gives to static (non-assumed-role) credentials."""

STATIC_KEYS: Mapping[str, str] = {
    "aws_access_key_id": "AKIAIOSFODNN7EXAMPLE",
    "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
}
"""Static keys for a profile; moto accepts any and maps them to :data:`DEFAULT_ACCOUNT`."""


def _block() -> int:
    """``127.BLOCK.0.0/16`` for this process: 20 + (run's pid + 97 * worker) % 230.

    The run is this process, or under pytest-xdist the controller that started this worker
    (``PYTEST_XDIST_WORKER`` is ``gw0``, ``gw1``...), so the workers of one run get distinct
    blocks (97 is prime to 230: the first 230 workers never share one) and two runs at once
    meet only when their pids happen to line up.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw") or not worker[2:].isdigit():
        return 20 + os.getpid() % 230
    return 20 + (os.getppid() + 97 * int(worker[2:])) % 230


BLOCK = _block()
"""This test run's own block of loopback, ``127.BLOCK.0.0/16``: several runs at once (a second
checkout, a benchmark, the other pytest-xdist workers of this run) do not meet on one address
(HARNESS.md, sharing loopback)."""

FIRST_ADDRESS = ipaddress.IPv4Address(f"127.{BLOCK}.0.10")
"""Registries get ``127.BLOCK.0.10`` and up; lower addresses are left to others."""

DEAD_NAMESERVER = "127.0.0.9"
"""The only nameserver inside :meth:`Sandbox.wrap`: loopback, below the registry range."""

REGISTRY_PORT = 80
START_TIMEOUT = 30.0
PASSWORD_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0

_HOST_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")
_LEAKY_NAMES = frozenset({"NO_COLOR", "FORCE_COLOR", "MFA_CODE", "DBUS_SESSION_BUS_ADDRESS"})


class SandboxError(RuntimeError):
    """A sandbox component did not start, stop or change as asked."""


def ecr_host(account: str, region: str) -> str:
    """The private ECR registry host name of ``account`` in ``region``."""
    return f"{account}.dkr.ecr.{region}.amazonaws.com"


def moto_password(account: str) -> str:
    """The password moto's ECR GetAuthorizationToken hands to a caller from ``account``."""
    return f"{account}-auth-token"


def is_leaky_env_var(name: str) -> bool:
    """Whether a variable from the developer's environment could change what the tool does.

    AWS_* (profiles, keys, endpoints, regions), DOCKER_* (config dir, daemon, context),
    proxies in either case, colour switches, MFA_CODE and the D-Bus session bus (docker's
    default ``secretservice`` credential helper would write into the developer's keyring).
    """
    upper = name.upper()
    return (
        upper.startswith(("AWS_", "DOCKER_")) or upper.endswith("_PROXY") or upper in _LEAKY_NAMES
    )


def docker_auths(docker_config_dir: Path | str) -> dict[str, str]:
    """``{host: "user:password"}`` from the ``auths`` of ``DOCKER_CONFIG/config.json``.

    Empty when the file does not exist. Entries without an inline ``auth`` (kept by a
    credential helper) are left out.
    """
    path = Path(docker_config_dir) / "config.json"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    auths = json.loads(text).get("auths", {})
    return {
        host: base64.b64decode(entry["auth"]).decode()
        for host, entry in auths.items()
        if isinstance(entry, dict) and entry.get("auth")
    }


# --- what the machine offers -------------------------------------------------------------


def _unshare_prefix() -> list[str]:
    if os.geteuid() == 0:
        return ["unshare", "--mount", "--propagation", "private"]
    return ["unshare", "--user", "--map-root-user", "--mount", "--propagation", "private"]


@functools.cache
def sandbox_missing() -> str | None:
    """Why the sandbox cannot run here, or None when everything it needs is available.

    Checks the programs (``unshare``, ``docker-registry``, ``htpasswd``, ``docker``), that a
    private mount namespace with a bind mount over ``/etc/hosts`` really works (as root, or
    unprivileged through a user namespace) and, when not root, that port 80 can be bound.
    Runs the probe once per process.
    """
    programs = {
        "unshare": "unshare (util-linux)",
        "docker-registry": "docker-registry (apt-get install docker-registry)",
        "htpasswd": "htpasswd (apt-get install apache2-utils)",
        "docker": "the docker CLI",
    }
    absent = [label for program, label in programs.items() if shutil.which(program) is None]
    if absent:
        return "missing " + ", ".join(absent)
    probe = [*_unshare_prefix(), "sh", "-c", 'mount --bind "$0" /etc/hosts', "/etc/hosts"]
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"cannot run {' '.join(probe)}: {e}"
    if done.returncode != 0:
        who = "as root" if os.geteuid() == 0 else "not root and no unprivileged user namespace"
        detail = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        return f"no private mount namespace ({who}): {' '.join(probe[:-3])}: {detail[0]}"
    if os.geteuid() != 0:
        try:
            start = int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
        except (OSError, ValueError):
            start = 1024
        if start > REGISTRY_PORT:
            return (
                "not root and port 80 is privileged "
                f"(net.ipv4.ip_unprivileged_port_start={start}); registries need :80"
            )
    return None


# --- moto, with a log of the requests it answered ------------------------------------------


@dataclass(frozen=True)
class MotoCall:
    """One request moto answered."""

    service: str
    """Signing name from the SigV4 ``Authorization`` header (``ecr``, ``sts``); "" if unsigned."""
    operation: str
    """``GetAuthorizationToken``, ``AssumeRole``...; ``METHOD /path`` for REST protocols."""
    region: str
    """Region from the credential scope; "" if unsigned."""
    access_key: str
    """Access key id that signed the request: tells static keys from each assumed role."""


_CREDENTIAL_RE = re.compile(r"Credential=([^/,\s]+)/[^/]+/([^/]+)/([^/]+)/")


def _describe(environ: WSGIEnvironment) -> MotoCall | None:
    """Which operation a request to moto calls. Leaves the body readable for moto."""
    path = str(environ.get("PATH_INFO", ""))
    if path.startswith("/moto-api"):
        return None
    scope = _CREDENTIAL_RE.search(str(environ.get("HTTP_AUTHORIZATION", "")))
    access_key, region, service = scope.groups() if scope else ("", "", "")
    method = str(environ.get("REQUEST_METHOD", ""))
    operation = f"{method} {path}"
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    if target:  # JSON protocol: "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"
        operation = target.rpartition(".")[2]
    elif path.startswith("/service/") and "/operation/" in path:  # Smithy RPC v2 CBOR
        operation = path.rpartition("/operation/")[2]
    else:  # query protocol: Action=AssumeRole in the query string or a form body
        params = urllib.parse.parse_qs(str(environ.get("QUERY_STRING", "")))
        content_type = str(environ.get("CONTENT_TYPE", ""))
        if "Action" not in params and content_type.startswith("application/x-www-form-urlencoded"):
            body = _read_body(environ)
            params = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        if "Action" in params:
            operation = params["Action"][0]
    return MotoCall(service=service, operation=operation, region=region, access_key=access_key)


def _read_body(environ: WSGIEnvironment) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body: bytes = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


class _CallLog:
    """WSGI middleware in front of moto that records every API request it forwards."""

    def __init__(self, app: WSGIApplication) -> None:
        self._app = app
        self._lock = threading.Lock()
        self._calls: list[MotoCall] = []

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        call = _describe(environ)
        if call is not None:
            with self._lock:
                self._calls.append(call)
        return self._app(environ, start_response)

    def snapshot(self) -> list[MotoCall]:
        with self._lock:
            return list(self._calls)

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()


def _start_moto() -> tuple[BaseWSGIServer, threading.Thread, _CallLog]:
    """moto's server, as ``moto.server.ThreadedMotoServer`` builds it, behind a call log.

    ThreadedMotoServer offers no way to wrap its WSGI app and does not close its listening
    socket on stop(); this is the same server (werkzeug's threaded ``make_server`` with moto's
    ``DomainDispatcherApplication`` and ``MotoRequestHandler``) without those two gaps.
    """
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    class QuietHandler(MotoRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            """No line per request on stderr (the demo's terminal)."""

    log = _CallLog(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, log, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="moto", daemon=True
    )
    thread.start()
    return server, thread, log


# --- registries --------------------------------------------------------------------------


@dataclass
class Registry:
    """One running ``docker-registry`` behind the host name ``host``."""

    host: str
    address: str
    htpasswd: Path
    process: subprocess.Popen[bytes]
    password: str
    config: Path
    log: Path
    realm: str
    """Basic-auth realm unique to this registry: tells it from a stranger's on its address."""
    username: str = "AWS"
    port: int = REGISTRY_PORT

    def status(self, username: str, password: str, *, timeout: float = 2.0) -> int:
        """HTTP status of ``GET /v2/`` with these basic-auth credentials (200 or 401)."""
        status, _ = _get_v2(self.address, self.port, self.host, (username, password), timeout)
        return status


def _get_v2(
    address: str, port: int, host: str, credentials: tuple[str, str] | None, timeout: float
) -> tuple[int, str]:
    """``GET http://address:port/v2/`` with ``Host: host``: (status, WWW-Authenticate)."""
    headers = {"Host": host}
    if credentials is not None:
        token = base64.b64encode(":".join(credentials).encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    connection = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        connection.request("GET", "/v2/", headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status, response.getheader("WWW-Authenticate", "")
    finally:
        connection.close()


def _htpasswd_lines(pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """bcrypt ``user:hash`` lines, one ``htpasswd -iBn`` per distinct pair, run in parallel.

    The password goes on stdin (``-i``), never in argv, where /proc shows it to every process
    (and test_faults' scan of every process's argv would find a registry's token there).
    """
    running = {
        pair: subprocess.Popen(
            ["htpasswd", "-iBn", "-C", "4", pair[0]],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for pair in dict.fromkeys(pairs)
    }
    lines: dict[tuple[str, str], str] = {}
    errors: list[str] = []
    for pair, process in running.items():
        try:
            out, err = process.communicate(pair[1], timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
        line = out.strip()
        if process.returncode != 0 or not line:
            errors.append(f"htpasswd for user {pair[0]!r} failed: {err.strip()}")
        lines[pair] = line + "\n"
    if errors:
        raise SandboxError("; ".join(errors))
    return lines


def _write_atomic(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def _address_taken(address: str) -> bool:
    """Whether something already accepts connections on ``address:80``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        try:
            probe.connect((address, REGISTRY_PORT))
        except OSError:
            return False
        return True


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return " | ".join(text.strip().splitlines()[-lines:])


def _stop(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    """SIGTERM all, then wait for each; SIGKILL whatever outlives STOP_TIMEOUT."""
    for process in processes:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- moto alone ---------------------------------------------------------------------------


class Moto:
    """moto and the ECR Public stand-in on 127.0.0.1, and the tool's files, under one directory.

    What the tests that only talk to the AWS APIs need: no root, no namespace, no registry.
    Creating it starts moto (behind its call log) and :class:`~tests.ecr_public.EcrPublicServer`;
    :meth:`env` points the tool at them and at this directory's AWS config, DOCKER_CONFIG and
    HOME. :meth:`close` (or leaving the ``with`` block) stops both and removes what it wrote:
    the whole work directory when it made one (``workdir=None``), otherwise only the entries
    it created in the given one. ``keep=True`` leaves the files for inspection.

    Not thread-safe: drive it from one thread. :meth:`moto_calls` may be read from any.
    """

    moto_url: str
    workdir: Path

    def __init__(self, workdir: Path | None = None, *, keep: bool = False) -> None:
        self._keep = keep
        self._owns_workdir = workdir is None
        if workdir is None:
            workdir = Path(tempfile.mkdtemp(prefix="runas-sandbox-"))
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir.resolve()
        self._created: list[Path] = []
        self._moto: tuple[BaseWSGIServer, threading.Thread, _CallLog] | None = None
        self.ecr_public: EcrPublicServer | None = None
        self._closed = False
        try:
            self._prepare()
            for name in ("aws", "docker", "home"):
                self._own(self.workdir / name)
            self._moto = _start_moto()
            host, port = self._moto[0].server_address[:2]
            self.moto_url = f"http://{host!s}:{port}"
            self.ecr_public = EcrPublicServer()
        except BaseException:
            self.close()
            raise

    def _prepare(self) -> None:
        """What a subclass sets up first; :meth:`_stop_children` undoes it. Nothing here."""

    def _stop_children(self) -> None:
        """Stop what a subclass started, before moto stops. Nothing here."""

    # -- lifetime

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop everything started here; remove the files unless ``keep``. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stop_children()
        if self.ecr_public is not None:
            self.ecr_public.close()
            self.ecr_public = None
        if self._moto is not None:
            server, thread, _ = self._moto
            server.shutdown()
            thread.join()
            server.server_close()
            self._moto = None
        if self._keep:
            return
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            return
        for path in self._created:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)

    def _own(self, path: Path) -> Path:
        self._created.append(path)
        return path

    # -- the tool's environment

    @property
    def aws_config_file(self) -> Path:
        return self.workdir / "aws" / "config"

    @property
    def aws_credentials_file(self) -> Path:
        return self.workdir / "aws" / "credentials"

    @property
    def docker_config(self) -> Path:
        """``DOCKER_CONFIG`` of :meth:`env`; not created (docker creates it on first login)."""
        return self.workdir / "docker"

    @property
    def home(self) -> Path:
        return self.workdir / "home"

    def write_aws_config(self, profiles: Mapping[str, Mapping[str, str]]) -> Path:
        """Write ``workdir/aws/config``: ``[default]`` and ``[profile NAME]`` sections
        (a name starting ``sso-session `` is written as it is)."""
        sections = {
            (
                name if name == "default" or name.startswith("sso-session ") else f"profile {name}"
            ): values
            for name, values in profiles.items()
        }
        return _write_ini(self.aws_config_file, sections)

    def write_aws_credentials(self, profiles: Mapping[str, Mapping[str, str]]) -> Path:
        """Write ``workdir/aws/credentials``: one ``[NAME]`` section per profile."""
        return _write_ini(self.aws_credentials_file, profiles)

    def reset_client(self) -> None:
        """Remove the tool-side state: AWS config and credentials, DOCKER_CONFIG and HOME."""
        for path in (self.workdir / "aws", self.docker_config, self.home):
            shutil.rmtree(path, ignore_errors=True)

    def env(self, **extra: str) -> dict[str, str]:
        """A clean environment for the tool, pointed at moto and this sandbox's files.

        ``os.environ`` without anything :func:`is_leaky_env_var` names, plus the AWS config
        and credentials files, ``AWS_ENDPOINT_URL`` (moto), ``DOCKER_CONFIG``, ``HOME``
        (created), no EC2 metadata, and ``DOCKER_HOST`` at a socket that does not exist, so
        docker logs in by itself even on a machine with a daemon (a daemon would resolve the
        real ECR names outside the namespace). ``extra`` comes last and wins.
        """
        self.home.mkdir(parents=True, exist_ok=True)
        env = {name: value for name, value in os.environ.items() if not is_leaky_env_var(name)}
        env.update(
            AWS_CONFIG_FILE=str(self.aws_config_file),
            AWS_SHARED_CREDENTIALS_FILE=str(self.aws_credentials_file),
            AWS_ENDPOINT_URL=self.moto_url,
            AWS_ENDPOINT_URL_ECR_PUBLIC=self.ecr_public.url if self.ecr_public else "",
            AWS_EC2_METADATA_DISABLED="true",
            DOCKER_CONFIG=str(self.docker_config),
            DOCKER_HOST=f"unix://{self.workdir / 'no-docker-daemon.sock'}",
            HOME=str(self.home),
        )
        env.update(extra)
        return env

    def run_tool(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        input: str | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """``python -m runas_async ARGS`` with :meth:`env` (or ``env``); capture text output.

        Here in no namespace: for commands that talk to moto only (no registry, no client).
        :class:`Sandbox` runs it inside its namespace instead.
        """
        return subprocess.run(
            [sys.executable, "-m", "runas_async", *args],
            env=dict(self.env() if env is None else env),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def docker_auths(self) -> dict[str, str]:
        """:func:`docker_auths` of this sandbox's ``DOCKER_CONFIG``."""
        return docker_auths(self.docker_config)

    # -- moto

    def _moto_log(self) -> _CallLog:
        if self._moto is None:
            raise SandboxError("the sandbox is closed")
        return self._moto[2]

    def reset_moto(self) -> None:
        """Clear all moto state (``POST /moto-api/reset``) and the call log."""
        parsed = urllib.parse.urlsplit(self.moto_url)
        connection = http.client.HTTPConnection(parsed.hostname or "", parsed.port, timeout=10)
        try:
            connection.request("POST", "/moto-api/reset")
            response = connection.getresponse()
            response.read()
        finally:
            connection.close()
        if response.status != 200:
            raise SandboxError(f"moto reset answered {response.status}")
        self._moto_log().clear()
        if self.ecr_public is not None:
            self.ecr_public.calls.clear()

    def moto_calls(self) -> list[MotoCall]:
        """Every API request moto answered since start or the last reset, oldest first."""
        return self._moto_log().snapshot()

    def calls(self, service: str | None = None) -> collections.Counter[str]:
        """How often moto saw each operation (of ``service`` only, when given)."""
        return collections.Counter(
            call.operation
            for call in self.moto_calls()
            if service is None or call.service == service
        )

    def clear_calls(self) -> None:
        """Forget the calls seen so far, keeping moto's state."""
        self._moto_log().clear()


# --- the sandbox -------------------------------------------------------------------------


class Sandbox(Moto):
    """:class:`Moto`, plus registries and a namespace for the tool, under one work directory.

    Creating it starts moto; :meth:`close` (or leaving the ``with`` block) stops every
    process it started and removes what it wrote, as :class:`Moto` does.

    Not thread-safe: drive it from one thread. :meth:`moto_calls` may be read from any.
    """

    hosts_file: Path
    resolv_conf: Path

    def __init__(self, workdir: Path | None = None, *, keep: bool = False) -> None:
        self._registries: dict[str, Registry] = {}
        self._used: set[str] = set()
        self._token = secrets.token_hex(6)
        super().__init__(workdir, keep=keep)

    def _prepare(self) -> None:
        """The hosts file and resolv.conf of :meth:`wrap`, and the registries' directory."""
        self.hosts_file = self._own(self.workdir / "hosts")
        self.hosts_file.write_text(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
            encoding="utf-8",
        )
        self.resolv_conf = self._own(self.workdir / "resolv.conf")
        self.resolv_conf.write_text(
            f"nameserver {DEAD_NAMESERVER}\noptions timeout:1 attempts:1\n", encoding="utf-8"
        )
        self._registries_dir = self._own(self.workdir / "registries")
        self._registries_dir.mkdir(exist_ok=True)

    def _stop_children(self) -> None:
        _stop([registry.process for registry in self._registries.values()])
        self._registries.clear()

    # -- registries

    @property
    def registries(self) -> Mapping[str, Registry]:
        """The running registries by host name."""
        return dict(self._registries)

    def registry(self, host: str) -> Registry:
        """The running registry for ``host``; KeyError when none was added."""
        return self._registries[host]

    def add_registry(self, host: str, password: str, *, username: str = "AWS") -> Registry:
        """A registry for ``host`` accepting ``username``/``password``, running on its own address.

        Adding a host that is already running reuses its registry (and sets the password when
        it differs).
        """
        return self._add([(host, username, password)])[0]

    def add_registries(
        self, specs: Sequence[tuple[str, str]], *, username: str = "AWS"
    ) -> list[Registry]:
        """:meth:`add_registry` for many ``(host, password)`` pairs: start all, then wait."""
        return self._add([(host, username, password) for host, password in specs])

    def set_password(self, host: str, password: str, *, username: str | None = None) -> None:
        """Replace the credentials of ``host``'s registry; returns once the registry enforces them.

        Polls ``GET /v2/`` until the new password gets 200 and the old one 401.
        """
        registry = self._registries[host]
        old = (registry.username, registry.password)
        new = (registry.username if username is None else username, password)
        line = _htpasswd_lines([new])[new]
        _write_atomic(registry.htpasswd, line)
        registry.username, registry.password = new
        deadline = time.monotonic() + PASSWORD_TIMEOUT
        while True:
            new_ok = registry.status(*new) == 200
            old_refused = old == new or registry.status(*old) == 401
            if new_ok and old_refused:
                return
            if time.monotonic() > deadline:
                raise SandboxError(
                    f"registry for {host} at {registry.address} does not enforce its new "
                    f"password after {PASSWORD_TIMEOUT:.0f} s; log: {_tail(registry.log)}"
                )
            time.sleep(0.02)

    @contextlib.contextmanager
    def preserving_passwords(self) -> Iterator[None]:
        """Put back the credentials of every registry running now when the block ends."""
        before = {host: (r.username, r.password) for host, r in self._registries.items()}
        try:
            yield
        finally:
            for host, (username, password) in before.items():
                registry = self._registries.get(host)
                if registry and (registry.username, registry.password) != (username, password):
                    self.set_password(host, password, username=username)

    def _add(self, specs: Sequence[tuple[str, str, str]]) -> list[Registry]:
        for host, _, _ in specs:
            if not _HOST_RE.fullmatch(host):
                raise ValueError(f"not a host name: {host!r}")
        # The last spec for a host wins, as with repeated calls.
        latest = {host: (username, password) for host, username, password in specs}
        new_hosts = [host for host in latest if host not in self._registries]
        lines = _htpasswd_lines(latest[host] for host in new_hosts)
        pending: dict[str, Registry] = {}
        try:
            for host in new_hosts:
                pending[host] = self._spawn(host, *latest[host], lines[latest[host]])
            self._wait_ready(pending, lines)
        except BaseException:
            _stop([registry.process for registry in pending.values()])
            self._used.difference_update(registry.address for registry in pending.values())
            raise
        self._registries.update(pending)
        with self.hosts_file.open("a", encoding="utf-8") as hosts:  # same inode: live mounts see it
            hosts.writelines(f"{r.address}\t{r.host}\n" for r in pending.values())
        for host, (username, password) in latest.items():
            registry = self._registries[host]
            if (registry.username, registry.password) != (username, password):
                self.set_password(host, password, username=username)
        return [self._registries[host] for host, _, _ in specs]

    def _next_address(self) -> str:
        candidate = FIRST_ADDRESS
        while True:
            address = str(candidate)
            last = int(candidate) & 0xFF
            if 0 < last < 255 and address not in self._used and not _address_taken(address):
                self._used.add(address)
                return address
            candidate += 1
            if candidate not in ipaddress.IPv4Network("127.0.0.0/8"):
                raise SandboxError("no free loopback address left for a registry")

    def _spawn(self, host: str, username: str, password: str, htpasswd_line: str) -> Registry:
        address = self._next_address()
        directory = self._registries_dir / address
        directory.mkdir(exist_ok=True)
        htpasswd = directory / "htpasswd"
        _write_atomic(htpasswd, htpasswd_line)
        realm = f"runas-sandbox-{self._token} {host}"
        config = directory / "config.yml"
        config.write_text(
            _registry_config(
                address=address, realm=realm, htpasswd=htpasswd, storage=directory / "data"
            ),
            encoding="utf-8",
        )
        log = directory / "registry.log"
        with log.open("ab") as log_file:
            process = subprocess.Popen(
                ["docker-registry", "serve", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=directory,
                env={"PATH": os.environ.get("PATH", os.defpath), "GOMAXPROCS": "1"},
            )
        return Registry(
            host=host,
            address=address,
            htpasswd=htpasswd,
            process=process,
            password=password,
            username=username,
            config=config,
            log=log,
            realm=realm,
        )

    def _wait_ready(
        self, pending: dict[str, Registry], lines: Mapping[tuple[str, str], str]
    ) -> None:
        """Wait until every pending registry answers ``/v2/`` with its own realm.

        One that exits because its address is taken (a registry of another sandbox started
        in between) is moved to the next free address.
        """
        waiting = set(pending)
        timeout = START_TIMEOUT + 0.05 * len(pending)
        deadline = time.monotonic() + timeout
        while waiting:
            for host in sorted(waiting):
                registry = pending[host]
                if registry.process.poll() is not None:
                    reason = _tail(registry.log)
                    if "address already in use" not in reason:
                        raise SandboxError(
                            f"docker-registry for {host} on {registry.address} exited with "
                            f"status {registry.process.returncode}: {reason}"
                        )
                    pair = (registry.username, registry.password)
                    pending[host] = self._spawn(host, *pair, lines[pair])
                    continue
                try:
                    _, challenge = _get_v2(registry.address, registry.port, host, None, 0.5)
                except OSError:
                    continue
                if registry.realm in challenge:
                    waiting.discard(host)
            if waiting:
                if time.monotonic() > deadline:
                    raise SandboxError(
                        f"{len(waiting)} registries not ready after {timeout:.0f} s, e.g. "
                        + ", ".join(
                            f"{h} ({_tail(pending[h].log, 1)})" for h in sorted(waiting)[:3]
                        )
                    )
                time.sleep(0.01)

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run in a private mount namespace that sees :attr:`hosts_file` as /etc/hosts.

        The sandbox's resolv.conf (a dead loopback nameserver) is mounted over
        ``/etc/resolv.conf`` as well when the machine has one.
        """
        if not argv:
            raise ValueError("nothing to run")
        if Path("/etc/resolv.conf").exists():
            script = (
                'mount --bind "$0" /etc/hosts && mount --bind "$1" /etc/resolv.conf'
                ' && shift && exec "$@"'
            )
            files = [str(self.hosts_file), str(self.resolv_conf)]
        else:
            script = 'mount --bind "$0" /etc/hosts && exec "$@"'
            files = [str(self.hosts_file)]
        return [*_unshare_prefix(), "sh", "-c", script, *files, *argv]

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        input: str | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` through :meth:`wrap` with :meth:`env` (or ``env``); capture text output."""
        return subprocess.run(
            self.wrap(argv),
            env=dict(self.env() if env is None else env),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def run_tool(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        input: str | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """``python -m runas_async ARGS`` through :meth:`run`."""
        return self.run(
            [sys.executable, "-m", "runas_async", *args], env=env, input=input, timeout=timeout
        )

    def docker_login(
        self,
        host: str,
        password: str,
        *,
        username: str = "AWS",
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """``docker login HOST --username USER --password-stdin`` inside the namespace."""
        return self.run(
            ["docker", "login", host, "--username", username, "--password-stdin"],
            env=env,
            input=password + "\n",
        )


def _registry_config(*, address: str, realm: str, htpasswd: Path, storage: Path) -> str:
    # JSON strings are valid YAML double-quoted scalars.
    q = json.dumps
    return f"""\
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {q(str(storage))}
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: {q(f"{address}:{REGISTRY_PORT}")}
  secret: {q(secrets.token_hex(16))}
auth:
  htpasswd:
    realm: {q(realm)}
    path: {q(str(htpasswd))}
health:
  storagedriver:
    enabled: false
"""


def _write_ini(path: Path, sections: Mapping[str, Mapping[str, str]]) -> Path:
    lines: list[str] = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines.extend(f"{key} = {value}" for key, value in values.items())
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
