"""A latency proxy: TCP forwarders that delay every byte by a fixed one-way delay.

``tc netem`` is not available on this machine, so the network is simulated in user space.
Each listener accepts on a loopback address and forwards to a target, and every chunk read
from either side is delivered to the other side ``delay`` seconds after it arrived. The
delay line is pipelined: chunks that arrive back to back leave back to back, each ``delay``
later, so a request written in two pieces (headers, then body) still costs one trip, as on a
real wire.

Connection set-up is modelled too, since a command-line tool opens fresh connections and a
real network charges for them, each handshake from the moment it really starts:

* TCP (every listener): the client's first bytes reach the target no sooner than one round
  trip (``2 * delay``) after the connection was accepted, plus the trip of the bytes
  themselves. A connection opened ahead (at start-up) has its TCP round trip behind it by
  the time it is used, as on a real network.
* TLS 1.3 (``handshake_rtts = 2``: TCP plus TLS): one more round trip, counted from the
  client's first bytes, not from the accept, because a TLS handshake starts only when the
  client sends its ClientHello, that is when aiohttp adopts the socket and sends. The
  servers behind the proxy speak plain HTTP; their first request stands for the
  ClientHello. So a connection opened at start-up but used later still pays for TLS then,
  as it would on a real network (the earlier model charged TLS from the accept too, which
  hid it behind a start-up connection).

A listener without a target stands for a port that refuses: it accepts, waits one round
trip (SYN, then RST) and then resets the connection, which is what a refused connection
costs on a real network (loopback refuses instantly).

The accepting and piping are :mod:`tests.pipe`'s (the one loopback core of the test servers);
this module adds the delay, the handshake time and the event log.

Run as a separate process (``python -m bench.latency``) so that its timers do not share a
GIL with moto's server thread. The specification comes as one JSON document on stdin; when
every listener is bound it prints one JSON line ``{"ports": {name: port}}``; it stops when
its stdin is closed. It appends one line per connection event to the ``events`` file:
``open|down|close NAME MONOTONIC CONNECTION`` (CLOCK_MONOTONIC, comparable with
``time.monotonic()`` in any process of this machine; ``down``: bytes from the server handed
to the client, so the last ``down`` of a connection is when its client got the response).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
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
    """Where to forward; None: reset every connection after the handshake time."""
    handshake_rtts: int = 1
    """1: plain TCP (one round trip from the accept); 2: TCP then TLS 1.3 (one more round
    trip from the client's first bytes)."""


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

    def __init__(self, delay: float, listeners: Sequence[Listener], events: Path) -> None:
        self.delay = delay
        self.events = events
        self.listeners = list(listeners)
        self.ports: dict[str, int] = {}
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> Self:
        spec = {
            "delay": self.delay,
            "events": str(self.events),
            "listeners": [
                {
                    "name": lst.name,
                    "listen": list(lst.listen),
                    "target": list(lst.target) if lst.target else None,
                    "handshake_rtts": lst.handshake_rtts,
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

    def write(self, kind: str, name: str, connection: int) -> None:
        self._file.write(f"{kind} {name} {time.monotonic():.6f} {connection}\n")


async def _serve_connection(
    listener: Listener,
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
        if listener.target is None:
            await asyncio.sleep(round_trip)
            reset(writer)
            return
        await splice(
            reader,
            writer,
            listener.target,
            up=functools.partial(
                pump,
                delay=delay,
                not_before=accepted + round_trip,
                first_wait=round_trip * (listener.handshake_rtts - 1),
                first_read=lambda: log.write("sent", listener.name, connection),
            ),
            down=functools.partial(
                pump, delay=delay, delivered=lambda: log.write("down", listener.name, connection)
            ),
        )
    finally:
        log.write("close", listener.name, connection)


def main() -> None:
    spec: dict[str, Any] = json.loads(sys.stdin.readline())
    delay = float(spec["delay"])
    log = _Log(Path(spec["events"]))
    server = LoopbackServer("latency-proxy")
    ports: dict[str, int] = {}
    for item in spec["listeners"]:
        listener = Listener(
            name=str(item["name"]),
            listen=(str(item["listen"][0]), int(item["listen"][1])),
            target=(str(item["target"][0]), int(item["target"][1])) if item["target"] else None,
            handshake_rtts=int(item["handshake_rtts"]),
        )
        handler = functools.partial(_serve_connection, listener, delay, log)
        ports[listener.name] = server.listen(*listener.listen, handler, backlog=512)
    with server:
        sys.stdout.write(json.dumps({"ports": ports}) + "\n")
        sys.stdout.flush()
        sys.stdin.read()  # run until the parent closes our stdin


if __name__ == "__main__":
    main()
