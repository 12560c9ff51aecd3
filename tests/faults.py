"""Fault injectors for tests/test_faults.py: things that go wrong for real, on loopback.

* :class:`ApiFaultProxy`: an HTTP proxy in front of moto that answers chosen AWS requests with
  a throttling error, a 5xx, or a reset connection, a given number of times (or forever), then
  passes them through; it records every request it saw. With ``expires_in`` it rewrites the
  ``expiresAt`` of ECR tokens (moto's is fixed in 2015) to that many seconds from now.
* :class:`SilentServer`: a TCP server that accepts connections and never answers.
* :func:`map_hosts`: extra lines in the sandbox's hosts file for the duration of a test.
* :class:`ProcWatcher`: samples ``/proc/*/cmdline`` (and each new process's environment)
  every few milliseconds while a run goes on.
* :func:`tool_pid`, :func:`descendants`, :func:`alive`: the process tree of a run.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.client
import http.server
import json
import os
import re
import signal
import socketserver
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from tests.pipe import LoopbackServer, rst_on_close
from tests.sandbox import BLOCK, Sandbox

__all__ = [
    "FAULTS",
    "ApiFaultProxy",
    "ProcWatcher",
    "Rule",
    "Running",
    "SilentServer",
    "alive",
    "descendants",
    "map_hosts",
    "silent_address",
    "tool",
    "tree_snapshot",
    "wait_until",
]

SILENT_NET = f"127.{BLOCK}.66."
"""Addresses for silent servers: in this run's block, far above its registries (.0.10 up)."""


def tool(*args: str) -> list[str]:
    """``python -m runas_async ARGS`` (to be passed through :meth:`Sandbox.wrap`)."""
    return [sys.executable, "-m", "runas_async", *args]


# --- an AWS API proxy that injects errors -------------------------------------------------

_JSON = "application/x-amz-json-1.1"

FAULTS: Mapping[str, tuple[int, str, str]] = {
    "throttle": (400, "ThrottlingException", "Rate exceeded"),
    "500": (500, "InternalServerException", "We encountered an internal error."),
    "503": (503, "ServiceUnavailableException", "Service unavailable"),
    "denied": (
        403,
        "AccessDenied",
        "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: sts:AssumeRole",
    ),
    "expired": (400, "ExpiredToken", "The security token included in the request is expired"),
}
"""HTTP status, error code and message of each error fault; ``"reset"`` is the other one.

Answered as the protocol of the request expects: a JSON ``__type`` for JSON services (ECR),
an XML ``ErrorResponse`` for query services (STS)."""

_SCOPE_RE = re.compile(r"Credential=[^/,\s]+/[^/]+/([^/]+)/([^/]+)/")


@dataclass
class Rule:
    """Answer ``times`` requests for ``operation`` (in ``region``, if given) with ``fault``.

    ``times=None`` means every such request, forever. ``delay`` seconds pass before each
    such answer (a slow service: what happens meanwhile can be seen).
    """

    operation: str
    fault: str
    times: int | None = 1
    region: str | None = None
    delay: float = 0.0

    def __post_init__(self) -> None:
        if self.fault not in (*FAULTS, "reset"):
            raise ValueError(f"unknown fault {self.fault!r}")


@dataclass(frozen=True)
class Seen:
    """One request the proxy received and what it did with it."""

    operation: str
    region: str
    action: str
    """``"pass"`` or the fault injected."""


@dataclass
class _State:
    upstream: tuple[str, int]
    rules: list[Rule]
    expires_in: float | None = None
    password: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    seen: list[Seen] = field(default_factory=list)

    def decide(self, operation: str, region: str) -> tuple[str, float]:
        with self.lock:
            action, delay = "pass", 0.0
            for rule in self.rules:
                if rule.operation != operation or rule.region not in (None, region):
                    continue
                if rule.times is None or rule.times > 0:
                    if rule.times is not None:
                        rule.times -= 1
                    action, delay = rule.fault, rule.delay
                    break
            self.seen.append(Seen(operation, region, action))
            return action, delay


