"""One loopback TCP core: listeners on 127.0.0.0/8 whose connections are piped or held.

The test servers (:class:`tests.relay.TcpRelay`, :class:`tests.faults.SilentServer`) and the
bench's latency proxy (:mod:`bench.latency`) are built on it and add only their own policy:
counting, holding, delaying. Standard library only, so that the latency proxy's own process
starts fast.

* :class:`LoopbackServer`: listeners on loopback addresses, each connection handed to a
  coroutine on an event loop in a thread of its own; leaving the block closes every listener
  and connection and joins the thread. The test servers are subclasses that add a handler.
* :func:`splice`: connects a client to a target and pipes bytes both ways until both
  directions are done; a failure resets the client.
* :func:`pump`: one direction; every chunk is delivered ``delay`` seconds after it was read
  (0: at once), and the end of the stream is passed on as a half-close.
* :func:`reset` and :func:`rst_on_close`: end a connection with RST instead of FIN.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Self

__all__ = [
    "Direction",
    "Handler",
    "LoopbackServer",
    "check_loopback",
    "pump",
    "reset",
    "rst_on_close",
    "splice",
]

CHUNK = 1 << 16
"""The most bytes read at once from either side."""

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Coroutine[Any, Any, None]]
"""Serves one accepted connection (the client's reader and writer)."""

Direction = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Coroutine[Any, Any, None]]
"""Copies one direction of a spliced connection, from a reader to the other side's writer."""


def check_loopback(host: str) -> None:
    """Raise ValueError unless ``host`` is an address in ``127.0.0.0/8`` (or ``::1``)."""
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"{host} is not a loopback address")


def rst_on_close(sock: socket.socket) -> None:
    """Make closing ``sock`` send RST, so that its peer sees "connection reset by peer"."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def reset(writer: asyncio.StreamWriter) -> None:
    """Abort the connection behind ``writer`` with RST."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            rst_on_close(sock)
    writer.transport.abort()


def half_close(writer: asyncio.StreamWriter) -> None:
    """Send EOF on ``writer``, if its transport can (errors ignored: the peer may be gone)."""
    if writer.can_write_eof():
        with contextlib.suppress(OSError):
            writer.write_eof()


