"""The benchmark's world: the test sandbox with a latency proxy in front of every server.

Built on ``tests.sandbox.Sandbox`` (moto with a call log, one real ``docker-registry`` per
ECR host on ``127.BLOCK.0.N:80``, the tool run in a private mount namespace), plus:

* a latency proxy process (:mod:`bench.latency`) with one listener in front of moto and two
  per registry. Each registry's host name is mapped (in the sandbox's hosts file, which only
  the namespace sees) to a proxy address ``127.BLOCK.200.N`` instead of the registry's own
  address. The docker CLI, which tries HTTPS on 443 before plain HTTP on 80 for a loopback
  registry, finds a listener on both: 443 resets after one round trip (what a refused
  connection costs on a real network) and 80 forwards to the registry after a TCP
  handshake's round trip. In front of moto the proxy speaks real TLS (a certificate of the
  world's own for 127.0.0.1, trusted through ``AWS_CA_BUNDLE``: botocore's CA bundle plus
  it, so loading it costs what the real one does), and the tools call
  ``https://127.0.0.1:PORT``: every TLS handshake crosses the delay line, as on the real
  HTTPS API;
* an AWS config with a role profile: ``bench`` assumes a role in :data:`ROLE_ACCOUNT`
  through the static-key profile ``bench-source``. Every registry, whatever its account,
  accepts that role's token (cross-account pull access), as in a real organisation where
  one role reaches many accounts' registries.
"""

from __future__ import annotations

import ipaddress
import os
import resource
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from bench.latency import Event, Listener, ProxyProcess, read_events
from tests.faults import ApiFaultProxy
from tests.sandbox import BLOCK, STATIC_KEYS, Sandbox, ecr_host, moto_password

__all__ = [
    "PROFILE",
    "CpuSnapshot",
    "REGIONS",
    "ROLE_ACCOUNT",
    "SOURCE_PROFILE",
    "Run",
    "World",
    "account",
    "hosts_for",
]

ROLE_ACCOUNT = "210987654321"
PROFILE = "bench"
SOURCE_PROFILE = "bench-source"
HOME_REGION = "us-east-1"
REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2")
PROXY_BASE = ipaddress.IPv4Address(f"127.{BLOCK}.200.10")
"""Proxy addresses: in this run's own block of loopback (tests/sandbox.py), far from the
sandbox's registries (127.BLOCK.0.10 and up), so two runs on one machine do not meet."""


def account(index: int) -> str:
    """The ``index``-th registry account; the first is the role's own account."""
    return ROLE_ACCOUNT if index == 0 else f"5555{index:08d}"


