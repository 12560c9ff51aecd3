"""registry.py: the built-in login's check against stand-in registries of our own.

A Bearer stand-in (a token endpoint in front of a registry, as ECR Public) and hostile ones
(tests/registries.py) on loopback; :class:`RegistryCheck` in this process with a real aiohttp
session that records every request it makes, then the tool end to end in the sandbox with
the stand-ins behind ECR host names.
"""

from __future__ import annotations

import base64
import json
import socket
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import anyio
import pytest

from runas_async.auth.registry import (
    MAX_BODY,
    RegistryCheck,
    _Unreachable,
    map_http_errors,
    parse_challenge,
)
from runas_async.core.errors import LoginError
from tests.faults import ApiFaultProxy, map_hosts
from tests.registries import ESCAPES_SHOWN, BearerRegistry, HostileRegistry, StandIn
from tests.sandbox import BLOCK, STATIC_KEYS, Sandbox, ecr_host, moto_password

PASSWORD = "the-ecr-token"
NET = f"127.{BLOCK}.68."
"""Stand-ins of the end-to-end tests: in this test process's block of 127/8 (other runs and
xdist workers have their own), apart from its registries (.0.10 up), silent servers (.66.)
and test_preconnect's stand-ins (.67.)."""


@pytest.mark.parametrize(
    ("header", "scheme", "params"),
    [
        pytest.param(
            'Basic realm="Registry Realm"', "basic", {"realm": "Registry Realm"}, id="basic"
        ),
        pytest.param(
            'Bearer realm="https://public.ecr.aws/token",service="public.ecr.aws",scope="aws"',
            "bearer",
            {"realm": "https://public.ecr.aws/token", "service": "public.ecr.aws", "scope": "aws"},
            id="ecr-public",
        ),
        pytest.param(
            'Bearer realm="https://a/t",scope="repository:x/y:pull,push"',
            "bearer",
            {"realm": "https://a/t", "scope": "repository:x/y:pull,push"},
            id="comma-in-quotes",
        ),
        pytest.param("  BASIC  ", "basic", {}, id="bare-scheme-any-case"),
        pytest.param("", None, None, id="empty"),
    ],
)
def test_parse_challenge(header: str, scheme: str | None, params: dict[str, str] | None) -> None:
    """WWW-Authenticate headers as registries send them."""
    challenge = parse_challenge(header)
    if scheme is None:
        assert challenge is None
    else:
        assert challenge is not None
        assert (challenge.scheme, dict(challenge.params)) == (scheme, params)


@pytest.fixture
async def session() -> AsyncIterator[tuple[aiohttp.ClientSession, list[str]]]:
    """A real aiohttp session and the URL of every request it starts."""
    urls: list[str] = []

    async def on_start(
        _: aiohttp.ClientSession, __: SimpleNamespace, params: aiohttp.TraceRequestStartParams
    ) -> None:
        urls.append(str(params.url))

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    async with aiohttp.ClientSession(trace_configs=[trace]) as s:
        yield s, urls


@pytest.fixture
def bearer() -> Iterator[BearerRegistry]:
    with BearerRegistry("127.0.0.1", password=PASSWORD) as registry:
        yield registry


async def test_bearer_token_exchanged_at_the_loopback_realm(
    session: tuple[aiohttp.ClientSession, list[str]], bearer: BearerRegistry
) -> None:
    """Bearer challenge: Basic credentials go to the realm with service and scope, the
    registry token then opens /v2/; the registry itself never sees the password."""
    await RegistryCheck(session[0]).check(bearer.netloc, "AWS", PASSWORD)
    token_calls = [r for r in bearer.requests if r.path == "/token"]
    assert [r.query for r in token_calls] == [
        {"service": bearer.service, "scope": "aws", "account": "AWS"}
    ]
    assert token_calls[0].authorization == bearer.credentials
    v2 = [r.authorization for r in bearer.requests if r.path == "/v2/"]
    assert v2 == ["", f"Bearer {bearer.token}"]


async def test_bearer_refused_with_the_token_endpoints_message(
    session: tuple[aiohttp.ClientSession, list[str]], bearer: BearerRegistry
) -> None:
    """Wrong password at the realm: the registry's own reason, no second /v2/ request."""
    with pytest.raises(LoginError) as caught:
        await RegistryCheck(session[0]).check(bearer.netloc, "AWS", "not-it")
    assert str(caught.value) == (
        f"login attempt to {bearer.netloc} failed with status 401: "
        "Your authorization token is invalid."
    )
    assert [r.path for r in bearer.requests if r.path == "/v2/"] == ["/v2/"]


