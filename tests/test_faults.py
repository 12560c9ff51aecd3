"""Faults injected for real, and what runas-async leaves behind (issue 6).

Every test breaks something the way it breaks in the field: an HTTP proxy in front of moto
that throttles, fails or resets chosen calls; a registry address that accepts connections and
never answers; signals sent to the real process mid-run; config files made invalid,
unreadable (root without CAP_DAC_OVERRIDE) or read-only (a read-only bind mount); hostile
profile and endpoint strings. Each asserts the outcome and the files left on disk: the
tool runs with ``TMPDIR`` pointed at a directory of the test's own, which must be empty
afterwards, and ``DOCKER_CONFIG`` must hold nothing but ``config.json``.

Not covered here: the credentials cache (files 0600, not trusted with looser permissions or
another owner). It did not exist when this file was written; tests/test_credentials.py has
tests for untrusted cache entries.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, assume, given, settings

from runas_async.cli.main import main
from runas_async.core.endpoints import parse_endpoint, show
from runas_async.core.errors import UsageError
from runas_async.core.partitions import load_partitions
from tests.faults import (
    ApiFaultProxy,
    ProcWatcher,
    Rule,
    Running,
    SilentServer,
    alive,
    descendants,
    map_hosts,
    silent_address,
    tool,
    tree_snapshot,
    wait_until,
)
from tests.sandbox import DEFAULT_ACCOUNT, STATIC_KEYS, Sandbox, ecr_host, moto_password

DEV = DEFAULT_ACCOUNT  # static keys belong to moto's default account
PASSWORD = moto_password(DEV)  # the ECR token moto hands to DEV
AUTH = base64.b64encode(f"AWS:{PASSWORD}".encode()).decode()  # as in config.json and the API
SECRET_KEY = STATIC_KEYS["aws_secret_access_key"]
SECRETS = (PASSWORD, AUTH, SECRET_KEY)

PROFILE = "dev"
REGIONS = ("us-east-1", "us-east-2", "us-west-2", "eu-west-1", "ap-south-1")
ACCOUNTS = tuple(f"7777000000{i:02d}" for i in range(1, 5))
HOSTS = [ecr_host(a, r) for a in ACCOUNTS for r in REGIONS]
"""20 registries, 4 accounts x 5 regions; each accepts DEV's token (cross-account access)."""
SILENT_ACCOUNT = "777700000099"  # its hosts map to a SilentServer

EXISTING: Mapping[str, Any] = {
    "auths": {"ghcr.io": {"auth": "dXNlcjpwYXNz"}},
    "psFormat": "table {{.ID}}",
}


@dataclass
class Client:
    """The tool's side of a test: the sandbox, a private TMPDIR and the environment."""

    sb: Sandbox
    tmp: Path

    @property
    def config(self) -> Path:
        return self.sb.docker_config / "config.json"

    def env(self, **extra: str) -> dict[str, str]:
        return self.sb.env(TMPDIR=str(self.tmp), **extra)

    def registries(self, hosts: Sequence[str]) -> None:
        self.sb.add_registries([(h, PASSWORD) for h in hosts])

    def seed(self, data: bytes | None = None) -> bytes:
        """Write an existing config.json (EXISTING unless ``data``); its bytes."""
        raw = json.dumps(EXISTING).encode() if data is None else data
        self.sb.docker_config.mkdir(parents=True, exist_ok=True)
        self.config.write_bytes(raw)
        return raw

    def run(self, args: Sequence[str], **extra: str) -> subprocess.CompletedProcess[str]:
        return self.sb.run_tool(args, env=self.env(**extra))

    def assert_nothing_left(self) -> None:
        """No temporary file or directory in TMPDIR or beside config.json."""
        assert sorted(self.tmp.iterdir()) == []
        if self.sb.docker_config.exists():
            stray = [p.name for p in self.sb.docker_config.iterdir() if p.name != "config.json"]
            assert stray == []

    def auths(self) -> dict[str, str]:
        return self.sb.docker_auths()

    @property
    def marker(self) -> str:
        """In the environment of the tool and its children only: tells them from others'."""
        return f"TMPDIR={self.tmp}"


