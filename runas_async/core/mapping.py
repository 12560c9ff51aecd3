"""Which profile serves which registry, for the credential helper: the same ``[[login]]``
tables as ``--file``, where a registry may also be a pattern. Pure: parses text, no I/O.

::

    [[login]]
    profile = "prod"
    registries = ["210987654321", "*.dkr.ecr.eu-west-1.amazonaws.com"]

    [[login]]
    profile = "dev"                  # no registries: the profile's own registry

A pattern has ``*`` in place of whole DNS labels, each matching one label:
``*.dkr.ecr.eu-west-1.amazonaws.com`` (every account in eu-west-1) or
``210987654321.dkr.ecr.*.amazonaws.com`` (one account, every region). The tables are tried
in order and **the first that matches wins**; a registry that matches none is served with
the default credentials (``$AWS_PROFILE``, or botocore's chain).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runas_async.core.endpoints import (
    AccountEndpoint,
    Endpoint,
    HostEndpoint,
    PublicEndpoint,
    parse_endpoint,
    registry_for,
    show,
)
from runas_async.core.errors import UsageError
from runas_async.core.loginfile import parse_tables
from runas_async.core.partitions import Partition, partition_for_region

_LABEL = re.compile(r"[a-z0-9-]+|\*")


@dataclass(frozen=True)
class Rule:
    """One ``[[login]]`` table: a profile and the registries it serves."""

    profile: str
    region: str | None
    endpoints: tuple[Endpoint, ...] = ()
    patterns: tuple[str, ...] = ()
    origin: str = ""

    @property
    def own_registry(self) -> bool:
        """No registries named: the table serves its profile's own registry."""
        return not self.endpoints and not self.patterns


Lookup = Callable[[str], str | None]
"""A profile's region or account, when it can be known."""


def matches(
    rule: Rule,
    host: str,
    partitions: tuple[Partition, ...],
    region_of: Lookup,
    account_of: Lookup,
) -> bool:
    """Whether ``rule`` serves ``host`` (lowercase, no scheme). ``account_of`` is asked only
    for a table with no registries, and only when nothing before it matched."""
    if any(pattern_matches(p, host) for p in rule.patterns):
        return True
    region = rule.region or region_of(rule.profile)
    for ep in rule.endpoints:
        if isinstance(ep, HostEndpoint | PublicEndpoint) and ep.registry.host == host:
            return True
        if (
            isinstance(ep, AccountEndpoint)
            and region
            and _host_of(ep.account, region, partitions) == host
        ):
            return True
    if rule.own_registry and region:
        account = account_of(rule.profile)
        return account is not None and _host_of(account, region, partitions) == host
    return False


def _host_of(account: str, region: str, partitions: tuple[Partition, ...]) -> str | None:
    if partition_for_region(region, partitions) is None:
        return None
    return registry_for(account, region, partitions).host


def pattern_matches(pattern: str, host: str) -> bool:
    """``*`` stands for exactly one DNS label; every other label must be equal."""
    want, got = pattern.split("."), host.split(".")
    return len(want) == len(got) and all(w in ("*", g) for w, g in zip(want, got, strict=True))


def concrete_hosts(
    rules: list[Rule], partitions: tuple[Partition, ...], region_of: Lookup
) -> list[str]:
    """Every registry the tables name outright (no patterns, no own registries)."""
    hosts: dict[str, None] = {}
    for rule in rules:
        region = rule.region or region_of(rule.profile)
        for ep in rule.endpoints:
            if isinstance(ep, HostEndpoint | PublicEndpoint):
                hosts[ep.registry.host] = None
            elif region and (host := _host_of(ep.account, region, partitions)):
                hosts[host] = None
    return list(hosts)


def parse_mapping(text: str, name: str, partitions: tuple[Partition, ...]) -> list[Rule]:
    """Every ``[[login]]`` table, checked as ``--file``'s are (loginfile.py), patterns
    allowed; an error names the file, the entry and the value. No tables: no rules."""
    tables = parse_tables(text, name, partitions, pattern=check_pattern, required=False)
    return [Rule(t.profile, t.region, t.endpoints, t.patterns, t.origin) for t in tables]


def check_pattern(value: str) -> str:
    """A registry pattern, lowercased; UsageError unless ``*`` stands for whole labels of an
    ECR registry host."""
    pattern = value.strip().lower()
    labels = pattern.split(".")
    if not all(_LABEL.fullmatch(label) for label in labels) or len(labels) < 5:
        raise UsageError(
            f"invalid pattern {show(value)}: '*' must stand for whole DNS labels, as in "
            "*.dkr.ecr.eu-west-1.amazonaws.com"
        )
    if labels[1:3] != ["dkr", "ecr"] and labels[1] not in ("dkr-ecr", "dkr-ecr-fips"):
        if labels[1:3] != ["dkr", "ecr-fips"]:
            raise UsageError(f"invalid pattern {show(value)}: not an ECR registry host pattern")
    return pattern


HEADER = "Which profile serves which registry (runas-async's credential helper)."

Served = list[tuple[str | None, list[str]]]
"""Registry hosts by the profile that serves them (None: the default credentials)."""


def edit_mapping(
    text: str, served: Served, remove: bool, name: str, partitions: tuple[Partition, ...]
) -> str:
    """``text`` (registries.toml) with each profile's hosts in a table of its own, first
    (the first match wins), and those hosts taken out of every other table; with ``remove``
    (or for the default credentials, which need no table) only taken out. Edited with
    tomlkit, so the user's comments, order and layout stay. ``text`` is checked first
    (:func:`parse_mapping`): an invalid file is a UsageError and nothing is changed.
    """
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    parse_mapping(text, name, partitions)
    try:
        doc = tomlkit.parse(text)
    except (TOMLKitError, RecursionError) as e:
        raise UsageError(f"{name}: not valid TOML: {e}") from e
    if not text.strip():
        doc.add(tomlkit.comment(HEADER))
    tables = doc.get("login")
    if not isinstance(tables, tomlkit.items.AoT):
        tables = tomlkit.aot()
        for entry in doc.pop("login", []):
            tables.append(entry)
        doc.append("login", tables)
    for profile, hosts in served:
        _drop_hosts(tables, set(hosts), partitions)
        if not remove and profile is not None:
            table = tomlkit.table()
            table["profile"] = profile
            table["registries"] = hosts
            table.add(tomlkit.nl())
            tables.insert(0, table)
    if not tables:
        del doc["login"]
    return tomlkit.dumps(doc)


def _drop_hosts(tables: list[Any], gone: set[str], partitions: tuple[Partition, ...]) -> None:
    """Take ``gone`` out of each table's registries; a table left with none goes."""
    for i in reversed(range(len(tables))):
        registries = tables[i].get("registries")
        if not registries:
            continue  # the profile's own registry: no hosts named
        for j in reversed(range(len(registries))):
            if _names_host(str(registries[j]), gone, partitions):
                del registries[j]
        if not registries:
            del tables[i]


def _names_host(value: str, gone: set[str], partitions: tuple[Partition, ...]) -> bool:
    if "*" in value:
        return False
    try:
        ep = parse_endpoint(value, partitions)
    except UsageError:
        return False
    return isinstance(ep, HostEndpoint | PublicEndpoint) and ep.registry.host in gone
