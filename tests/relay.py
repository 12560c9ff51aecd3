"""A TCP relay on loopback that counts connections, for tests/test_aws.py.

:class:`TcpRelay` listens on ``127.0.0.1`` and pipes every connection it accepts to one
upstream address in ``127.0.0.0/8`` (moto): what the client sees is moto, and the relay
knows how many TCP connections the client opened and how many it has closed again. Bytes
are relayed as they come, nothing is parsed or changed. The piping is :mod:`tests.pipe`'s;
the counting is all that is added here.
"""

from __future__ import annotations

import asyncio
import threading

from tests.pipe import LoopbackServer, check_loopback, pump, splice

__all__ = ["TcpRelay"]


class TcpRelay(LoopbackServer):
    """Relays ``127.0.0.1:<port>`` to ``upstream``; counts accepted and client-closed connections.

    Everything it opened is closed when the block ends.
    """

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        check_loopback(upstream_host)
        self._upstream = (upstream_host, upstream_port)
        self._lock = threading.Lock()
        self._accepted = 0
        self._closed = 0
        super().__init__("tcp-relay")
        self.port: int = self.listen("127.0.0.1", 0, self._relay)
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

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with self._lock:
            self._accepted += 1
        await splice(reader, writer, self._upstream, up=self._up)

    async def _up(self, client: asyncio.StreamReader, upstream: asyncio.StreamWriter) -> None:
        """The client's bytes to upstream; its end (or a failure) counts as closed."""
        try:
            await pump(client, upstream)
        finally:
            with self._lock:
                self._closed += 1
