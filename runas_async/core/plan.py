"""The plan of a run: every registry to log into, grouped by the token request serving it.

Pure: no anyio, no I/O, no botocore. :func:`plan_logins` turns what the user asked for (one
:class:`LoginSpec` per profile) into a :class:`Plan`; the engine (orchestrate.py) runs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from runas_async.core.endpoints import AccountEndpoint, Endpoint, PublicEndpoint, registry_for
from runas_async.core.errors import NoRegion
from runas_async.core.models import Target, TokenKey
from runas_async.core.partitions import Partition, check_region
from runas_async.core.sanitize import show


@dataclass(frozen=True)
class Plan:
    """Every registry to log into, grouped by the token request that serves it."""

    targets: tuple[Target, ...]
    partitions: tuple[Partition, ...] = ()

    @property
    def keys(self) -> tuple[TokenKey, ...]:
        return tuple(dict.fromkeys(t.key for t in self.targets))

    def targets_for(self, key: TokenKey) -> tuple[Target, ...]:
        return tuple(t for t in self.targets if t.key == key)


@dataclass(frozen=True)
class LoginSpec:
    """One profile's part of a run: its region and the endpoints asked of it.

    ``origin`` says where it came from, for messages ("" for the command line,
    ``FILE: login[N]`` for an entry of a --file). ``explicit`` is False when no profile
    was named: the default credentials (botocore's chain, ``AWS_PROFILE`` included) are
    used, and ``profile`` is only the name they are shown under.
    """

    profile: str
    region: str | None
    endpoints: tuple[Endpoint, ...] = ()
    origin: str = ""
    explicit: bool = True


def plan_logins(specs: Sequence[LoginSpec], partitions: tuple[Partition, ...]) -> Plan:
    """Resolve every spec's endpoints against its region; each registry appears once.

    A spec with no endpoints stands for its profile's own registry (account
    from STS at run time). The same registry asked twice, by one profile or by
    several, is logged into once, by the first that asked.
    """
    seen: dict[object, Target] = {}
    for spec in specs:
        where = f"{spec.origin}: " if spec.origin else ""
        if not spec.endpoints:
            if spec.region is None:
                raise NoRegion(where + _no_region(spec.profile, "its own registry"))
            if check_region(spec.region, partitions) is None:
                raise NoRegion(
                    f"{where}region {show(spec.region)} of profile {show(spec.profile)} is not a "
                    "region of any AWS partition"
                )
            key = TokenKey(spec.profile, spec.region)
            seen.setdefault(key, Target(key=key, registry=None))
        for ep in spec.endpoints:
            if isinstance(ep, AccountEndpoint):
                if spec.region is None:
                    raise NoRegion(where + _no_region(spec.profile, f"account {ep.account}"))
                registry = registry_for(ep.account, spec.region, partitions)
            else:
                registry = ep.registry
            public = isinstance(ep, PublicEndpoint)
            key = TokenKey(spec.profile, registry.region, public=public)
            seen.setdefault(registry.host, Target(key=key, registry=registry))
    return Plan(targets=tuple(seen.values()), partitions=partitions)


def _no_region(profile: str, what: str) -> str:
    return (
        f"profile {show(profile)} has no region, needed for {what}: "
        "pass --region, set AWS_REGION, or add region = ... to the profile"
    )