def hosts_for(n: int) -> list[str]:
    """The first ``n`` registry hosts: accounts of 5 regions each (50 = 10 accounts x 5)."""
    return [ecr_host(account(i // len(REGIONS)), REGIONS[i % len(REGIONS)]) for i in range(n)]


def _proxy_address(index: int) -> str:
    address = PROXY_BASE
    for _ in range(index):
        address += 1
        while int(address) & 0xFF in (0, 255):
            address += 1
    return str(address)


_TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuSnapshot:
    """Machine-wide busy and steal CPU time, and the CPU time of this benchmark's processes."""

    busy: float
    steal: float
    own: float

    def foreign_since(self, before: CpuSnapshot) -> float:
        """CPU seconds spent by processes that are not the benchmark's since ``before``."""
        return max(0.0, (self.busy - before.busy) - (self.own - before.own))


def _process_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    # utime, stime, cutime, cstime are fields 14-17 of stat (12-15 after the comm field).
    return sum(int(x) for x in fields[11:15]) / _TICK


@dataclass(frozen=True)
class Run:
    """One command run inside the namespace, timed with the wall clock."""

    argv: tuple[str, ...]
    seconds: float
    returncode: int
    stdout: str
    stderr: str
    started: float
    """time.monotonic() just before the process was spawned."""
    calls: Mapping[str, int] = field(default_factory=dict)
    events: tuple[Event, ...] = ()
    foreign_cpu: float = 0.0
    """CPU seconds other processes of the machine used while this ran (noise)."""
    steal: float = 0.0
    """CPU seconds the hypervisor gave to other guests while this ran (noise)."""

    def first(self, kind: str, name: str) -> float | None:
        """Seconds from spawn to the first ``kind`` event of listener ``name``."""
        times = [e.time for e in self.events if e.kind == kind and e.name == name]
        return min(times) - self.started if times else None

    def last(self, kind: str, name: str) -> float | None:
        times = [e.time for e in self.events if e.kind == kind and e.name == name]
        return max(times) - self.started if times else None

    def phases(self) -> dict[str, float | None]:
        """Milestones of a login run, in seconds from spawn, from the proxy's log.

        ``first_aws``: the first AWS connection (the first network call); ``first_request``:
        when a client sent its first request on any AWS connection (after the TLS
        handshake); ``sts_done``: the answer on the connection whose request left first
        (AssumeRole: the token connections may be opened earlier, while it is under way,
        but are answered after it; without TLS, the last response byte on the connection
        answered first); ``first_token`` and ``last_token``: the first and last answer on
        the other AWS connections; ``first_registry``:
        docker's first connection (its HTTPS attempt); ``last_login``: the last response
        byte any registry sent.
        """
        opened: dict[int, float] = {}
        answered: dict[int, float] = {}
        sent: dict[int, float] = {}
        replies: dict[int, float] = {}
        for e in self.events:
            if e.name != "aws":
                continue
            if e.kind == "open":
                opened.setdefault(e.connection, e.time)
            elif e.kind == "down":
                answered[e.connection] = max(answered.get(e.connection, 0.0), e.time)
            elif e.kind == "sent":
                sent.setdefault(e.connection, e.time)
            elif e.kind == "reply":
                replies.setdefault(e.connection, e.time)
        if replies:
            # TLS: a connection's last bytes may be a closing alert at exit, not its answer.
            # The one whose request left first is AssumeRole's.
            answered = dict(sorted(replies.items(), key=lambda kv: sent.get(kv[0], kv[1])))
        result: dict[str, float | None] = {
            "first_aws": None,
            "first_request": self.first("sent", "aws"),
            "sts_done": None,
            "first_token": None,
            "last_token": None,
            "first_registry": self.first("open", "reg443"),
            "last_login": self.last("down", "reg"),
        }
        if opened:
            result["first_aws"] = min(opened.values()) - self.started
        if answered:
            first = next(iter(answered)) if replies else min(answered, key=answered.__getitem__)
            result["sts_done"] = answered[first] - self.started
            others = [t for c, t in answered.items() if c != first]
            if others:
                result["first_token"] = min(others) - self.started
                result["last_token"] = max(others) - self.started
        return result


def _certificate(directory: Path) -> tuple[Path, Path, Path]:
    """A self-signed RSA 2048 certificate for 127.0.0.1 (as AWS's own certificates are RSA
    2048), its key, and botocore's CA bundle with it added: (certificate, key, bundle)."""
    from botocore.httpsession import where

    cert, key, bundle = (directory / name for name in ("tls.crt", "tls.key", "ca-bundle.pem"))
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=runas-async bench",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    bundle.write_bytes(Path(where()).read_bytes() + b"\n" + cert.read_bytes())
    return cert, key, bundle


class World:
    """Sandbox + registries + latency proxy + AWS profiles. A context manager."""

    def __init__(self, delay: float, max_n: int) -> None:
        self.delay = delay
        self.hosts = hosts_for(max_n)
        self._sandbox: Sandbox | None = None
        self._proxy: ProxyProcess | None = None
        self._expiring: ApiFaultProxy | None = None
        self._tls: tuple[Path, Path, Path] | None = None

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            raise RuntimeError("the world is not running")
        return self._sandbox

    @property
    def aws_url(self) -> str:
        """The AWS endpoint the tools use: the proxy in front of moto."""
        if self._proxy is None:
            raise RuntimeError("the world is not running")
        return f"https://127.0.0.1:{self._proxy.ports['aws']}"

    @property
    def renew_url(self) -> str:
        """Like :attr:`aws_url`, with tokens that expire 12 hours from now (moto's are in 2015),
        for ``--renew-before``; a separate listener, so the main runs are unchanged."""
        if self._proxy is None:
            raise RuntimeError("the world is not running")
        return f"https://127.0.0.1:{self._proxy.ports['aws-renew']}"

    def __enter__(self) -> Self:
        self._sandbox = Sandbox()
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self) -> None:
        sb = self.sandbox
        registries = sb.add_registries([(h, moto_password(ROLE_ACCOUNT)) for h in self.hosts])
        moto_port = int(sb.moto_url.rsplit(":", 1)[1])
        self._expiring = ApiFaultProxy(sb.moto_url, expires_in=12 * 3600).__enter__()
        expiring_port = int(self._expiring.url.rsplit(":", 1)[1])
        listeners = [
            Listener("aws", ("127.0.0.1", 0), ("127.0.0.1", moto_port), tls=True),
            Listener("aws-renew", ("127.0.0.1", 0), ("127.0.0.1", expiring_port), tls=True),
        ]
        mapping: list[str] = []
        for index, registry in enumerate(registries):
            address = _proxy_address(index)
            listeners.append(Listener("reg", (address, 80), (registry.address, 80)))
            listeners.append(Listener("reg443", (address, 443), None))
            mapping.append(f"{address}\t{registry.host}\n")
        self._tls = _certificate(sb.workdir)
        self._proxy = ProxyProcess(
            self.delay, listeners, sb.workdir / "proxy-events.log", self._tls[:2]
        )
        self._proxy.__enter__()
        # Same inode (the namespace bind-mounts this file): rewrite in place.
        with sb.hosts_file.open("w", encoding="utf-8") as hosts:
            hosts.write("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
            hosts.writelines(mapping)
        sb.write_aws_config(
            {
                SOURCE_PROFILE: {"region": HOME_REGION, **STATIC_KEYS},
                PROFILE: {
                    "role_arn": f"arn:aws:iam::{ROLE_ACCOUNT}:role/bench",
                    "source_profile": SOURCE_PROFILE,
                    "region": HOME_REGION,
                },
            }
        )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._proxy is not None:
            self._proxy.__exit__(None, None, None)
            self._proxy = None
        if self._expiring is not None:
            self._expiring.__exit__(None, None, None)
            self._expiring = None
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None

    # -- running things

    def env(self, **extra: str) -> dict[str, str]:
        """The sandbox's clean environment, pointed at the proxy (TLS) instead of moto."""
        bundle = str(self._tls[2]) if self._tls else ""
        return self.sandbox.env(
            **{"AWS_ENDPOINT_URL": self.aws_url, "AWS_CA_BUNDLE": bundle, **extra}
        )

    def reset_client_state(self) -> None:
        """A fresh start for the next command: no docker config, no awscli cache."""
        shutil.rmtree(self.sandbox.docker_config, ignore_errors=True)
        shutil.rmtree(self.sandbox.home / ".aws", ignore_errors=True)

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        input: str | None = None,
        timeout: float = 300,
        reset: bool = True,
    ) -> Run:
        """Run ``argv`` in the namespace from a fresh client state (unless not ``reset``);
        time it; log the calls."""
        sb = self.sandbox
        if reset:
            self.reset_client_state()
        sb.clear_calls()
        wrapped = sb.wrap(argv)
        before = self.cpu()
        started = time.monotonic()
        done = subprocess.run(
            wrapped,
            env=dict(self.env() if env is None else env),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        ended = time.monotonic()
        after = self.cpu()
        calls = Counter(call.operation for call in sb.moto_calls())
        if self._proxy is None:
            raise RuntimeError("the world is not running")
        # The proxy writes its log line as the connection closes; give it a moment.
        time.sleep(0.002)
        events = read_events(self._proxy.events, started, ended + 0.05)
        return Run(
            argv=tuple(argv),
            seconds=ended - started,
            returncode=done.returncode,
            stdout=done.stdout,
            stderr=done.stderr,
            started=started,
            calls=dict(calls),
            events=tuple(events),
            foreign_cpu=after.foreign_since(before),
            steal=max(0.0, after.steal - before.steal),
        )

    def cpu(self) -> CpuSnapshot:
        """A :class:`CpuSnapshot` now."""
        with open("/proc/stat", encoding="ascii") as stat:
            values = [int(x) for x in stat.readline().split()[1:]]
        # user nice system idle iowait irq softirq steal ...
        busy = (values[0] + values[1] + values[2] + values[5] + values[6]) / _TICK
        steal = values[7] / _TICK if len(values) > 7 else 0.0
        own = 0.0
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
            usage = resource.getrusage(who)
            own += usage.ru_utime + usage.ru_stime
        pids = [r.process.pid for r in self.sandbox.registries.values()]
        if self._proxy is not None and self._proxy.pid is not None:
            pids.append(self._proxy.pid)
        own += sum(_process_cpu(pid) for pid in pids)
        return CpuSnapshot(busy=busy, steal=steal, own=own)

    def wait_quiet(self, max_wait: float, threshold: float = 0.15) -> tuple[float, float]:
        """Wait until other processes use less than ``threshold`` cores over one second.

        Gives up after ``max_wait`` seconds. Returns (seconds waited, last foreign load).
        """
        started = time.monotonic()
        while True:
            before = self.cpu()
            time.sleep(1.0)
            load = self.cpu().foreign_since(before)
            waited = time.monotonic() - started
            if load < threshold or waited >= max_wait:
                return waited, load

    def logged_in(self, hosts: Sequence[str]) -> int:
        """How many of ``hosts`` docker's config.json holds with the role's token."""
        auths = self.sandbox.docker_auths()
        expected = f"AWS:{moto_password(ROLE_ACCOUNT)}"
        return sum(1 for h in hosts if auths.get(h) == expected)
