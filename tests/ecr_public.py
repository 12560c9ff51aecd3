"""A stand-in for the ECR Public API (moto does not implement ``ecr-public``).

It speaks the JSON 1.1 protocol of ``SpencerFrontendService`` for the one
operation runas-async calls, ``GetAuthorizationToken``, and stays honest: a
request without that target, or without a SigV4 signature for ``ecr-public``
in us-east-1, gets the error the real service would give.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ECR_PUBLIC_PASSWORD = "ecr-public-auth-token"
TARGET = "SpencerFrontendService.GetAuthorizationToken"
_SCOPE = re.compile(r"^AWS4-HMAC-SHA256 Credential=([^/]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")


class _Handler(BaseHTTPRequestHandler):
    server: EcrPublicServer

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""

    def _answer(self, status: int, doc: dict[str, object]) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        target = self.headers.get("X-Amz-Target", "")
        scope = _SCOPE.match(self.headers.get("Authorization", ""))
        self.server.record(target, scope.group(1) if scope else "")
        if target != TARGET:
            self._answer(400, {"__type": "UnknownOperationException", "message": target})
            return
        if scope is None or scope.group(2) != "us-east-1" or scope.group(3) != "ecr-public":
            self._answer(
                403,
                {"__type": "InvalidSignatureException", "message": "no SigV4 for ecr-public"},
            )
            return
        token = base64.b64encode(f"AWS:{ECR_PUBLIC_PASSWORD}".encode()).decode()
        self._answer(
            200,
            {"authorizationData": {"authorizationToken": token, "expiresAt": time.time() + 43200}},
        )


class EcrPublicServer(ThreadingHTTPServer):
    """The stand-in on 127.0.0.1 and a free port; ``calls`` lists (target, access key)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.calls: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, name="ecr-public", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def record(self, target: str, access_key: str) -> None:
        with self._lock:
            self.calls.append((target, access_key))

    def close(self) -> None:
        self.shutdown()
        self._thread.join()
        self.server_close()