async def test_http_realm_on_a_non_loopback_name_gets_no_credentials(
    session: tuple[aiohttp.ClientSession, list[str]],
) -> None:
    """A realm ``http://example.invalid/token``: refused, saying why, with no request to it."""
    realm = "http://example.invalid/token"
    with BearerRegistry("127.0.0.1", password=PASSWORD, realm=realm) as registry:
        with pytest.raises(LoginError) as caught:
            await RegistryCheck(session[0]).check(registry.netloc, "AWS", PASSWORD)
        requests = registry.requests
    assert str(caught.value) == (
        f"{registry.netloc} asks for the credentials at {realm}, over plain HTTP: not sent"
    )
    assert not [url for url in session[1] if "example.invalid" in url]
    assert [r.authorization for r in requests] == [""]


@pytest.mark.parametrize("mode", ["redirect", "redirect-first"])
async def test_redirect_to_another_host_sends_it_nothing(
    session: tuple[aiohttp.ClientSession, list[str]], mode: str
) -> None:
    """/v2/ redirected to another host (before or after the challenge): the login fails,
    saying so, and the other host receives no request at all."""
    with StandIn("127.0.0.2") as other:
        location = f"http://{other.netloc}/v2/"
        with HostileRegistry("127.0.0.1", mode=mode, location=location) as hostile:
            with pytest.raises(LoginError) as caught:
                await RegistryCheck(session[0]).check(hostile.netloc, "AWS", PASSWORD)
        received = other.requests
    assert "redirected to another host (127.0.0.2): credentials not sent there" in str(caught.value)
    assert received == []


async def test_endless_body_is_read_only_up_to_the_limit(
    session: tuple[aiohttp.ClientSession, list[str]],
) -> None:
    """A 401 whose body never ends: the check ends at once, having let the registry send no
    more than the limit plus what the sockets buffer (the registry would go on forever)."""
    with HostileRegistry("127.0.0.1", mode="endless") as hostile:
        started = time.monotonic()
        with anyio.fail_after(20), pytest.raises(LoginError):
            await RegistryCheck(session[0]).check(hostile.netloc, "AWS", PASSWORD)
        elapsed = time.monotonic() - started
        await anyio.sleep(0.2)
        sent = hostile.sent
    assert elapsed < 5
    assert sent < MAX_BODY + 32 * 1024 * 1024  # loopback socket buffers, two requests


async def test_error_document_in_pieces_is_read_whole(
    session: tuple[aiohttp.ClientSession, list[str]],
) -> None:
    """The registry's message arrives in two TCP pieces: still the registry's own message."""
    with HostileRegistry("127.0.0.1", mode="slow-error") as hostile:
        with pytest.raises(LoginError) as caught:
            await RegistryCheck(session[0]).check(hostile.netloc, "AWS", PASSWORD)
    assert str(caught.value).endswith("status 401: the hostile registry's own reason")


# --- end to end: the tool, with the stand-ins behind ECR host names ------------------------


DEV = "123456789012"


@pytest.fixture
def dev(sb: Sandbox) -> Sandbox:
    sb.write_aws_config({"dev": {"region": "us-east-1", **STATIC_KEYS}})
    return sb


def _rows(stdout: str) -> dict[str, dict[str, object]]:
    return {str(r["registry"]): r for r in json.loads(stdout)["results"]}