def _operation(target: str, body: bytes) -> str:
    if target:
        return target.rpartition(".")[2]
    params = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
    return params.get("Action", ["?"])[0]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""

    def do_POST(self) -> None:
        self._handle()

    def do_GET(self) -> None:
        self._handle()

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        scope = _SCOPE_RE.search(self.headers.get("Authorization", ""))
        region = scope.group(1) if scope else ""
        state = self.server.state
        operation = _operation(self.headers.get("X-Amz-Target", ""), body)
        action, delay = state.decide(operation, region)
        time.sleep(delay)  # this request's own thread
        if action == "reset":
            # RST instead of FIN: the client sees "connection reset by peer".
            rst_on_close(self.connection)
            self.close_connection = True
            self.connection.close()
            return
        if action in FAULTS:
            status, kind, message = FAULTS[action]
            if self.headers.get("X-Amz-Target"):
                payload = f'{{"__type":"{kind}","message":"{message}"}}'.encode()
                self._reply(status, [("Content-Type", _JSON)], payload)
            else:
                payload = (
                    "<ErrorResponse><Error><Type>Sender</Type>"
                    f"<Code>{kind}</Code><Message>{message}</Message></Error>"
                    "<RequestId>fault</RequestId></ErrorResponse>"
                ).encode()
                self._reply(status, [("Content-Type", "text/xml")], payload)
            return
        upstream = http.client.HTTPConnection(*state.upstream, timeout=30)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            data = response.read()
            if operation == "GetAuthorizationToken" and state.expires_in is not None:
                data = _with_expiry(data, time.time() + state.expires_in)
            if operation == "GetAuthorizationToken" and state.password is not None:
                data = _with_password(data, state.password)
            skip = {"connection", "transfer-encoding", "content-length", "keep-alive"}
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in skip]
            self._reply(response.status, kept, data)
        finally:
            upstream.close()

    def _reply(self, status: int, headers: Sequence[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _with_expiry(data: bytes, expires_at: float) -> bytes:
    """A GetAuthorizationToken response with every ``expiresAt`` set to ``expires_at``."""
    doc = json.loads(data)
    entries = doc.get("authorizationData")
    for entry in entries if isinstance(entries, list) else [entries]:
        if isinstance(entry, dict):
            entry["expiresAt"] = expires_at
    return json.dumps(doc).encode()


def _with_password(data: bytes, password: str) -> bytes:
    """A GetAuthorizationToken response whose every token is ``AWS:password``."""
    doc = json.loads(data)
    token = base64.b64encode(f"AWS:{password}".encode()).decode()
    entries = doc.get("authorizationData")
    for entry in entries if isinstance(entries, list) else [entries]:
        if isinstance(entry, dict):
            entry["authorizationToken"] = token
    return json.dumps(doc).encode()


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    state: _State


class ApiFaultProxy:
    """A proxy on ``127.0.0.1`` in front of ``upstream`` (moto) that injects API faults.

    Point the tool's ``AWS_ENDPOINT_URL`` at :attr:`url`. Requests that no :class:`Rule`
    claims are forwarded unchanged.
    """

    def __init__(
        self,
        upstream: str,
        rules: Sequence[Rule] = (),
        *,
        expires_in: float | None = None,
        password: str | None = None,
    ) -> None:
        """``expires_in``: rewrite every token's ``expiresAt`` to that many seconds from now
        (moto's is fixed in 2015), as the real API's 12 hours; None leaves it. ``password``:
        every ECR token's password (a real one is about 2 KB, moto's a few characters)."""
        parsed = urllib.parse.urlsplit(upstream)
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.state = _State(
            upstream=(parsed.hostname or "127.0.0.1", parsed.port or 80),
            rules=list(rules),
            expires_in=expires_in,
            password=password,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._thread.join()
        self._server.server_close()

    def seen(self, operation: str | None = None, region: str | None = None) -> list[Seen]:
        """The requests received so far (of ``operation`` / in ``region`` only, when given)."""
        with self._server.state.lock:
            return [
                s
                for s in self._server.state.seen
                if operation in (None, s.operation) and region in (None, s.region)
            ]


# --- a server that accepts and never answers ------------------------------------------------


class SilentServer(LoopbackServer):
    """Listens on ``address`` at ``ports``, accepts every connection and never sends a byte.

    Held connections are closed when the block ends.
    """

    def __init__(self, address: str, ports: Sequence[int] = (80, 443)) -> None:
        self.address = address
        self._lock = threading.Lock()
        self._accepted = 0
        super().__init__("silent-server")
        for port in ports:
            self.listen(address, port, self._hold, backlog=64)

    @property
    def accepted(self) -> int:
        """How many connections were accepted so far."""
        with self._lock:
            return self._accepted

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with self._lock:
            self._accepted += 1
        await asyncio.Event().wait()  # until the block ends


@contextlib.contextmanager
def map_hosts(sb: Sandbox, mapping: Mapping[str, str]) -> Iterator[None]:
    """``host -> address`` lines in the sandbox's hosts file while the block runs.

    The file is changed in place (same inode), as the sandbox itself does, so namespaces that
    have it mounted see the change; the lines are taken out again afterwards.
    """
    lines = [f"{address}\t{host}\n" for host, address in mapping.items()]
    with sb.hosts_file.open("a", encoding="utf-8") as hosts:
        hosts.writelines(lines)
    try:
        yield
    finally:
        with sb.hosts_file.open("r+", encoding="utf-8") as hosts:
            kept = [line for line in hosts.readlines() if line not in lines]
            hosts.seek(0)
            hosts.writelines(kept)
            hosts.truncate()


def silent_address(n: int) -> str:
    """The ``n``-th address for a :class:`SilentServer` (1-based)."""
    if not 0 < n < 255:
        raise ValueError(n)
    return f"{SILENT_NET}{n}"


# --- processes ------------------------------------------------------------------------------


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def _state(pid: int) -> str | None:
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    return stat.rpartition(b")")[2].split()[0].decode()


def alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (a dead child nobody reaped yet)."""
    return _state(pid) not in (None, "Z", "X")


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid``."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            children = _read(f"/proc/{parent}/task/{task}/children") or b""
            for child in children.split():
                if int(child) not in found:
                    found.add(int(child))
                    todo.append(int(child))
    return {p for p in found if alive(p)}


def cmdline(pid: int) -> list[str]:
    """The argv of ``pid`` ([] when it is gone)."""
    raw = _read(f"/proc/{pid}/cmdline") or b""
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0")[:-1]]


def tree_snapshot(pid: int) -> dict[int, list[str]]:
    """``pid`` and its live descendants with their argv."""
    return {p: cmdline(p) for p in {pid, *descendants(pid)} if alive(p)}


class ProcWatcher:
    """Samples every process's argv (and each new process's environment) in a thread.

    While the block runs, ``/proc/*/cmdline`` of every process is read every ``interval``
    seconds; :attr:`argvs` collects each distinct (pid, argv) seen, :attr:`environs` the
    environment of each, read once.
    """

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.argvs: dict[tuple[int, bytes], bytes] = {}
        self.environs: dict[tuple[int, bytes], bytes] = {}
        self.passes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._own = os.getpid()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)
        self.sample()

    def sample(self) -> None:
        """One pass over /proc."""
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == self._own:
                continue
            raw = _read(f"/proc/{name}/cmdline")
            if not raw:
                continue
            key = (int(name), raw)
            if key not in self.argvs:
                self.argvs[key] = raw
                self.environs[key] = _read(f"/proc/{name}/environ") or b""
        self.passes += 1

    def argv_lists(self) -> list[list[str]]:
        """Every distinct argv seen, decoded."""
        return [
            [p.decode("utf-8", "replace") for p in raw.split(b"\0")[:-1]]
            for raw in self.argvs.values()
        ]

    def docker_logins(self, env_marker: str) -> dict[int, list[str]]:
        """pid -> argv of every ``docker login`` seen whose environment holds ``env_marker``.

        The marker (say ``TMPDIR=/unique/path``) tells the run's own children from other
        processes on the machine.
        """
        found: dict[int, list[str]] = {}
        for (pid, raw), environ in self.environs.items():
            argv = [p.decode("utf-8", "replace") for p in raw.split(b"\0")[:-1]]
            if (
                len(argv) > 1
                and os.path.basename(argv[0]) == "docker"
                and argv[1] == "login"
                and env_marker.encode() in environ.split(b"\0")
            ):
                found[pid] = argv
        return found

    def blobs(self, env_marker: str) -> list[bytes]:
        """Every argv seen, and the environment of each process that has ``env_marker``.

        Other processes' environments are left out: they may hold keys of their own.
        """
        marker = env_marker.encode()
        return [
            *self.argvs.values(),
            *(env for env in self.environs.values() if marker in env.split(b"\0")),
        ]

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.01) -> bool:
    """Poll ``predicate()`` until it is true or ``timeout`` passes; whether it became true."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return bool(predicate())
        time.sleep(interval)


class Running:
    """The tool started in the background (its own session, so a "Ctrl-C" can hit the group).

    stdout and stderr are collected by threads; :meth:`lines` is what was printed so far.
    Leaving the block kills whatever is still running.
    """

    def __init__(self, argv: Sequence[str], env: Mapping[str, str]) -> None:
        self.process = subprocess.Popen(
            list(argv),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.pid = self.process.pid
        self._out: list[str] = []
        self._err: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(stream, sink), daemon=True)
            for stream, sink in ((self.process.stdout, self._out), (self.process.stderr, self._err))
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: object, sink: list[str]) -> None:
        # One line at a time, so that lines() sees them while the tool still runs.
        for line in stream:  # type: ignore[attr-defined]
            sink.append(line)  # noqa: PERF402

    def lines(self) -> list[str]:
        """stdout lines printed so far."""
        return list(self._out)

    def wait(self, timeout: float) -> int:
        """Wait for the exit; its return code (negative: killed by that signal)."""
        code = self.process.wait(timeout)
        for reader in self._readers:
            reader.join(5)
        return code

    @property
    def stdout(self) -> str:
        return "".join(self._out)

    @property
    def stderr(self) -> str:
        return "".join(self._err)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
