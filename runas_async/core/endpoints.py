"""Parse and validate registry arguments. Pure: no I/O.

An ENDPOINT is either a bare 12-digit account number (that account's registry
in the profile's region) or a private ECR registry host in any form AWS uses:

- ``ACCOUNT.dkr.ecr.REGION.<partition dns suffix>`` (amazonaws.com,
  amazonaws.com.cn, amazonaws.eu, c2s.ic.gov, sc2s.sgov.gov, cloud.adc-e.uk,
  csp.hci.ic.gov)
- ``ACCOUNT.dkr.ecr-fips.REGION.<suffix>`` (FIPS)
- ``ACCOUNT.dkr-ecr.REGION.on.aws`` / ``...on.amazonwebservices.com.cn``
  (dual-stack, also ``dkr-ecr-fips``; in China also ``ACCOUNT.dkr.ecr.REGION.on...``)

or ECR Public: ``public.ecr.aws`` (and its dual-stack ``ecr-public.aws.com``),
optionally written as ``https://HOST``, ``HOST/`` or a pasted image reference
``HOST/repo/name:tag``. Suffixes come from botocore's partition data.
"""

from __future__ import annotations

import difflib
import re
import urllib.parse
from dataclasses import dataclass

from runas_async.core.errors import NoRegion, UsageError
from runas_async.core.models import Registry
from runas_async.core.partitions import Partition, check_region, partition_for_region
from runas_async.core.sanitize import show as show

ACCEPTED_FORMS = "a 12-digit account or ACCOUNT.dkr.ecr.REGION.amazonaws.com"
"""What an error says is expected when no closer form can be told from the input."""

CHINA = "aws-cn"
"""China's dual-stack registries are written both ``dkr-ecr`` and ``dkr.ecr`` before
``.REGION.on.amazonwebservices.com.cn`` (AWS's own credential helper accepts both)."""

PUBLIC_HOSTS = frozenset({"public.ecr.aws", "ecr-public.aws.com"})
PUBLIC_REGION = "us-east-1"
"""ECR Public's API lives in us-east-1 only."""

_ACCOUNT = re.compile(r"[0-9]{12}")
_DIGITS = re.compile(r"[0-9]+")
_HOST = re.compile(
    r"(?P<account>[0-9]{12})"
    r"\.(?P<kind>dkr\.ecr|dkr\.ecr-fips|dkr-ecr|dkr-ecr-fips)"
    r"\.(?P<region>[a-z]{2,}(?:-[a-z0-9]+)+)"
    r"\.(?P<suffix>[a-z0-9.-]+)"
)
_PRINTABLE = re.compile(r"[\x21-\x7e]+")
_SOME_ACCOUNT = re.compile(r"(?<![0-9])[0-9]{12}(?![0-9])")
_SOME_REGION = re.compile(r"[a-z]{2,}(?:-[a-z0-9]+)+")


@dataclass(frozen=True)
class AccountEndpoint:
    """A bare account number: its registry in the profile's region."""

    account: str
    raw: str


@dataclass(frozen=True)
class HostEndpoint:
    """A full registry host; it carries its own account and region."""

    registry: Registry
    raw: str


@dataclass(frozen=True)
class PublicEndpoint:
    """ECR Public: a token from the ecr-public API in us-east-1."""

    registry: Registry
    raw: str


Endpoint = AccountEndpoint | HostEndpoint | PublicEndpoint


def _reject(
    raw: str, reason: str, nearest: str | None = None, expected: str = ACCEPTED_FORMS
) -> UsageError:
    """One line naming the value (whole up to :data:`MAX_SHOWN` characters, else shortened
    in the middle: its start and its end stay), why it is not an endpoint and the nearest
    valid form."""
    tail = f"did you mean {nearest}?" if nearest else f"expected {expected}"
    return UsageError(f"invalid endpoint {show(raw)}: {reason}; {tail}")


def _nearest_host(text: str, partitions: tuple[Partition, ...]) -> str | None:
    """The registry host ``text`` most likely meant, from the account and region in it.

    None when it names neither: the message then lists the accepted forms.
    """
    account = _SOME_ACCOUNT.search(text)
    known = [r for p in partitions for r in sorted(p.regions)]
    region = next((r for r in sorted(known, key=len, reverse=True) if r in text), None)
    if region is None:
        typed = [m.group() for m in _SOME_REGION.finditer(text)]
        close = [c for t in typed for c in difflib.get_close_matches(t, known, n=1, cutoff=0.75)]
        region = close[0] if close else None
    if account is None and region is None:
        return None
    partition = partition_for_region(region, partitions) if region else None
    suffix = partition.dns_suffix if partition else "amazonaws.com"
    return f"{account.group() if account else 'ACCOUNT'}.dkr.ecr.{region or 'REGION'}.{suffix}"


