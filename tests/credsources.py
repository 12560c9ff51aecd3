"""Loopback stand-ins for the credential sources of CI runners and laptops.

One small HTTP server on 127.0.0.1 plays three parts, each the way botocore talks to it
(see /work/shared/HARNESS.md):

* the **container credentials endpoint** (ECS, CodeBuild): ``GET /container/creds``,
  found through ``AWS_CONTAINER_CREDENTIALS_FULL_URI``; as **EKS Pod Identity**'s agent,
  ``GET /v1/credentials`` on 169.254.170.23, with the token of
  ``AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`` as its ``Authorization`` header (each header
  it was sent is kept: :attr:`CredentialSources.authorizations`);
* **instance metadata, IMDSv2** (an EC2 runner): ``PUT /latest/api/token``, then
  ``/latest/meta-data/iam/security-credentials/[ROLE]`` with that token, found through
  ``AWS_EC2_METADATA_SERVICE_ENDPOINT``;
* the **SSO portal**: ``GET /federation/credentials`` (GetRoleCredentials) with the bearer
  token of ``~/.aws/sso/cache``, found through ``AWS_ENDPOINT_URL_SSO``;
* the **sign-in service** of ``aws login``: ``POST /v1/token`` (CreateOAuth2Token, the
  refresh of an expired login), found through ``AWS_ENDPOINT_URL_SIGNIN``; it answers as for
  a login whose refresh token has expired too (AccessDenied, ``TOKEN_EXPIRED``).

Each hands out its own access key id (:data:`KEYS`), so moto's call log shows which source
signed a request. moto accepts any key (static keys belong to account 123456789012).
"""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import urllib.parse
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Self

KEYS = {
    "container": "ASIACONTAINER0000001",
    "imds": "ASIAINSTANCEROLE0001",
    "sso": "ASIASSOPORTAL0000001",
    "process": "ASIAPROCESS000000001",
    "pod": "ASIAPODIDENTITY00001",
    "login": "ASIAAWSLOGIN00000001",
}
"""The access key id each source hands out."""

IMDS_ROLE = "runner-role"
SSO_TOKEN = "sso-bearer-token-for-tests"
SSO_ACCOUNT = "123456789012"
SSO_ROLE = "ReadOnly"


