"""Stand-in registries of the project's own, for what a real ``docker-registry`` cannot do.

Built on :class:`tests.pipe.LoopbackServer` with a minimal HTTP/1.1 reader, so that a
stand-in controls every byte it sends (an endless body, a stall after the headers) and
records every request it got (:attr:`StandIn.requests`, with the ``Authorization`` header).

* :class:`BearerRegistry`: a token endpoint in front of a registry, as ECR Public answers:
  ``/v2/`` asks for ``Bearer realm=...,service=...,scope=...``; ``GET /token`` with Basic
  credentials hands out a registry token that then opens ``/v2/``.
* :class:`HostileRegistry`: a registry that redirects ``/v2/`` to another host, sends an
  endless body, or stalls after its headers.
* :class:`StandIn` alone records requests and answers 200 (the "other host" of a redirect).

A TLS ClientHello (the client's HTTPS attempt) is answered with a plain-text 400 and the
connection closed, as a plain-HTTP registry does, so clients fall back to HTTP on loopback.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import threading
import urllib.parse
from dataclasses import dataclass

from tests.pipe import LoopbackServer

__all__ = ["BearerRegistry", "HostileRegistry", "Request", "StandIn"]

MAX_HEAD = 64 * 1024


@dataclass(frozen=True)
class Request:
    """One request a stand-in received."""

    method: str
    target: str
    host: str
    authorization: str

    @property
    def path(self) -> str:
        return urllib.parse.urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.target).query))


class StandIn(LoopbackServer):
    """Listens on ``address:port`` (port 0: a free one); records requests, answers 200."""

    def __init__(self, address: str, port: int = 0) -> None:
        super().__init__(type(self).__name__)
        self.address = address
        self._lock = threading.Lock()
        self._requests: list[Request] = []
        self.sent = 0
        """Bytes written to clients so far (all connections)."""
        self.port = self.listen(address, port, self._serve_connection)

    @property
    def netloc(self) -> str:
        return self.address if self.port == 80 else f"{self.address}:{self.port}"

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            first = await reader.readexactly(1)
        except (asyncio.IncompleteReadError, OSError):
            return
        if first == b"\x16":  # a TLS ClientHello: this is a plain-HTTP server
            await self._write(writer, b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
            return
        while True:
            try:
                head = first + await reader.readuntil(b"\r\n\r\n")
                first = b""
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
                return
            lines = head.decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            if len(parts) != 3 or not parts[2].startswith("HTTP/"):
                await self._write(writer, b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
                return
            headers = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    headers[name.strip().lower()] = value.strip()
            request = Request(
                parts[0], parts[1], headers.get("host", ""), headers.get("authorization", "")
            )
            with self._lock:
                self._requests.append(request)
            try:
                if not await self.answer(request, writer):
                    return
            except OSError:  # the client went away (as it should from an endless body)
                return

    async def _write(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        await writer.drain()
        with self._lock:
            self.sent += len(data)

    async def respond(
        self,
        writer: asyncio.StreamWriter,
        status: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> bool:
        """A complete response with ``Content-Length``; the connection stays open."""
        head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}"]
        head += [f"{name}: {value}" for name, value in (headers or {}).items()]
        await self._write(writer, ("\r\n".join(head) + "\r\n\r\n").encode() + body)
        return True

    async def answer(self, request: Request, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False closes the connection. Here: 200 ``{}``."""
        return await self.respond(writer, "200 OK", b"{}")


def _errors(code: str, message: str) -> bytes:
    return json.dumps({"errors": [{"code": code, "message": message, "detail": None}]}).encode()


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


