"""aiohttp's import-time CA loading, deferred (aws/_lazyca.py): never a context without them.

Each case runs in a fresh interpreter (the test process has aiohttp imported already, and
the deferral only acts on its import), against a TLS server of its own on loopback whose
certificate only ``SSL_CERT_FILE`` (the system store's place, as OpenSSL reads it) trusts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.relay import tls_certificate

_SCRIPT = r"""
import asyncio, json, ssl, sys
from runas_async.aws import _lazyca

mode = sys.argv[1]
if mode != "plain":
    _lazyca.defer(load_after=mode == "ahead")
if mode == "elsewhere":
    # An aiohttp that made its contexts somewhere else: not aiohttp.connector's code.
    elsewhere = ssl.create_default_context()
import aiohttp
import aiohttp.connector as connector
_lazyca.resume()
store = ssl._ssl._SSLContext.cert_store_stats  # the C method: loads nothing
report = {
    "deferred": _lazyca.deferred(),
    "loaded_at_import": store(connector._SSL_CONTEXT_VERIFIED)["x509_ca"],
    "ssl_restored": "set_default_verify_paths" not in vars(ssl.SSLContext),
}
if mode == "elsewhere":
    report["elsewhere_loaded"] = store(elsewhere)["x509_ca"]

server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
server.load_cert_chain(sys.argv[2], sys.argv[3])

async def main():
    async def answer(reader, writer):
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
        except Exception:
            pass
        writer.close()
    listening = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server)
    port = listening.sockets[0].getsockname()[1]
    async with aiohttp.ClientSession() as session:
        try:
            async with session.get(f"https://127.0.0.1:{port}/") as response:
                report["status"] = response.status
        except aiohttp.ClientConnectorCertificateError:
            report["status"] = "certificate refused"
    listening.close()

asyncio.run(main())
report["loaded_after"] = store(connector._SSL_CONTEXT_VERIFIED)["x509_ca"]
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    cert = tls_certificate(tmp_path_factory.mktemp("tls"), "127.0.0.1")
    return cert, cert.with_suffix(".key")


def _run(mode: str, certificate: tuple[Path, Path], *, trusted: bool) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    if trusted:
        env["SSL_CERT_FILE"] = str(certificate[0])
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, mode, *map(str, certificate)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, object] = json.loads(done.stdout)
    return report


@pytest.mark.parametrize("mode", ["later", "ahead"])
def test_deferred_contexts_load_before_their_first_handshake(
    mode: str, certificate: tuple[Path, Path]
) -> None:
    """Nothing loaded at import; the first handshake has the store and verifies with it."""
    report = _run(mode, certificate, trusted=True)
    assert report["deferred"] == 2  # the verified and the unverified context
    if mode == "later":  # "ahead" may have loaded already, in its thread
        assert report["loaded_at_import"] == 0
    assert report["ssl_restored"] is True
    assert report["status"] == 200
    assert report["loaded_after"] == 1


def test_a_deferred_context_still_refuses_an_untrusted_certificate(
    certificate: tuple[Path, Path],
) -> None:
    """Deferring never turns verification off: a certificate the store lacks is refused."""
    report = _run("later", certificate, trusted=False)
    assert report["deferred"] == 2
    assert report["status"] == "certificate refused"


def test_without_the_hook_aiohttp_loads_as_always(certificate: tuple[Path, Path]) -> None:
    """The plain path, and the fallback: nothing deferred, loaded at import, login works;
    a context made by anyone but aiohttp.connector loads at once even while deferring."""
    plain = _run("plain", certificate, trusted=True)
    assert plain["deferred"] == 0
    assert plain["loaded_at_import"] == 1
    assert plain["status"] == 200
    elsewhere = _run("elsewhere", certificate, trusted=True)
    assert elsewhere["elsewhere_loaded"] == 1
    assert elsewhere["status"] == 200


def test_defer_is_a_no_op_once_aiohttp_is_imported() -> None:
    """In a process that has aiohttp (this one), nothing is patched."""
    import ssl

    import aiohttp.connector  # noqa: F401

    from runas_async.aws import _lazyca

    _lazyca.defer(load_after=True)
    try:
        assert "set_default_verify_paths" not in vars(ssl.SSLContext)
    finally:
        _lazyca.resume()
