"""The ``--file`` TOML: a list of ``[[login]]`` tables. Pure: parses text, no I/O.

::

    [[login]]
    profile = "prod"
    registries = ["210987654321", "public.ecr.aws"]   # optional: default, the profile's own
    region = "eu-west-1"                              # optional: default, the profile's

The whole file is validated before anything runs; an error names the file,
the entry and the bad value.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runas_async.core.endpoints import Endpoint, parse_endpoint
from runas_async.core.errors import UsageError
from runas_async.core.partitions import Partition, check_region
from runas_async.core.plan import LoginSpec
from runas_async.core.sanitize import show

_KEYS = frozenset({"profile", "registries", "region"})

Pattern = Callable[[str], str]
"""Checks a registry pattern (``*`` for DNS labels) and returns it normalised."""


@dataclass(frozen=True)
class Table:
    """One ``[[login]]`` table, checked; ``origin`` is ``FILE: login[N]``."""

    profile: str
    region: str | None
    endpoints: tuple[Endpoint, ...]
    patterns: tuple[str, ...]
    origin: str


def parse_login_file(text: str, name: str, partitions: tuple[Partition, ...]) -> list[LoginSpec]:
    """Every ``[[login]]`` entry as a LoginSpec (region None: the profile's own)."""
    return [
        LoginSpec(t.profile, t.region, t.endpoints, origin=t.origin)
        for t in parse_tables(text, name, partitions)
    ]


def parse_tables(
    text: str,
    name: str,
    partitions: tuple[Partition, ...],
    *,
    pattern: Pattern | None = None,
    required: bool = True,
) -> list[Table]:
    """Every ``[[login]]`` table of ``text`` (the file ``name``), checked.

    ``pattern``: registries with ``*`` are patterns, checked by it (the credential helper's
    registries.toml); without it they are endpoints like any other. ``required``: a file
    with no tables is an error (``--file``); else it is an empty list.
    """
    doc = load_toml(text, name)
    unknown = sorted(set(doc) - {"login"})
    if unknown:
        raise UsageError(
            f"{name}: unknown top-level key {show(unknown[0])}; expected [[login]] tables"
        )
    entries = doc.get("login", [])
    if not isinstance(entries, list) or (required and not entries):
        raise UsageError(f"{name}: no [[login]] entries")
    return [
        _table(entry, f"{name}: login[{i}]", partitions, pattern)
        for i, entry in enumerate(entries, start=1)
    ]


def load_toml(text: str, name: str) -> dict[str, Any]:
    """``text`` as TOML; invalid TOML, and nesting deeper than Python's stack allows (far
    deeper than any ``[[login]]`` table needs), are a one-line UsageError naming ``name``."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{name}: not valid TOML: {e}") from e
    except RecursionError:
        raise UsageError(f"{name}: not valid TOML: nested too deeply") from None


def _table(
    entry: object, where: str, partitions: tuple[Partition, ...], pattern: Pattern | None
) -> Table:
    if not isinstance(entry, dict):
        raise UsageError(f"{where}: expected a table, got {show(str(entry))}")
    extra = sorted(set(entry) - _KEYS)
    if extra:
        raise UsageError(
            f"{where}: unknown key {show(extra[0])}; expected profile, registries, region"
        )
    profile = entry.get("profile")
    if not isinstance(profile, str) or not profile.strip():
        raise UsageError(f"{where}: 'profile' must be a non-empty string")
    region = entry.get("region")
    if region is not None and (
        not isinstance(region, str) or check_region(region, partitions) is None
    ):
        raise UsageError(
            f"{where} (profile {show(profile)}): region {show(str(region))} is not a region "
            "of any AWS partition"
        )
    endpoints, patterns = _registries(
        entry, f"{where} (profile {show(profile)})", partitions, pattern
    )
    return Table(profile, region, endpoints, patterns, where)


def _registries(
    entry: dict[str, Any], where: str, partitions: tuple[Partition, ...], pattern: Pattern | None
) -> tuple[tuple[Endpoint, ...], tuple[str, ...]]:
    raw = entry.get("registries", [])
    if not isinstance(raw, list) or not all(isinstance(r, str) for r in raw):
        raise UsageError(f"{where}: 'registries' must be a list of strings")
    endpoints: list[Endpoint] = []
    patterns: list[str] = []
    for j, value in enumerate(raw, start=1):
        try:
            if pattern is not None and "*" in value:
                patterns.append(pattern(value))
            else:
                endpoints.append(parse_endpoint(value, partitions))
        except UsageError as e:
            raise UsageError(f"{where} registries[{j}]: {e}") from e
    return tuple(endpoints), tuple(patterns)