def parse_endpoint(raw: str, partitions: tuple[Partition, ...]) -> Endpoint:
    """Parse one ENDPOINT argument, or raise UsageError naming it."""
    text = raw.strip()
    if not text:
        raise _reject(raw, "it is empty")
    if not _PRINTABLE.fullmatch(text):
        raise _reject(raw, "it has spaces, control or non-ASCII characters")
    if _DIGITS.fullmatch(text):
        if not _ACCOUNT.fullmatch(text):
            raise _reject(raw, f"an account number has 12 digits, this has {len(text)}")
        return AccountEndpoint(account=text, raw=raw)

    lowered = text.lower()
    if "://" in lowered:
        scheme, _, lowered = lowered.partition("://")
        if scheme != "https":
            raise _reject(
                raw,
                f"the scheme must be https, not {show(scheme, 12)}",
                expected="https://HOST or the HOST alone",
            )
    host, _, _path = lowered.partition("/")
    if not host:
        raise _reject(raw, "it has no host")
    if host in PUBLIC_HOSTS:
        return PublicEndpoint(
            registry=Registry(host=host, account=None, region=PUBLIC_REGION), raw=raw
        )
    return _private_host(raw, host, partitions)


def _private_host(raw: str, host: str, partitions: tuple[Partition, ...]) -> HostEndpoint:
    """A private registry's host (lowercase, no scheme or path), checked against partitions."""
    if len(host) > 253 or any(len(label) > 63 for label in host.split(".")):
        raise _reject(raw, "the host is longer than DNS allows")
    m = _HOST.fullmatch(host)
    if m is None:
        what = "it" if host == raw.strip().lower() else show(host, 24)
        raise _reject(raw, f"{what} is not an ECR registry host", _nearest_host(host, partitions))
    region = m["region"]
    try:
        partition = check_region(region, partitions)
    except UsageError as e:
        raise _reject(raw, str(e).partition("; ")[0], _nearest_host(host, partitions)) from None
    if partition is None:
        raise _reject(
            raw,
            f"{show(region, 24)} is not a region of any AWS partition",
            _nearest_host(host, partitions),
        )
    dualstack = m["kind"].startswith("dkr-ecr")
    expected = partition.ecr_dualstack_suffix if dualstack else partition.dns_suffix
    china_dualstack = (
        m["kind"] == "dkr.ecr"
        and partition.name == CHINA
        and m["suffix"] == partition.ecr_dualstack_suffix
    )
    if m["suffix"] != expected and not china_dualstack:
        suggestion = f"{m['account']}.{m['kind']}.{region}.{expected}"
        raise _reject(raw, f"{region} needs .{expected}", suggestion)
    return HostEndpoint(registry=Registry(host=host, account=m["account"], region=region), raw=raw)


def registry_for(account: str, region: str, partitions: tuple[Partition, ...]) -> Registry:
    """The standard registry host of an account in a region."""
    partition = check_region(region, partitions)
    if partition is None:
        raise NoRegion(f"region {show(region)} is not a region of any AWS partition")
    host = f"{account}.dkr.ecr.{region}.{partition.dns_suffix}"
    return Registry(host=host, account=account, region=region)


def parse_endpoints(raws: list[str], partitions: tuple[Partition, ...]) -> list[Endpoint]:
    """Parse every ENDPOINT; the first bad one raises."""
    return [parse_endpoint(raw, partitions) for raw in raws]


def registry_host(server_url: str) -> str:
    """The registry a server URL names, found as docker/cli's ``ConvertToHostname`` finds it
    (the scheme and the path dropped: ``https://HOST/v2/``, ``http://HOST``, ``HOST/repo``
    are HOST), with the default port and a trailing dot taken as the host itself
    (``HOST:443``, ``HOST.``)."""
    host = ""
    if "://" in server_url:
        try:
            parts = urllib.parse.urlsplit(server_url)
            hostname, port = parts.hostname, parts.port
        except ValueError:  # docker's url.Parse fails too: the fallback below
            hostname, port = None, None
        if hostname:
            host = hostname + (f":{port}" if port is not None else "")
    if not host:
        host = server_url.split("/", 1)[0]
    return host.removesuffix(":443").removesuffix(".")
