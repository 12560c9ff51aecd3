"""A TCP relay on loopback that counts connections, for tests/test_aws.py.

:class:`TcpRelay` listens on ``127.0.0.1`` and pipes every connection it accepts to one
upstream address in ``127.0.0.0/8`` (moto): what the client sees is moto, and the relay
knows how many TCP connections the client opened and how many it has closed again. Bytes
are relayed as they come, nothing is parsed or changed.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from types import TracebackType
from typing import Self

__all__ = ["TcpRelay"]

_CHUNK = 65536


class TcpRelay:
    """Relays ``127.0.0.1:<port>`` to ``upstream``; counts accepted and client-closed connections.

    Everything it opened is closed when the block ends.
    """

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        if not ipaddress.ip_address(upstream_host).is_loopback:
            raise ValueError(f"upstream {upstream_host} is not a loopback address")
        self._upstream = (upstream_host, upstream_port)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._accepted = 0
        self._closed = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    @property
    def accepted(self) -> int:
        """Connections accepted so far."""
        with self._lock:
            return self._accepted

    @property
    def closed(self) -> int:
        """Accepted connections that the client has closed since."""
        with self._lock:
            return self._closed

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(self._upstream, timeout=5)
            upstream.settimeout(None)
            with self._lock:
                self._accepted += 1
                self._sockets += [client, upstream]
            for source, sink, from_client in ((client, upstream, True), (upstream, client, False)):
                thread = threading.Thread(
                    target=self._pump, args=(source, sink, from_client), daemon=True
                )
                self._threads.append(thread)
                thread.start()

    def _pump(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        while True:
            try:
                data = source.recv(_CHUNK)
            except OSError:
                data = b""
            if not data:
                break
            try:
                sink.sendall(data)
            except OSError:
                break
        if from_client:
            with self._lock:
                self._closed += 1
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def __enter__(self) -> Self:
        thread = threading.Thread(target=self._serve, name="tcp-relay", daemon=True)
        self._threads.append(thread)
        thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._threads[0].join()
        self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        for thread in self._threads[1:]:
            thread.join(timeout=5)
