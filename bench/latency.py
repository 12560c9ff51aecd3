"""A latency proxy: TCP forwarders that delay every byte by a fixed one-way delay.

``tc netem`` is not available on this machine, so the network is simulated in user space.
Each listener accepts on a loopback address and forwards to a target, and every chunk read
from either side is delivered to the other side ``delay`` seconds after it arrived. The
delay line is pipelined: chunks that arrive back to back leave back to back, each ``delay``
later, so a request written in two pieces (headers, then body) still costs one trip, as on a
real wire.

Connection set-up is modelled too, since a command-line tool opens fresh connections and a
real network charges for them: the client's first bytes reach the target no sooner than
one round trip (``2 * delay``, the TCP handshake) after the connection was accepted, plus
their own trip. A connection opened ahead (at start-up) has that round trip behind it by
the time it is used, as on a real network.

TLS is real, not modelled: a listener with ``tls`` terminates TLS *behind* its delay line
(the proxy's own certificate, in front of a plain-HTTP target such as moto), so the
client's ClientHello, the server's answer and the request all flow through the delay line
and every handshake costs its real round trips, whenever the client starts it: when aiohttp
adopts a socket opened at start-up, or warms a connection while credentials resolve. (Until
issue 21 the proxy charged a simulated TLS round trip from the accept, which a connection
opened at start-up hid completely.)

A listener without a target stands for a port that refuses: it accepts, waits one round
trip and then resets the connection, which is what a refused connection costs on a real
network (loopback refuses instantly).

The accepting and piping are :mod:`tests.pipe`'s (the one loopback core of the test servers);
this module adds the delay, the handshake time and the event log.

Run as a separate process (``python -m bench.latency``) so that its timers do not share a
GIL with moto's server thread. The specification comes as one JSON document on stdin; when
every listener is bound it prints one JSON line ``{"ports": {name: port}}``; it stops when
its stdin is closed. It appends one line per connection event to the ``events`` file:
``open|sent|reply|down|close NAME MONOTONIC CONNECTION`` (CLOCK_MONOTONIC, comparable with
``time.monotonic()`` in any process of this machine; ``sent``: when the client sent its first
request on a connection, its first bytes, or on a TLS listener its first request after the
handshake; ``down``: bytes from the server handed to the client, so on a plain listener the
last ``down`` of a connection is when its client got the response; on a TLS listener, where
``down`` also counts handshake and closing records, ``reply``: when the client got the first
response of the connection, numbered as its ``sent``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import ssl
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from tests.pipe import LoopbackServer, pump, reset, splice

__all__ = ["Event", "Listener", "ProxyProcess", "read_events"]


@dataclass(frozen=True)
class Listener:
    """One forwarding port of the proxy."""

    name: str
    listen: tuple[str, int]
    """Address and port to accept on (port 0: any free port)."""
    target: tuple[str, int] | None
    """Where to forward; None: reset every connection after one round trip."""
    tls: bool = False
    """Terminate TLS behind the delay line (the spec's certificate), before ``target``."""


@dataclass(frozen=True)
class Event:
    kind: str
    """``open`` (accepted), ``down`` (bytes handed to the client), ``close``."""
    name: str
    time: float
    connection: int


def read_events(path: Path, since: float = 0.0, until: float = float("inf")) -> list[Event]:
    """The events of the log at ``path`` with ``since <= time <= until``, oldest first."""
    events: list[Event] = []
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return events
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 4:
            continue
        event = Event(kind=parts[0], name=parts[1], time=float(parts[2]), connection=int(parts[3]))
        if since <= event.time <= until:
            events.append(event)
    events.sort(key=lambda e: e.time)
    return events


class ProxyProcess:
    """The proxy as a child process; a context manager that stops it on exit."""

    def __init__(
        self,
        delay: float,
        listeners: Sequence[Listener],
        events: Path,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        """``tls``: certificate and key files for the listeners with ``tls``."""
        self.delay = delay
        self.events = events
        self.tls = tls
        self.listeners = list(listeners)
        self.ports: dict[str, int] = {}
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> Self:
        spec = {
            "delay": self.delay,
            "events": str(self.events),
            "tls": [str(path) for path in self.tls] if self.tls else None,
            "listeners": [
                {
                    "name": lst.name,
                    "listen": list(lst.listen),
                    "target": list(lst.target) if lst.target else None,
                    "tls": lst.tls,
                }
                for lst in self.listeners
            ],
        }
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.latency"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None and stdout is not None  # noqa: S101 - PIPE was asked for
        stdin.write(json.dumps(spec) + "\n")
        stdin.flush()
        line = stdout.readline()
        if not line:
            self.__exit__(None, None, None)
            raise RuntimeError("the latency proxy exited before it was ready (see stderr)")
        self.ports = {str(k): int(v) for k, v in json.loads(line)["ports"].items()}
        return self

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


# --- the proxy itself (runs in the child process) ------------------------------------------


class _Log:
    def __init__(self, path: Path) -> None:
        self._file: IO[str] = path.open("a", encoding="utf-8", buffering=1)
        self._count = 0

    def connection(self) -> int:
        self._count += 1
        return self._count

    def write(self, kind: str, name: str, connection: int, ago: float = 0.0) -> None:
        """One event, ``ago`` seconds before now."""
        self._file.write(f"{kind} {name} {time.monotonic() - ago:.6f} {connection}\n")


async def _serve_connection(
    listener: Listener,
    target: tuple[str, int] | None,
    delay: float,
    log: _Log,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    accepted = asyncio.get_running_loop().time()
    connection = log.connection()
    log.write("open", listener.name, connection)
    round_trip = 2 * delay
    try:
        if target is None:
            await asyncio.sleep(round_trip)
            reset(writer)
            return
        sent = None if listener.tls else lambda: log.write("sent", listener.name, connection)
        await splice(
            reader,
            writer,
            target,
            up=functools.partial(
                pump, delay=delay, not_before=accepted + round_trip, first_read=sent
            ),
            down=functools.partial(
                pump, delay=delay, delivered=lambda: log.write("down", listener.name, connection)
            ),
        )
    finally:
        log.write("close", listener.name, connection)


async def _terminate(
    listener: Listener,
    delay: float,
    log: _Log,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    """TLS done (by the server), the plain text on to the target; no delay here. The first
    request is logged as ``sent`` when the client sent it: one trip of the delay line ago;
    the first response as ``reply`` when the client will have it: one trip from now."""
    assert listener.target is not None  # noqa: S101 - only listeners with a target terminate
    connection = log.connection()
    sent = functools.partial(log.write, "sent", listener.name, connection, delay)
    replied = functools.partial(log.write, "reply", listener.name, connection, -delay)
    await splice(
        reader,
        writer,
        listener.target,
        up=functools.partial(pump, first_read=sent),
        down=functools.partial(pump, first_read=replied),
    )


def _server_context(tls: list[str] | None) -> ssl.SSLContext | None:
    if not tls:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls[0], tls[1])
    return context


def main() -> None:
    spec: dict[str, Any] = json.loads(sys.stdin.readline())
    delay = float(spec["delay"])
    log = _Log(Path(spec["events"]))
    server = LoopbackServer("latency-proxy")
    ports: dict[str, int] = {}
    context = _server_context(spec.get("tls"))
    for item in spec["listeners"]:
        listener = Listener(
            name=str(item["name"]),
            listen=(str(item["listen"][0]), int(item["listen"][1])),
            target=(str(item["target"][0]), int(item["target"][1])) if item["target"] else None,
            tls=bool(item["tls"]),
        )
        target = listener.target
        if listener.tls and target is not None:
            if context is None:
                raise SystemExit(f"listener {listener.name} wants TLS: no certificate given")
            terminate = functools.partial(_terminate, listener, delay, log)
            target = ("127.0.0.1", server.listen("127.0.0.1", 0, terminate, tls=context))
        handler = functools.partial(_serve_connection, listener, target, delay, log)
        ports[listener.name] = server.listen(*listener.listen, handler, backlog=512)
    with server:
        sys.stdout.write(json.dumps({"ports": ports}) + "\n")
        sys.stdout.flush()
        sys.stdin.read()  # run until the parent closes our stdin


if __name__ == "__main__":
    main()