def test_tool_logs_in_through_a_bearer_realm(dev: Sandbox) -> None:
    """``--client builtin`` against the Bearer stand-in behind an ECR name: logged in, the
    registry token never written anywhere, the ECR token in config.json."""
    host = ecr_host(DEV, "ca-central-1")
    address = f"{NET}1"
    realm = f"http://{host}/token"
    with (
        BearerRegistry(address, 80, password=moto_password(DEV), realm=realm) as registry,
        map_hosts(dev, {host: address}),
    ):
        done = dev.run_tool(["ecr", "login", "dev", host, "-c", "builtin", "-o", "json"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert _rows(done.stdout)[host]["status"] == "ok"
    assert dev.docker_auths() == {host: f"AWS:{moto_password(DEV)}"}
    assert registry.token not in (dev.docker_config / "config.json").read_text()
    assert [r.path for r in registry.requests] == ["/v2/", "/token", "/v2/"]


def test_tool_refuses_a_redirect_and_bounds_a_stall(dev: Sandbox) -> None:
    """One registry redirects /v2/ to another host (which gets nothing), one stalls after
    its headers (failed at --timeout 2), one sends an endless body: the run ends on time."""
    redirecting, stalling, endless = (
        ecr_host(DEV, r) for r in ("eu-north-1", "sa-east-1", "me-south-1")
    )
    other_host = "elsewhere.example.com"
    with (
        StandIn(f"{NET}2", 80) as other,
        HostileRegistry(f"{NET}3", 80, mode="redirect", location=f"http://{other_host}/v2/"),
        HostileRegistry(f"{NET}4", 80, mode="stall"),
        HostileRegistry(f"{NET}5", 80, mode="endless"),
        map_hosts(
            dev,
            {
                other_host: f"{NET}2",
                redirecting: f"{NET}3",
                stalling: f"{NET}4",
                endless: f"{NET}5",
            },
        ),
    ):
        started = time.monotonic()
        done = dev.run_tool(
            ["ecr", "login", "dev", redirecting, stalling, endless]
            + ["-c", "builtin", "--timeout", "2", "-o", "json"]
        )
        wall = time.monotonic() - started
        received = other.requests
    assert done.returncode == 1, done.stdout + done.stderr
    rows = _rows(done.stdout)
    assert "redirected to another host (elsewhere.example.com)" in str(rows[redirecting]["error"])
    assert rows[stalling]["error"] == "timed out after 2s"
    assert rows[endless]["status"] == "failed"
    assert float(str(rows[endless]["seconds"])) < 2
    assert received == []
    assert wall < 10
    assert dev.docker_auths() == {}


@pytest.mark.parametrize(
    ("url", "location", "expected"),
    [
        pytest.param("https://h/v2/", "/v2/x", "https://h/v2/x", id="same-host-path"),
        pytest.param("http://h/v2/", "https://h/v2/", "https://h/v2/", id="upgrade"),
        pytest.param("https://h/v2/", "http://h/v2/", None, id="https-to-http"),
        pytest.param("https://h/v2/", "https://evil/v2/", None, id="other-host"),
        pytest.param("https://h/v2/", "//evil/v2/", None, id="scheme-relative-other-host"),
    ],
)
def test_redirects_credentials_may_follow(url: str, location: str, expected: str | None) -> None:
    """Credentials follow a redirect only to the same host, never down from HTTPS."""
    from runas_async.auth.registry import _same_host_redirect
    from runas_async.core.errors import LoginError

    if expected is None:
        with pytest.raises(LoginError, match="not sent"):
            _same_host_redirect("h", url, location)
    else:
        assert _same_host_redirect("h", url, location) == expected


async def test_a_registry_quoting_the_credentials_back_gets_them_redacted(
    session: tuple[aiohttp.ClientSession, list[str]],
) -> None:
    """A registry whose error quotes the Authorization header (and the password in it):
    the registry's message is kept, the secret is not."""
    with HostileRegistry("127.0.0.1", mode="echo") as hostile:
        with anyio.fail_after(20), pytest.raises(LoginError) as info:
            await RegistryCheck(session[0]).check(hostile.netloc, "AWS", PASSWORD)
    message = str(info.value)
    assert "bad credentials" in message
    assert PASSWORD not in message
    assert base64.b64encode(f"AWS:{PASSWORD}".encode()).decode() not in message


# --- issue 19: outside text through the one sanitizer; every failure is the registry's ------

LONG_PASSWORD = "eyJwYXlsb2FkIjoi" + "".join(
    base64.b64encode(bytes([n % 256]) * 3).decode() for n in range(520)
)
"""About 2 KB, as a real ECR token's password (issue 19, item 1: only long ones leaked)."""


def pieces(secret: str, size: int = 12) -> list[str]:
    """Every ``size``-character piece of ``secret``, none of which may be shown."""
    return [secret[i : i + size] for i in range(0, len(secret) - size + 1)]


def assert_no_piece(text: str, *secrets: str) -> None:
    for secret in secrets:
        leaked = [p for p in pieces(secret) if p in text]
        assert not leaked, f"{len(leaked)} pieces of a secret shown, first {leaked[0]!r}"


async def test_a_2kb_token_quoted_back_is_redacted_whole(
    session: tuple[aiohttp.ClientSession, list[str]],
) -> None:
    """Item 1: a registry quotes a 2 KB token's Authorization header back in its 401: no
    piece of the password or of the auth value is in the reason, which is still one short
    line naming the registry."""
    assert len(LONG_PASSWORD) > 2000
    with HostileRegistry("127.0.0.1", mode="echo") as hostile:
        with anyio.fail_after(20), pytest.raises(LoginError) as info:
            await RegistryCheck(session[0]).check(hostile.netloc, "AWS", LONG_PASSWORD)
    message = str(info.value)
    assert_no_piece(
        message, LONG_PASSWORD, base64.b64encode(f"AWS:{LONG_PASSWORD}".encode()).decode()
    )
    assert message.startswith(f"login attempt to {hostile.netloc} failed with status 401: ")
    assert "bad credentials" in message
    assert len(message) <= 200 and "\n" not in message


async def test_terminal_escapes_from_a_registry_are_stripped(
    session: tuple[aiohttp.ClientSession, list[str]],
) -> None:
    """Item 2: ESC, colours, BEL, U+202E and new lines in a registry's message are gone; the
    words stay."""
    with HostileRegistry("127.0.0.1", mode="escapes") as hostile:
        with anyio.fail_after(20), pytest.raises(LoginError) as info:
            await RegistryCheck(session[0]).check(hostile.netloc, "AWS", PASSWORD)
    message = str(info.value)
    assert message.endswith(f": {ESCAPES_SHOWN}")
    assert not [c for c in message if ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or c == "\u202e"]


BAD_LOCATIONS = {
    "userinfo": "http://x:y@{netloc}/v2/",
    "broken-ipv6": "http://[::1/v2/",
}


@pytest.mark.parametrize("where", ["redirect", "realm"])
@pytest.mark.parametrize("bad", sorted(BAD_LOCATIONS))
async def test_urls_aiohttp_refuses_fail_the_registry_alone(
    session: tuple[aiohttp.ClientSession, list[str]], where: str, bad: str
) -> None:
    """Item 3: a redirect or a Bearer realm with userinfo or a broken IPv6 literal (aiohttp
    raises on both) is that registry's LoginError, one line naming it: no other exception."""
    registry: HostileRegistry | BearerRegistry
    if where == "redirect":
        registry = HostileRegistry("127.0.0.1", mode="redirect-first")
    else:
        registry = BearerRegistry("127.0.0.1", password=PASSWORD)
    with registry:
        url = BAD_LOCATIONS[bad].format(netloc=registry.netloc)
        if isinstance(registry, HostileRegistry):
            registry.location = url
        else:
            registry.realm = url.replace("/v2/", "/token")
        with anyio.fail_after(20), pytest.raises(LoginError) as info:
            await RegistryCheck(session[0]).check(registry.netloc, "AWS", PASSWORD)
    message = str(info.value)
    assert registry.netloc in message
    assert "\n" not in message and PASSWORD not in message, message


def test_tool_hostile_registries_each_fail_alone_with_a_clean_reason(
    dev: Sandbox, tmp_path: Path
) -> None:
    """Items 1-3 end to end: 2 KB tokens (a proxy in front of moto), one registry that logs in,
    one quoting the credentials back, one sending terminal escapes, four with URLs aiohttp
    refuses. Each fails alone with a one-line reason, the JSON document is complete, no
    traceback; no piece of a secret and no control character reaches stdout, stderr or the
    step summary."""
    regions = ("ca-central-1", "eu-north-1", "sa-east-1", "me-south-1", "af-south-1")
    good, echo, escapes, redirect_ui, redirect_v6 = (ecr_host(DEV, r) for r in regions)
    realm_ui, realm_v6 = ecr_host(DEV, "ap-south-1"), ecr_host(DEV, "eu-west-3")
    hosts = [good, echo, escapes, redirect_ui, redirect_v6, realm_ui, realm_v6]
    addresses = {host: f"{NET}{10 + n}" for n, host in enumerate(hosts)}
    summary = tmp_path / "summary.md"
    with (
        ApiFaultProxy(dev.moto_url, password=LONG_PASSWORD) as proxy,
        BearerRegistry(addresses[good], 80, password=LONG_PASSWORD, realm=f"http://{good}/token"),
        HostileRegistry(addresses[echo], 80, mode="echo"),
        HostileRegistry(addresses[escapes], 80, mode="escapes"),
        HostileRegistry(
            addresses[redirect_ui],
            80,
            mode="redirect-first",
            location=f"http://x:y@{redirect_ui}/v2/",
        ),
        HostileRegistry(
            addresses[redirect_v6], 80, mode="redirect-first", location="http://[::1/v2/"
        ),
        BearerRegistry(
            addresses[realm_ui], 80, password=LONG_PASSWORD, realm=f"http://x:y@{realm_ui}/t"
        ),
        BearerRegistry(addresses[realm_v6], 80, password=LONG_PASSWORD, realm="http://[::1/t"),
        map_hosts(dev, addresses),
    ):
        env = dev.env(AWS_ENDPOINT_URL=proxy.url, GITHUB_STEP_SUMMARY=str(summary))
        done = dev.run_tool(["ecr", "login", "dev", *hosts, "-c", "builtin", "-o", "json"], env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    rows = _rows(done.stdout)
    assert set(rows) == set(hosts)
    assert rows[good]["status"] == "ok"
    for host in hosts[1:]:
        assert rows[host]["status"] == "failed", rows[host]
        assert not _controls(str(rows[host]["error"])), rows[host]
    assert "bad credentials" in str(rows[echo]["error"])
    assert str(rows[escapes]["error"]).endswith(ESCAPES_SHOWN)
    text = summary.read_text()
    auth = base64.b64encode(f"AWS:{LONG_PASSWORD}".encode()).decode()
    for shown in (done.stdout, done.stderr, text):
        assert_no_piece(shown, LONG_PASSWORD, auth)
    assert not _controls(text.replace("\n", ""))
    assert dev.docker_auths() == {good: f"AWS:{LONG_PASSWORD}"}


def _controls(text: str) -> list[str]:
    return [c for c in text if ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or c == "\u202e"]


# --- the aiohttp boundary ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        pytest.param(aiohttp.ServerDisconnectedError(), _Unreachable, id="disconnected"),
        pytest.param(aiohttp.ClientOSError(104, "reset"), _Unreachable, id="reset"),
        pytest.param(aiohttp.ClientPayloadError("cut short"), LoginError, id="payload"),
        pytest.param(aiohttp.InvalidURL("http://[::1"), LoginError, id="invalid-url"),
        pytest.param(aiohttp.ClientError("other"), LoginError, id="other-client-error"),
        pytest.param(LoginError("ours"), LoginError, id="ours-pass-through"),
        pytest.param(KeyError("bug"), KeyError, id="bugs-pass-through"),
    ],
)
def test_aiohttp_errors_are_mapped_at_one_boundary(raised: Exception, expected: type) -> None:
    """No connection: try the next URL; any other aiohttp error: the registry's LoginError,
    naming the host; ours and bugs go out as they came."""
    with pytest.raises(expected) as caught, map_http_errors("reg.example"):
        raise raised
    if expected is LoginError and not isinstance(raised, LoginError):
        assert str(caught.value).startswith("reg.example: ")
        assert caught.value.__cause__ is raised
    elif expected is not LoginError:
        assert caught.value is raised or caught.value.__cause__ is raised


async def test_a_closed_port_is_cannot_reach_after_https_and_http(
    session: tuple[aiohttp.ClientSession, list[str]],
) -> None:
    """Nothing listening on a loopback port: HTTPS, then plain HTTP, then one LoginError."""
    with socket.socket() as s:  # a port that was just free
        s.bind(("127.0.0.1", 0))
        netloc = f"127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(LoginError) as caught:
        await RegistryCheck(session[0]).check(netloc, "AWS", PASSWORD)
    assert str(caught.value).startswith(f"cannot reach {netloc}: ")
    assert session[1] == [f"https://{netloc}/v2/", f"http://{netloc}/v2/"]


# --- which hosts get plain HTTP, and what the first request carries ---------------------------


def test_plain_http_only_for_hosts_whose_every_address_is_loopback(dev: Sandbox) -> None:
    """A name with a loopback and a public address is not insecure (docker's rule: plain
    HTTP only when every address is loopback); one with loopback addresses only is."""
    names = {"loopback.test": f"{NET}7", "mixed.test": f"{NET}8", "public.test": "192.0.2.1"}
    code = (
        "import anyio, sys\n"
        "from runas_async.auth.registry import is_insecure\n"
        "print(*[anyio.run(is_insecure, n) for n in sys.argv[1:]])\n"
    )
    with (
        map_hosts(dev, names),
        map_hosts(dev, {"mixed.test": "192.0.2.1", "loopback.test": f"{NET}9"}),
    ):
        done = dev.run([sys.executable, "-c", code, *names])  # resolves only: no connection
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False", "False"]


def test_private_ecr_gets_the_credentials_with_the_first_request(dev: Sandbox) -> None:
    """``--client builtin`` and a private ECR registry (always a Basic challenge): the first
    ``/v2/`` request already carries the credentials, to the registry host itself."""
    host = ecr_host(DEV, "eu-south-1")
    with StandIn(f"{NET}6", 80) as registry, map_hosts(dev, {host: f"{NET}6"}):
        done = dev.run_tool(["ecr", "login", "dev", host, "-c", "builtin", "-o", "json"])
        requests = registry.requests
    assert done.returncode == 0, done.stdout + done.stderr
    basic = base64.b64encode(f"AWS:{moto_password(DEV)}".encode()).decode()
    assert [(r.path, r.authorization) for r in requests] == [("/v2/", f"Basic {basic}")]
    assert requests[0].host == host
