"""A TCP relay on loopback that counts connections, for tests/test_aws.py.

:class:`TcpRelay` listens on ``127.0.0.1`` and pipes every connection it accepts to one
upstream address in ``127.0.0.0/8`` (moto): what the client sees is moto, and the relay
knows how many TCP connections the client opened and how many it has closed again. Bytes
are relayed as they come, nothing is parsed or changed. The piping is :mod:`tests.pipe`'s;
the counting is all that is added here.

With ``tls`` (a server context, see :func:`tls_server`) the relay terminates TLS in front of
moto, as AWS's endpoints speak it: ``accepted`` then counts completed handshakes, and
``sent`` the connections that carried a request afterwards.
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import threading
from pathlib import Path

from tests.pipe import LoopbackServer, check_loopback, pump, splice

__all__ = ["TcpRelay", "tls_certificate", "tls_server"]


def tls_certificate(directory: Path, *addresses: str) -> Path:
    """A self-signed certificate (and its key, beside it) valid for ``localhost`` and each
    of ``addresses``; the certificate's path, which is also a CA bundle that trusts it."""
    cert, key = directory / "tls.crt", directory / "tls.key"
    names = ",".join(["DNS:localhost", *(f"IP:{a}" for a in addresses)])
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
        + ["-nodes", "-days", "2", "-subj", "/CN=runas-async test", "-addext"]
        + [f"subjectAltName={names}", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert


def tls_server(cert: Path) -> ssl.SSLContext:
    """A server context for the certificate of :func:`tls_certificate`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, cert.with_suffix(".key"))
    return context


class TcpRelay(LoopbackServer):
    """Relays ``127.0.0.1:<port>`` to ``upstream``; counts accepted and client-closed connections.

    Everything it opened is closed when the block ends.
    """

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        *,
        host: str = "127.0.0.1",
        tls: ssl.SSLContext | None = None,
    ) -> None:
        check_loopback(upstream_host)
        self._upstream = (upstream_host, upstream_port)
        self._lock = threading.Lock()
        self._accepted = 0
        self._closed = 0
        self._sent = 0
        super().__init__("tcp-relay")
        self.host = host
        self.port: int = self.listen(host, 0, self._relay, tls=tls)
        self.url = f"{'https' if tls else 'http'}://{host}:{self.port}"

    @property
    def accepted(self) -> int:
        """Connections accepted so far."""
        with self._lock:
            return self._accepted

    @property
    def sent(self) -> int:
        """Accepted connections on which the client has sent something (on TLS: after the
        handshake, a request)."""
        with self._lock:
            return self._sent

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
            await pump(client, upstream, first_read=self._first_read)
        finally:
            with self._lock:
                self._closed += 1

    def _first_read(self) -> None:
        with self._lock:
            self._sent += 1
