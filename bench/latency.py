"""A latency proxy: TCP forwarders that delay every byte by a fixed one-way delay.

``tc netem`` is not available on this machine, so the network is simulated in user space.
Each listener accepts on a loopback address and forwards to a target, and every chunk read
from either side is delivered to the other side ``delay`` seconds after it arrived. The
delay line is pipelined: chunks that arrive back to back leave back to back, each ``delay``
later, so a request written in two pieces (headers, then body) still costs one trip, as on a
real wire.

Connection set-up is modelled too, since a command-line tool opens fresh connections and a
real network charges for them: a listener with ``handshake_rtts = k`` holds the client's
first bytes until ``k`` round trips (``2 * k * delay``) after the connection was accepted,
as a TCP handshake (k = 1) or a TCP plus TLS 1.3 handshake (k = 2) would. A listener
without a target stands for a port that refuses: it accepts, waits ``k`` round trips and
then resets the connection, which is what a refused connection costs on a real network
(loopback refuses instantly).

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
import json
import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

__all__ = ["Event", "Listener", "ProxyProcess", "read_events"]

_CHUNK = 1 << 16


@dataclass(frozen=True)
class Listener:
    """One forwarding port of the proxy."""

    name: str
    listen: tuple[str, int]
    """Address and port to accept on (port 0: any free port)."""
    target: tuple[str, int] | None
    """Where to forward; None: reset every connection after the handshake time."""
    handshake_rtts: int = 1
    """Round trips the client waits before its first byte reaches the target."""


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


async def _delay_line(
    src: asyncio.StreamReader,
    dst: asyncio.StreamWriter,
    delay: float,
    not_before: float,
    delivered: Callable[[], None] | None = None,
    first_read: Callable[[], None] | None = None,
) -> None:
    """Copy ``src`` to ``dst``, each chunk delivered ``delay`` after it was read."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def pump_in() -> None:
        nonlocal first_read
        while True:
            try:
                data = await src.read(_CHUNK)
            except OSError:
                data = b""
            if data and first_read is not None:
                first_read()
                first_read = None
            queue.put_nowait((max(loop.time(), not_before) + delay, data))
            if not data:
                return

    async def pump_out() -> None:
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                if dst.can_write_eof():
                    with contextlib.suppress(OSError):
                        dst.write_eof()
                return
            dst.write(data)
            if delivered is not None:
                delivered()
            await dst.drain()

    async with asyncio.TaskGroup() as tg:
        tg.create_task(pump_in())
        tg.create_task(pump_out())


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _serve_connection(
    listener: Listener,
    delay: float,
    log: _Log,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    loop = asyncio.get_running_loop()
    accepted = loop.time()
    connection = log.connection()
    log.write("open", listener.name, connection)
    handshake = 2 * delay * listener.handshake_rtts
    upstream: asyncio.StreamWriter | None = None
    try:
        if listener.target is None:
            await asyncio.sleep(handshake)
            _reset(writer)
            return
        up_reader, upstream = await asyncio.open_connection(*listener.target)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(
                _delay_line(
                    reader,
                    upstream,
                    delay,
                    accepted + handshake,
                    first_read=lambda: log.write("sent", listener.name, connection),
                )
            )
            tg.create_task(
                _delay_line(
                    up_reader,
                    writer,
                    delay,
                    0.0,
                    lambda: log.write("down", listener.name, connection),
                )
            )
    except (OSError, ExceptionGroup):
        _reset(writer)
    finally:
        log.write("close", listener.name, connection)
        for w in (writer, upstream):
            if w is not None:
                w.close()


async def _main(spec: dict[str, Any]) -> None:
    delay = float(spec["delay"])
    log = _Log(Path(spec["events"]))
    listeners = [
        Listener(
            name=str(item["name"]),
            listen=(str(item["listen"][0]), int(item["listen"][1])),
            target=(str(item["target"][0]), int(item["target"][1])) if item["target"] else None,
            handshake_rtts=int(item["handshake_rtts"]),
        )
        for item in spec["listeners"]
    ]
    servers: list[asyncio.Server] = []
    ports: dict[str, int] = {}
    for listener in listeners:

        async def handle(
            reader: asyncio.StreamReader,
            writer: asyncio.StreamWriter,
            listener: Listener = listener,
        ) -> None:
            await _serve_connection(listener, delay, log, reader, writer)

        server = await asyncio.start_server(
            handle, *listener.listen, reuse_address=True, backlog=512
        )
        servers.append(server)
        ports[listener.name] = int(server.sockets[0].getsockname()[1])
    sys.stdout.write(json.dumps({"ports": ports}) + "\n")
    sys.stdout.flush()
    loop = asyncio.get_running_loop()
    # Run until the parent closes our stdin.
    await loop.run_in_executor(None, sys.stdin.read)
    for server in servers:
        server.close()
    # Connections still open belong to clients that are gone; no need to wind them down.
    os._exit(0)


def main() -> None:
    spec = json.loads(sys.stdin.readline())
    asyncio.run(_main(spec))


if __name__ == "__main__":
    main()