class BearerRegistry(StandIn):
    """A registry behind a token endpoint, like ECR Public.

    ``/v2/`` without a token it issued answers 401 with ``WWW-Authenticate: Bearer
    realm="REALM",service="SERVICE",scope="aws"``; ``REALM`` is ``http://NETLOC/token``
    unless given. ``GET /token?service=...&scope=...`` with Basic ``username:password`` answers
    ``{"token": ...}``; wrong credentials get 401 with the endpoint's own message.
    """

    def __init__(
        self,
        address: str,
        port: int = 0,
        *,
        password: str,
        username: str = "AWS",
        realm: str | None = None,
        service: str = "stand-in.ecr.aws",
    ) -> None:
        super().__init__(address, port)
        self.credentials = _basic(username, password)
        self.realm = realm or f"http://{self.netloc}/token"
        self.service = service
        self.token = secrets.token_urlsafe(24)

    async def answer(self, request: Request, writer: asyncio.StreamWriter) -> bool:
        if request.path == "/token":
            if request.authorization != self.credentials:
                body = _errors("DENIED", "Your authorization token is invalid.")
                return await self.respond(writer, "401 Unauthorized", body)
            if request.query.get("service") != self.service:
                return await self.respond(writer, "400 Bad Request", _errors("UNSUPPORTED", "?"))
            return await self.respond(writer, "200 OK", json.dumps({"token": self.token}).encode())
        if request.path == "/v2/" and request.authorization == f"Bearer {self.token}":
            return await self.respond(writer, "200 OK", b"{}")
        challenge = f'Bearer realm="{self.realm}",service="{self.service}",scope="aws"'
        body = _errors("UNAUTHORIZED", "authentication required")
        return await self.respond(writer, "401 Unauthorized", body, {"WWW-Authenticate": challenge})


MODES = ("redirect", "redirect-first", "endless", "stall", "slow-error", "echo", "escapes")

ESCAPES_MESSAGE = "\x1b[2J\x1b[31mred\x1b[0m\x07 \u202eevil\u202c\r\nnext | line"
"""What :class:`HostileRegistry` in ``escapes`` mode says; as a reader should see it:
:data:`ESCAPES_SHOWN`."""
ESCAPES_SHOWN = "[2J[31mred[0m evil next | line"


class HostileRegistry(StandIn):
    """A registry that misbehaves after its Basic challenge (or at once), by ``mode``:

    * ``redirect``: ``/v2/`` with credentials is sent on to ``location`` (another host);
    * ``redirect-first``: ``/v2/`` is sent on to ``location`` before any challenge;
    * ``endless``: the 401 challenge comes with a body that never ends;
    * ``stall``: the 401 headers promise a body that never comes;
    * ``slow-error``: the 401's error document arrives in two pieces, 0.2 s apart;
    * ``echo``: the 401's error message quotes the Authorization header it got, and the
      password decoded from it;
    * ``escapes``: the 401's error message holds terminal escapes (clear screen, colour,
      BEL), a right-to-left override, new lines and a table's ``|``.
    """

    def __init__(self, address: str, port: int = 0, *, mode: str, location: str = "") -> None:
        if mode not in MODES:
            raise ValueError(mode)
        super().__init__(address, port)
        self.mode = mode
        self.location = location

    async def answer(self, request: Request, writer: asyncio.StreamWriter) -> bool:
        challenge = {"WWW-Authenticate": 'Basic realm="hostile"'}
        if self.mode == "redirect-first" or (self.mode == "redirect" and request.authorization):
            return await self.respond(
                writer, "307 Temporary Redirect", b"", {"Location": self.location}
            )
        if self.mode == "redirect":
            return await self.respond(writer, "401 Unauthorized", b"", challenge)
        head = 'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm="hostile"\r\n'
        if self.mode == "echo":
            sent = request.authorization.removeprefix("Basic ")
            decoded = base64.b64decode(sent).decode() if sent else ""
            body = _errors("UNAUTHORIZED", f"bad credentials {sent} ({decoded})")
            return await self.respond(writer, "401 Unauthorized", body, challenge)
        if self.mode == "escapes":
            body = _errors("UNAUTHORIZED", ESCAPES_MESSAGE)
            return await self.respond(writer, "401 Unauthorized", body, challenge)
        if self.mode == "slow-error":
            body = _errors("UNAUTHORIZED", "the hostile registry's own reason")
            await self._write(writer, f"{head}Content-Length: {len(body)}\r\n\r\n".encode())
            await self._write(writer, body[:20])
            await asyncio.sleep(0.2)
            await self._write(writer, body[20:])
            return True
        if self.mode == "stall":
            await self._write(writer, (head + "Content-Length: 1000\r\n\r\n").encode())
            await asyncio.Event().wait()  # until the stand-in closes
        await self._write(writer, (head + "Connection: close\r\n\r\n").encode())
        chunk = b'{"errors": [' * 4096
        while True:  # until the client goes away
            await self._write(writer, chunk)
            await asyncio.sleep(0)  # drain() need not yield: let the stand-in stop