@pytest.fixture
def client(sb: Sandbox, tmp_path: Path) -> Client:
    sb.write_aws_config({PROFILE: {"region": REGIONS[0], **STATIC_KEYS}})
    tmp = tmp_path / "tmpdir"
    tmp.mkdir()
    return Client(sb=sb, tmp=tmp)


def _rows(stdout: str) -> dict[str, dict[str, Any]]:
    doc = json.loads(stdout)
    return {str(r["registry"]): r for r in doc["results"]}


def _text_rows(lines: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Plain output: host -> (status, error or "")."""
    rows = {}
    for line in lines:
        m = re.match(r"^(ok|failed) +(\S+) \([^)]*\)(?:: (.*))?$", line.rstrip("\n"))
        if m:
            rows[m[2]] = (m[1], m[3] or "")
    return rows


def _docker_logins(pid: int) -> dict[int, list[str]]:
    return {
        p: argv
        for p, argv in tree_snapshot(pid).items()
        if len(argv) > 1 and os.path.basename(argv[0]) == "docker" and argv[1] == "login"
    }


# --- AWS API faults: retried with backoff, failed only when attempts run out --------------

GAT = "GetAuthorizationToken"
TRANSIENT = {"us-east-2": "throttle", "us-west-2": "500", "eu-west-1": "503", "ap-south-1": "reset"}


def test_transient_api_errors_are_retried_until_they_pass(client: Client) -> None:
    """Throttling, 500, 503 and a reset connection, twice per region: retried, every login lands."""
    hosts = [ecr_host(ACCOUNTS[0], r) for r in REGIONS]
    client.registries(hosts)
    rules = [Rule(GAT, fault, times=2, region=region) for region, fault in TRANSIENT.items()]
    with ApiFaultProxy(client.sb.moto_url, rules) as proxy:
        done = client.run(
            ["ecr", "login", PROFILE, *hosts, "-o", "json"], AWS_ENDPOINT_URL=proxy.url
        )
    assert done.returncode == 0, done.stdout + done.stderr
    assert {h: r["status"] for h, r in _rows(done.stdout).items()} == dict.fromkeys(hosts, "ok")
    for region in REGIONS:
        fault = TRANSIENT.get(region)
        actions = [s.action for s in proxy.seen(GAT, region)]
        assert actions == ([fault, fault, "pass"] if fault else ["pass"]), region
    assert client.sb.calls("ecr")[GAT] == len(REGIONS)  # moto saw one good call per region
    assert set(client.auths()) == set(hosts)
    client.assert_nothing_left()


EXHAUSTED = {
    "us-east-2": ("throttle", "ThrottlingException: Rate exceeded"),
    "us-west-2": ("503", "ServiceUnavailableException"),
    "eu-west-1": ("reset", "Connection reset by peer"),
}


@pytest.mark.long
def test_api_errors_fail_a_region_only_when_attempts_run_out(client: Client) -> None:
    """4 throttles then success logs in; endless faults fail that region after 5 calls, with why."""
    hosts = {r: ecr_host(ACCOUNTS[1], r) for r in REGIONS}
    client.registries(list(hosts.values()))
    rules = [Rule(GAT, "throttle", times=4, region="us-east-1")]
    rules += [Rule(GAT, fault, times=None, region=r) for r, (fault, _) in EXHAUSTED.items()]
    with ApiFaultProxy(client.sb.moto_url, rules) as proxy:
        done = client.run(
            ["ecr", "login", PROFILE, *hosts.values(), "-o", "json"], AWS_ENDPOINT_URL=proxy.url
        )
    assert done.returncode == 1, done.stdout + done.stderr
    rows = _rows(done.stdout)
    for region, (fault, reason) in EXHAUSTED.items():
        row = rows[hosts[region]]
        assert row["status"] == "failed"
        assert f"GetAuthorizationToken in {region}" in row["error"]
        assert reason in row["error"]
        assert [s.action for s in proxy.seen(GAT, region)] == [fault] * 5
    assert [s.action for s in proxy.seen(GAT, "us-east-1")] == ["throttle"] * 4 + ["pass"]
    ok = {hosts["us-east-1"], hosts["ap-south-1"]}
    assert {h for h, r in rows.items() if r["status"] == "ok"} == ok
    assert set(client.auths()) == ok
    client.assert_nothing_left()


# --- a registry that accepts the connection and never answers -----------------------------


def test_silent_registry_is_killed_at_its_timeout(client: Client) -> None:
    """A login hanging on a silent registry is killed at --timeout and reported; others finish."""
    goods = [ecr_host(ACCOUNTS[0], r) for r in REGIONS[:3]]
    silent = ecr_host(SILENT_ACCOUNT, "us-east-1")
    client.registries(goods)
    address = silent_address(1)
    with (
        SilentServer(address) as server,
        map_hosts(client.sb, {silent: address}),
        ProcWatcher(interval=0.02) as watcher,
    ):
        started = time.monotonic()
        done = client.run(["ecr", "login", PROFILE, *goods, silent, "--timeout", "2", "-o", "json"])
        wall = time.monotonic() - started
        accepted = server.accepted
    assert done.returncode == 1, done.stdout + done.stderr
    rows = _rows(done.stdout)
    assert rows[silent]["status"] == "failed"
    assert rows[silent]["error"] == "timed out after 2s"
    assert 2.0 <= rows[silent]["seconds"] < 2.0 + 3.0  # its token came first, then 2 s
    for host in goods:
        assert rows[host]["status"] == "ok"
        assert rows[host]["seconds"] < rows[silent]["seconds"]  # did not wait for it
    assert accepted >= 1  # docker really connected and got no answer
    assert wall < 10
    logins = watcher.docker_logins(client.marker)
    assert silent in [argv[-1] for argv in logins.values()]  # sampled while it hung
    assert not any(alive(pid) for pid in logins)
    assert set(client.auths()) == set(goods)
    client.assert_nothing_left()


def test_overall_deadline_fails_whatever_is_not_done(client: Client) -> None:
    """--deadline ends the run on time: the silent registry fails with the reason, the rest ok."""
    goods = [ecr_host(ACCOUNTS[0], r) for r in REGIONS[:2]]
    silent = ecr_host(SILENT_ACCOUNT, "us-east-2")
    client.registries(goods)
    address = silent_address(2)
    with SilentServer(address), map_hosts(client.sb, {silent: address}):
        started = time.monotonic()
        done = client.run(
            ["ecr", "login", PROFILE, *goods, silent, "--deadline", "3", "-o", "json"]
        )
        wall = time.monotonic() - started
    assert done.returncode == 1, done.stdout + done.stderr
    rows = _rows(done.stdout)
    assert rows[silent]["status"] == "failed"
    assert rows[silent]["error"] == "overall deadline of 3s reached"
    assert all(rows[h]["status"] == "ok" for h in goods)
    assert wall < 3 + 5  # start-up plus the deadline, not the 30 s login timeout
    assert set(client.auths()) == set(goods)
    client.assert_nothing_left()


# --- signals ------------------------------------------------------------------------------


def _private_modes(tmp: Path) -> tuple[list[str], int]:
    """Paths under TMPDIR that are not 0700 (directories) or 0600 (files), and the file count."""
    wrong, files = [], 0
    for path in tmp.rglob("*"):
        st_ = path.lstat()
        if stat.S_ISLNK(st_.st_mode):
            continue
        mode = stat.S_IMODE(st_.st_mode)
        if stat.S_ISDIR(st_.st_mode):
            if mode != 0o700:
                wrong.append(f"{path} {mode:o}")
        else:
            files += 1
            if mode != 0o600:
                wrong.append(f"{path} {mode:o}")
    return wrong, files


GOODS = [ecr_host(ACCOUNTS[2], r) for r in REGIONS[:2]]
SILENTS = [ecr_host(SILENT_ACCOUNT, r) for r in REGIONS[2:]]


@contextlib.contextmanager
def _stuck_run(client: Client, *extra: str) -> Iterator[tuple[Running, set[int]]]:
    """The tool with 2 logins done and 3 hanging on a silent registry; (run, its children)."""
    client.registries(GOODS)
    address = silent_address(3)
    with (
        SilentServer(address),
        map_hosts(client.sb, dict.fromkeys(SILENTS, address)),
        Running(
            client.sb.wrap(tool("ecr", "login", PROFILE, *GOODS, *SILENTS, *extra)), client.env()
        ) as run,
    ):
        ok = lambda: sum(line.startswith("ok ") for line in run.lines()) == len(GOODS)  # noqa: E731
        assert wait_until(ok, 30), run.stdout + run.stderr
        assert wait_until(lambda: len(_docker_logins(run.pid)) == len(SILENTS), 10)
        children = descendants(run.pid)
        assert set(_docker_logins(run.pid)) == children  # nothing else runs below it
        yield run, children


def _gone_within(pids: set[int], seconds: float) -> bool:
    return wait_until(lambda: not any(alive(p) for p in pids), seconds, interval=0.005)


@pytest.mark.parametrize(
    ("signum", "group", "code"),
    [
        pytest.param(signal.SIGINT, True, 130, id="ctrl-c-to-the-group"),
        pytest.param(signal.SIGINT, False, 130, id="sigint-to-the-process"),
        pytest.param(signal.SIGTERM, False, 143, id="sigterm-to-the-process"),
        pytest.param(signal.SIGHUP, False, 129, id="sighup-terminal-closed"),
    ],
)
def test_signal_mid_run_stops_cleanly(
    client: Client, signum: signal.Signals, group: bool, code: int
) -> None:
    """Signal mid-run: children gone within 1 s, temp files gone, done logins merged, 130/143."""
    before = client.seed()
    with _stuck_run(client) as (run, children):
        wrong, files = _private_modes(client.tmp)
        assert wrong == []  # credentials on disk are private while they exist
        assert files >= len(SILENTS)  # the seeded config.json of each hanging login
        if group:
            os.killpg(run.pid, signum)  # what the terminal does on Ctrl-C
        else:
            os.kill(run.pid, signum)
        assert _gone_within(children, 1.0), tree_snapshot(run.pid)
        assert run.wait(10) == code, run.stderr
    rows = _text_rows(run.lines())
    assert {h: rows[h][0] for h in GOODS + SILENTS} == {
        **dict.fromkeys(GOODS, "ok"),
        **dict.fromkeys(SILENTS, "failed"),
    }
    if not group:
        assert all(rows[h][1] == "interrupted" for h in SILENTS)
    doc = json.loads(client.config.read_text())  # valid JSON, not half-written
    assert doc["psFormat"] == EXISTING["psFormat"]
    assert set(client.auths()) == {*json.loads(before)["auths"], *GOODS}
    client.assert_nothing_left()


@pytest.mark.parametrize(
    ("signum", "code"),
    [
        pytest.param(signal.SIGINT, 130, id="sigint"),
        pytest.param(signal.SIGTERM, 143, id="sigterm"),
    ],
)
def test_signal_while_tokens_are_fetched_leaves_config_unchanged(
    client: Client, signum: signal.Signals, code: int
) -> None:
    """A signal during token retries ends the run at once; config.json stays byte for byte.

    The five clients, started early to wait for their password, are killed unfed.
    """
    before = client.seed()
    rules = [Rule(GAT, "throttle", times=None)]
    with (
        ApiFaultProxy(client.sb.moto_url, rules) as proxy,
        ProcWatcher(interval=0.02) as watcher,
        Running(
            client.sb.wrap(tool("ecr", "login", PROFILE, *HOSTS[:5])),
            client.env(AWS_ENDPOINT_URL=proxy.url),
        ) as run,
    ):
        assert wait_until(lambda: len(proxy.seen(GAT)) >= 5, 30), run.stderr

        def waiting() -> dict[int, list[str]]:
            return watcher.docker_logins(client.marker)

        assert wait_until(lambda: len(waiting()) == 5, 30), run.stderr
        started = time.monotonic()
        os.kill(run.pid, signum)
        assert run.wait(10) == code, run.stderr
        assert time.monotonic() - started < 1.0
    assert sorted(argv[-1] for argv in waiting().values()) == sorted(HOSTS[:5])
    assert _gone_within(set(waiting()), 1.0)
    assert client.config.read_bytes() == before
    client.assert_nothing_left()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_repeated_signals_during_shutdown_leave_nothing_behind(
    client: Client, signum: signal.Signals
) -> None:
    """Signals every 5 ms until exit (Ctrl-C mashed): no temp files left, config.json intact."""
    # A big config.json (20k entries, ~1.5 MB) makes the final merge take long enough for
    # the next signal to land in it, every time.
    big = {**EXISTING, "auths": {f"r{i}.example": {"auth": AUTH} for i in range(20_000)}}
    before = client.seed(json.dumps(big).encode())
    with _stuck_run(client) as (run, children):
        deadline = time.monotonic() + 10
        while run.process.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(run.pid, signum)
            time.sleep(0.005)
        assert _gone_within(children, 1.0)
        code = run.wait(10)
    assert code == 128 + signum, run.stderr
    auths = set(client.auths())
    old = set(json.loads(before)["auths"])
    assert client.config.read_bytes() == before or auths == old | set(GOODS)
    client.assert_nothing_left()


# --- unusable local files: exit 2 before anything runs, nothing touched -------------------

# uid 0 without the capabilities that let root ignore file permissions.
NO_DAC = [
    "setpriv",
    "--inh-caps=-dac_override,-dac_read_search",
    "--bounding-set=-dac_override,-dac_read_search",
]


def _snapshot(directory: Path) -> dict[str, tuple[bytes | None, int, int]]:
    out: dict[str, tuple[bytes | None, int, int]] = {}
    for path in [directory, *directory.iterdir()]:
        st_ = path.lstat()
        data = path.read_bytes() if path.is_file() else None
        out[path.name] = (data, st_.st_mode, st_.st_mtime_ns)
    return out


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        pytest.param("invalid-json", "is not valid JSON", id="invalid-json"),
        pytest.param("unreadable", "Permission denied", id="unreadable-0000"),
        pytest.param("read-only-mount", "Read-only file system", id="read-only-mount"),
        pytest.param("read-only-mode", "Permission denied", id="read-only-dir-0555"),
    ],
)
def test_unusable_docker_config_exits_2_and_is_untouched(
    client: Client, fault: str, reason: str
) -> None:
    """config.json invalid, unreadable or in a read-only dir: exit 2, one line, file untouched."""
    client.seed(b'{"auths": {"ghcr.io": ' if fault == "invalid-json" else None)
    directory = client.sb.docker_config
    prefix: list[str] = []
    if fault == "unreadable":
        client.config.chmod(0)
        prefix = NO_DAC
    elif fault == "read-only-mode":
        directory.chmod(0o555)
        prefix = NO_DAC
    elif fault == "read-only-mount":
        script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
        prefix = ["sh", "-c", script, str(directory)]
    before = _snapshot(directory)
    done = client.sb.run([*prefix, *tool("ecr", "login", PROFILE, HOSTS[0])], env=client.env())
    after = _snapshot(directory)
    directory.chmod(0o700)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("runas-async: error: ")
    assert str(client.config) in done.stderr
    assert reason in done.stderr
    assert after == before
    assert client.sb.moto_calls() == []
    client.assert_nothing_left()


BROKEN_PROFILE = "team-ci"


@pytest.mark.parametrize(
    ("config", "credentials", "cause", "code"),
    [
        pytest.param(
            f"[profile {BROKEN_PROFILE}\nregion = us-east-1\n",
            "",
            "Unable to parse config file",
            2,
            id="config-syntax",
        ),
        pytest.param(
            f"[profile {BROKEN_PROFILE}]\nregion = us-east-1\n",
            f"[{BROKEN_PROFILE}\naws_access_key_id = AKIDEXAMPLE\n",
            "Unable to parse config file",
            2,
            id="credentials-syntax",
        ),
        pytest.param(
            f"[profile {BROKEN_PROFILE}]\nregion = us-east-1\n"
            "credential_process = sh -c 'echo vault is sealed >&2; exit 3'\n",
            "",
            "vault is sealed",
            1,
            id="credential-process-fails",
        ),
        pytest.param(
            f"[profile {BROKEN_PROFILE}]\nregion = us-east-1\n"
            "credential_process = echo this-is-not-json\n",
            "",
            "not JSON",
            1,
            id="credential-process-garbage",
        ),
        pytest.param(
            f"[profile {BROKEN_PROFILE}]\nregion = us-east-1\n"
            "credential_process = /nonexistent/credential-helper\n",
            "",
            "/nonexistent/credential-helper",
            1,
            id="credential-process-missing",
        ),
    ],
)
def test_broken_aws_config_names_the_profile_and_the_cause(
    client: Client, config: str, credentials: str, cause: str, code: int
) -> None:
    """A config file that does not parse: exit 2 before any request, one line. A failing
    credential_process (known only when run): its registry fails naming the profile and
    the cause, exit 1. No traceback, no login either way."""
    client.sb.aws_config_file.write_text(config)
    client.sb.aws_credentials_file.write_text(credentials)
    with ProcWatcher(interval=0.02) as watcher:
        done = client.run(["ecr", "login", BROKEN_PROFILE, HOSTS[0]])
    assert done.returncode == code, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    line = done.stderr if code == 2 else done.stdout
    assert line.count("\n") == 1, done.stdout + done.stderr
    assert line.startswith("runas-async: error: " if code == 2 else f"failed  {HOSTS[0]} ")
    assert repr(BROKEN_PROFILE) in line
    assert cause in line
    assert GAT not in client.sb.calls()
    assert watcher.docker_logins(client.marker) == {}
    assert not client.config.exists()
    client.assert_nothing_left()


# --- secrets ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        pytest.param([], id="text"),
        pytest.param(["-o", "json"], id="json"),
        pytest.param(["--debug"], id="debug"),
        pytest.param(["--client", "builtin", "--debug"], id="builtin"),
    ],
)
def test_no_secret_in_any_argv_environment_or_output(client: Client, args: list[str]) -> None:
    """20 logins with /proc sampled every 5 ms: no token or key in argv, environ, stdout, stderr."""
    client.registries(HOSTS)
    with ProcWatcher(interval=0.005) as watcher:
        done = client.run(["ecr", "login", PROFILE, *HOSTS, *args])
    assert done.returncode == 0, done.stdout + done.stderr
    logins = watcher.docker_logins(client.marker)
    if "builtin" not in args:
        assert len(logins) >= len(HOSTS) // 2  # the sampler really saw the clients run
    for argv in logins.values():
        assert argv[1:5] == ["login", "--username", "AWS", "--password-stdin"]
        assert len(argv) == 6 and argv[5] in HOSTS
    for secret in SECRETS:
        assert not [b for b in watcher.blobs(client.marker) if secret.encode() in b], secret
        assert secret not in done.stdout
        assert secret not in done.stderr
    if "--debug" in args:
        assert "runas_async" in done.stderr  # the debug log was written, and is clean
    assert AUTH in client.config.read_text()  # the secrets looked for are the real ones
    client.assert_nothing_left()
    if "builtin" in args:
        # no process per registry: the tool (and its namespace wrappers) only
        assert logins == {}
        ours = {pid for (pid, _), env in watcher.environs.items() if client.marker.encode() in env}
        assert 1 <= len(ours) <= 3, watcher.argv_lists()


# --- hostile input ------------------------------------------------------------------------

PARTITIONS = load_partitions()
VALID = [ecr_host(DEV, "us-east-1"), DEV, f"https://{ecr_host(ACCOUNTS[0], 'eu-west-1')}/"]
METACHARACTERS = [
    ";",
    "|",
    "&&",
    "`id`",
    "$(touch PWNED)",
    "${IFS}",
    "\n",
    "\r",
    " ",
    "\t",
    "'",
    '"',
    "\\",
    ">",
    "<",
    "*",
    "?",
    "~",
    "#",
    "{a,b}",
    "%0a",
    "\x00",
    "\x1b[2J",
    "\u202e",
]


def _rejected(raw: str) -> bool:
    try:
        parse_endpoint(raw, PARTITIONS)
    except UsageError:
        return True
    return False


@st.composite
def hostile_endpoints(draw: st.DrawFn) -> str:
    """Endpoint strings with shell metacharacters, look-alike hosts, control chars, huge sizes."""
    base = draw(st.sampled_from([*VALID, "docker.io", "evil.com", ""]))
    kind = draw(st.sampled_from(["append", "prepend", "insert", "lookalike", "long", "text"]))
    meta = draw(st.lists(st.sampled_from(METACHARACTERS), min_size=1, max_size=4))
    junk = "".join(meta)
    if kind == "append":
        raw = base + junk + draw(st.text(max_size=10))
    elif kind == "prepend":
        raw = junk + base
    elif kind == "insert":
        cut = draw(st.integers(0, len(base)))
        raw = base[:cut] + junk + base[cut:]
    elif kind == "lookalike":
        raw = base + draw(st.sampled_from([".evil.com", ".amazonaws.com.evil.com", ":443@evil"]))
    elif kind == "long":
        raw = base + junk * draw(st.integers(100, 3000))
    else:
        raw = draw(st.text(min_size=1, max_size=200))
    assume(not raw.lstrip().startswith("-"))  # an option, not an ENDPOINT
    assume(_rejected(raw))
    return raw


@pytest.fixture(scope="module")
def dead_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Any]]:
    """A usable AWS profile whose endpoint counts connections, and a docker that records calls."""
    import socket

    root = tmp_path_factory.mktemp("hostile")
    (root / "config").write_text(
        "[profile p]\nregion = us-east-1\n"
        + "".join(f"{k} = {v}\n" for k, v in STATIC_KEYS.items())
    )
    bin_dir = root / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "docker"
    shim.write_text(f"#!/bin/sh\necho called >> {root / 'docker-called'}\nexit 1\n")
    shim.chmod(0o755)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.setblocking(False)
    yield root, listener
    listener.close()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    before=st.lists(st.sampled_from(VALID), max_size=2),
    raw=hostile_endpoints(),
)
def test_hostile_endpoints_exit_2_naming_the_value_without_any_call(
    dead_world: tuple[Path, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    before: list[str],
    raw: str,
) -> None:
    """Via main(): a hostile ENDPOINT exits 2 with one line naming it; no AWS or docker call."""
    root, listener = dead_world
    port = listener.getsockname()[1]
    monkeypatch.setenv("AWS_CONFIG_FILE", str(root / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(root / "none"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("DOCKER_CONFIG", str(root / "docker"))
    monkeypatch.setenv("PATH", str(root / "bin"))
    assert main(["ecr", "login", "p", *before, raw]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("runas-async: error: ")
    assert show(raw) in err  # whole up to 200 characters, else its start and its end
    assert len(err.removeprefix("runas-async: error: ").rstrip("\n")) <= 400
    with pytest.raises(BlockingIOError):
        listener.accept()  # nobody connected to the AWS endpoint
    assert not (root / "docker-called").exists()
    assert not (root / "docker").exists()


def test_shell_metacharacters_never_reach_a_shell(client: Client, tmp_path: Path) -> None:
    """Metacharacters in a real profile name and an image path: no shell runs them, argv fixed."""
    profile = "ci;touch${IFS}PWNED|x&y$(touch${IFS}PWNED)`touch${IFS}PWNED`<>*?~{a,b}"
    host = HOSTS[0]
    endpoint = f"{host}/team;touch${{IFS}}PWNED/app$(touch${{IFS}}PWNED)`id`:1&&x|y"
    client.registries([host])
    client.sb.write_aws_config({profile: {"region": "us-east-1", **STATIC_KEYS}})
    shim_dir = tmp_path / "shim"
    shim_dir.mkdir()
    calls = tmp_path / "docker-argv.jsonl"
    real = subprocess.run(["which", "docker"], capture_output=True, text=True, check=True)
    (shim_dir / "docker").write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        f"open({str(calls)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        f"os.execv({real.stdout.strip()!r}, [{real.stdout.strip()!r}, *sys.argv[1:]])\n"
    )
    (shim_dir / "docker").chmod(0o755)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = client.env(PATH=f"{shim_dir}:{os.environ['PATH']}")
    done = subprocess.run(
        client.sb.wrap(tool("ecr", "login", profile, endpoint, "-o", "json")),
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    argvs = [json.loads(line) for line in calls.read_text().splitlines()]
    assert argvs == [["login", "--username", "AWS", "--password-stdin", host]]
    assert _rows(done.stdout)[host]["profile"] == profile
    assert list(tmp_path.rglob("PWNED*")) == [] and list(client.sb.workdir.rglob("PWNED*")) == []
    assert set(client.auths()) == {host}
    client.assert_nothing_left()


@pytest.mark.parametrize(
    "profile",
    [
        pytest.param("a\nb --password-stdin x", id="newline"),
        pytest.param("$(touch PWNED);`touch PWNED`", id="metacharacters"),
        pytest.param("p" * 20_000, id="20k-chars"),
    ],
)
def test_hostile_unknown_profile_exits_2_on_one_line(
    client: Client, tmp_path: Path, profile: str
) -> None:
    """An unknown profile with newlines, metacharacters or 20k characters: exit 2, one line."""
    done = client.run(["ecr", "login", profile, HOSTS[0]])
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("runas-async: error: ")
    assert show(profile) in done.stderr
    assert len(done.stderr) < 1000
    assert client.sb.moto_calls() == []
    assert list(tmp_path.rglob("PWNED*")) == [] and not Path("PWNED").exists()
    client.assert_nothing_left()


# --- load -----------------------------------------------------------------------------------


@pytest.mark.long
def test_200_registries_in_one_run_none_lost(tmp_path: Path, sandbox: Sandbox) -> None:
    """40 accounts x 5 regions with the default --jobs: all 200 logged in and in config.json."""
    from bench.load import hosts as load_hosts
    from bench.load import run_once

    del sandbox  # asked for its skip (or CI failure) when the machine cannot run a sandbox
    targets = load_hosts(40, 5)
    with Sandbox(tmp_path / "load") as sb:
        sb.add_registries([(h, PASSWORD) for h in targets])
        result = run_once(sb, targets, None)  # raises on any lost login
    assert result.most_logins > 1