async def pump(
    src: asyncio.StreamReader,
    dst: asyncio.StreamWriter,
    *,
    delay: float = 0.0,
    not_before: float = 0.0,
    first_read: Callable[[], None] | None = None,
    delivered: Callable[[], None] | None = None,
) -> None:
    """Copy ``src`` to ``dst``, each chunk delivered ``delay`` after it was read.

    The delay line is pipelined: chunks read back to back leave back to back. No chunk leaves
    before ``not_before`` (event-loop time) plus ``delay``. ``first_read`` is called once when
    the first bytes arrive, ``delivered`` whenever bytes were handed to ``dst``. The end of
    ``src`` (or an error reading it) becomes a half-close of ``dst``; an error writing to
    ``dst`` is raised.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    def due() -> float:
        return max(loop.time(), not_before) + delay

    async with asyncio.TaskGroup() as tg:
        tg.create_task(_pump_in(src, queue, due, first_read))
        tg.create_task(_pump_out(queue, dst, loop, delivered))


async def _pump_in(
    src: asyncio.StreamReader,
    queue: asyncio.Queue[tuple[float, bytes]],
    due: Callable[[], float],
    first_read: Callable[[], None] | None,
) -> None:
    """Each chunk of ``src`` queued with the time it is due; the end as an empty chunk."""
    while True:
        try:
            data = await src.read(CHUNK)
        except OSError:
            data = b""
        if data and first_read is not None:
            first_read()
            first_read = None
        queue.put_nowait((due(), data))
        if not data:
            return


async def _pump_out(
    queue: asyncio.Queue[tuple[float, bytes]],
    dst: asyncio.StreamWriter,
    loop: asyncio.AbstractEventLoop,
    delivered: Callable[[], None] | None,
) -> None:
    """Each queued chunk written to ``dst`` when it is due; the end as a half-close."""
    while True:
        when, data = await queue.get()
        wait = when - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        if not data:
            half_close(dst)
            return
        dst.write(data)
        if delivered is not None:
            delivered()
        await dst.drain()


async def splice(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    target: tuple[str, int],
    *,
    up: Direction = pump,
    down: Direction = pump,
) -> None:
    """Connect to ``target``; run ``up`` (client to target) and ``down`` (back) until both end.

    If the connect or either direction fails, the client is reset. The connection to the
    target is closed on return; the client's is left to the caller.
    """
    upstream: asyncio.StreamWriter | None = None
    try:
        up_reader, upstream = await asyncio.open_connection(*target)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(up(reader, upstream))
            tg.create_task(down(up_reader, writer))
    except (OSError, ExceptionGroup):
        reset(writer)
    finally:
        if upstream is not None:
            upstream.close()


class LoopbackServer:
    """Listeners on loopback addresses, served from an event loop in a thread of its own.

    :meth:`listen` binds at once, so the port is known before the block starts; the loop runs
    while the block does. Each accepted connection goes to its listener's handler, and the
    client is closed when the handler returns. Leaving the block closes the listeners, cancels
    the handlers still running, closes their connections and joins the thread.
    """

    def __init__(self, name: str = "loopback-server") -> None:
        self._name = name
        self._listeners: list[tuple[socket.socket, Handler, int, ssl.SSLContext | None]] = []
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._failed: BaseException | None = None

    def listen(
        self,
        host: str,
        port: int,
        handler: Handler,
        *,
        backlog: int = 100,
        tls: ssl.SSLContext | None = None,
    ) -> int:
        """Bind ``host:port`` (loopback only; port 0: any free one) for ``handler``; the port.

        ``tls``: the listener speaks TLS with this server context, and ``handler`` gets the
        plain text."""
        check_loopback(host)
        sock = socket.create_server((host, port), backlog=backlog)  # SO_REUSEADDR on POSIX
        self._listeners.append((sock, handler, backlog, tls))
        return int(sock.getsockname()[1])

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        # Each connection's handler runs in a task of its own under the one the server made,
        # so that stopping cancels the handler, never the server's task (cancelling that one
        # makes Python 3.11's asyncio log an error), and the client is still closed after it.
        running: dict[asyncio.Task[None], asyncio.Task[None]] = {}

        def connection(handler: Handler) -> Handler:
            async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                outer = asyncio.current_task()
                assert outer is not None  # a handler runs in a task
                inner = asyncio.create_task(handler(reader, writer))
                running[outer] = inner
                try:
                    await asyncio.wait({inner})
                finally:
                    writer.close()
                    with contextlib.suppress(OSError):
                        await writer.wait_closed()
                    del running[outer]
                if not inner.cancelled():
                    inner.result()  # a failed handler is reported by the event loop

            return handle

        servers: list[asyncio.Server] = []
        try:
            for sock, handler, backlog, tls in self._listeners:
                server = await asyncio.start_server(
                    connection(handler), sock=sock, backlog=backlog, ssl=tls
                )
                servers.append(server)
        except Exception as error:  # raised in the caller's thread
            self._failed = error
            return
        finally:
            self._ready.set()
        await self._stop.wait()
        for server in servers:
            server.close()
        await asyncio.sleep(0)  # connections accepted just now start their handlers
        while running:
            for inner in running.values():
                inner.cancel()
            await asyncio.wait(set(running))
        for server in servers:
            await server.wait_closed()

    def _close_listeners(self) -> None:
        for sock, *_ in self._listeners:
            sock.close()

    def __enter__(self) -> Self:
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._serve(),), name=self._name, daemon=True
        )
        self._thread.start()
        self._ready.wait()
        if self._failed is not None:
            self._thread.join()
            self._close_listeners()
            raise RuntimeError(f"{self._name} could not start") from self._failed
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join()
        self._close_listeners()