def _later(hours: float = 1) -> datetime:
    return datetime.now(UTC) + timedelta(hours=hours)


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_PUT(self) -> None:
        self.server.log(self)
        if self.path == "/latest/api/token":
            self._reply(200, b"imds-session-token", "text/plain")
        else:
            self._reply(404, b"")

    def do_POST(self) -> None:
        self.server.log(self)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if urllib.parse.urlsplit(self.path).path == "/v1/token":
            body = {"error": "TOKEN_EXPIRED", "message": "the refresh token has expired"}
            self.send_response(400)
            self.send_header("x-amzn-errortype", "AccessDeniedException")
            data = json.dumps(body).encode()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        else:
            self._reply(404, b"")

    def do_GET(self) -> None:
        self.server.log(self)
        path = urllib.parse.urlsplit(self.path).path
        if path == "/container/creds":
            self._json(self._creds("container", "Token"))
        elif path == "/v1/credentials":
            self._json(self._creds("pod", "Token"))
        elif path.startswith("/latest/meta-data/iam/security-credentials/"):
            self._imds(path.rsplit("/", 1)[-1])
        elif path == "/federation/credentials":
            self._sso()
        else:
            self._reply(404, b"")

    def _creds(self, source: str, token_key: str) -> dict[str, str]:
        return {
            "AccessKeyId": KEYS[source],
            "SecretAccessKey": f"{source}-secret",
            token_key: f"{source}-session-token",
            "Expiration": _iso(_later()),
        }

    def _imds(self, role: str) -> None:
        if self.headers.get("X-aws-ec2-metadata-token") != "imds-session-token":
            self._reply(401, b"")
        elif not role:
            self._reply(200, IMDS_ROLE.encode(), "text/plain")
        elif role == IMDS_ROLE:
            body = {"Code": "Success", "Type": "AWS-HMAC", **self._creds("imds", "Token")}
            self._json(body)
        else:
            self._reply(404, b"")

    def _sso(self) -> None:
        if self.headers.get("x-amz-sso_bearer_token") != SSO_TOKEN:
            self._json({"message": "Session token not found or invalid"}, 401)
            return
        expires = int(_later().timestamp() * 1000)
        self._json(
            {
                "roleCredentials": {
                    "accessKeyId": KEYS["sso"],
                    "secretAccessKey": "sso-secret",
                    "sessionToken": "sso-session-token",
                    "expiration": expires,
                }
            }
        )

    def _json(self, doc: object, status: int = 200) -> None:
        self._reply(status, json.dumps(doc).encode(), "application/json")

    def _reply(self, status: int, body: bytes, kind: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)
        self.requests: list[str] = []
        self.authorizations: list[str | None] = []
        self._lock = threading.Lock()

    def log(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.requests.append(f"{handler.command} {urllib.parse.urlsplit(handler.path).path}")
            self.authorizations.append(handler.headers.get("Authorization"))


class CredentialSources:
    """The stand-in server; ``env_for(source)`` gives the variables that point botocore at it."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on ``host:port``: loopback, or an address of a network namespace the test
        made itself (the container endpoint's fixed 169.254.170.2)."""
        self._server = _Server((host, port))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        bound_host, bound_port = self._server.server_address[:2]
        self.url = f"http://{bound_host!s}:{bound_port}"

    @property
    def requests(self) -> list[str]:
        return list(self._server.requests)

    @property
    def authorizations(self) -> list[str | None]:
        """Each request's ``Authorization`` header (None: none), in the order of requests."""
        return list(self._server.authorizations)

    def env_for(self, source: str) -> dict[str, str]:
        """What a runner of that kind has in its environment."""
        if source == "container":
            return {"AWS_CONTAINER_CREDENTIALS_FULL_URI": f"{self.url}/container/creds"}
        if source == "imds":
            return {
                "AWS_EC2_METADATA_DISABLED": "false",
                "AWS_EC2_METADATA_SERVICE_ENDPOINT": f"{self.url}/",
            }
        if source == "sso":
            return {"AWS_ENDPOINT_URL_SSO": self.url}
        if source == "signin":
            return {"AWS_ENDPOINT_URL_SIGNIN": self.url}
        raise ValueError(source)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def write_sso_token(home: Path, cache_key: str, *, expired: bool = False) -> Path:
    """The token file ``aws sso login`` leaves in ``~/.aws/sso/cache`` (no refresh fields,
    so an expired token is never refreshed through sso-oidc: nothing reaches for AWS).

    ``cache_key`` is the ``sso_session`` name, or the legacy profile's ``sso_start_url``.
    """
    directory = home / ".aws" / "sso" / "cache"
    directory.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha1(cache_key.encode(), usedforsecurity=False).hexdigest()
    when = _later(-1) if expired else _later(8)
    doc = {
        "startUrl": "https://example.awsapps.com/start",
        "region": "us-east-1",
        "accessToken": SSO_TOKEN,
        "expiresAt": _iso(when),
    }
    path = directory / f"{name}.json"
    path.write_text(json.dumps(doc))
    return path


def sso_profiles(kind: str) -> Mapping[str, Mapping[str, str]]:
    """An AWS config with an SSO profile ``sso`` of the ``sso_session`` or legacy kind."""
    common = {"sso_account_id": SSO_ACCOUNT, "sso_role_name": SSO_ROLE, "region": "us-east-1"}
    if kind == "session":
        return {
            "sso": {"sso_session": "corp", **common},
            "sso-session corp": {
                "sso_start_url": "https://example.awsapps.com/start",
                "sso_region": "us-east-1",
            },
        }
    return {
        "sso": {
            "sso_start_url": "https://example.awsapps.com/start",
            "sso_region": "us-east-1",
            **common,
        }
    }


LOGIN_SESSION = "arn:aws:iam::123456789012:user/developer"
"""The ``login_session`` of the profile ``aws login`` made (the signed-in principal)."""


def write_login_token(home: Path, session: str = LOGIN_SESSION, *, expired: bool = False) -> Path:
    """The cached login ``aws login`` leaves in ``~/.aws/login/cache`` (file name: the SHA-256
    of the session): temporary keys, their end, a refresh token, and the DPoP key (a P-256
    key, PEM) that signs the refresh."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    directory = home / ".aws" / "login" / "cache"
    directory.mkdir(parents=True, exist_ok=True)
    doc = {
        "accessToken": {
            "accessKeyId": KEYS["login"],
            "secretAccessKey": "login-secret",
            "sessionToken": "login-session-token",
            "accountId": SSO_ACCOUNT,
            "expiresAt": _iso(_later(-1) if expired else _later()),
        },
        "tokenType": "aws_sigv4",
        "clientId": "arn:aws:signin:::devtools/same-device",
        "refreshToken": "login-refresh-token",
        "idToken": "login-id-token",
        "dpopKey": key.decode(),
    }
    path = directory / f"{hashlib.sha256(session.encode()).hexdigest()}.json"
    path.write_text(json.dumps(doc))
    return path


CREDENTIAL_PROCESS = """#!{python}
import json, sys
mode = {mode!r}
if mode == "fail":
    print("token broker unreachable", file=sys.stderr)
    sys.exit(3)
print(json.dumps({{
    "Version": 1,
    "AccessKeyId": {key!r},
    "SecretAccessKey": "process-secret",
    "SessionToken": "process-session-token",
    "Expiration": {expiration!r},
}}))
"""


def credential_process(directory: Path, python: str, mode: str) -> Path:
    """A ``credential_process`` program: ``valid``, ``fail`` (exit 3), or ``expired``."""
    expiration = _iso(_later(-1) if mode == "expired" else _later())
    path = directory / f"creds-{mode}"
    path.write_text(
        CREDENTIAL_PROCESS.format(
            python=python, mode=mode, key=KEYS["process"], expiration=expiration
        )
    )
    path.chmod(0o755)
    return path
