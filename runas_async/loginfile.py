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

from runas_async.endpoints import parse_endpoint, show
from runas_async.errors import UsageError
from runas_async.partitions import Partition, partition_for_region
from runas_async.plan import LoginSpec

_KEYS = frozenset({"profile", "registries", "region"})


def parse_login_file(text: str, name: str, partitions: tuple[Partition, ...]) -> list[LoginSpec]:
    """Every ``[[login]]`` entry as a LoginSpec (region None: the profile's own)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{name}: not valid TOML: {e}") from e
    unknown = sorted(set(doc) - {"login"})
    if unknown:
        raise UsageError(f"{name}: unknown top-level key {unknown[0]!r}; expected [[login]] tables")
    entries = doc.get("login")
    if not isinstance(entries, list) or not entries:
        raise UsageError(f"{name}: no [[login]] entries")
    specs = []
    for i, entry in enumerate(entries, start=1):
        where = f"{name}: login[{i}]"
        if not isinstance(entry, dict):
            raise UsageError(f"{where}: expected a table, got {show(str(entry))}")
        extra = sorted(set(entry) - _KEYS)
        if extra:
            raise UsageError(
                f"{where}: unknown key {extra[0]!r}; expected profile, registries, region"
            )
        profile = entry.get("profile")
        if not isinstance(profile, str) or not profile.strip():
            raise UsageError(f"{where}: 'profile' must be a non-empty string")
        region = entry.get("region")
        if region is not None and (
            not isinstance(region, str) or partition_for_region(region, partitions) is None
        ):
            raise UsageError(
                f"{where} (profile {profile!r}): region {show(str(region))} is not a region "
                "of any AWS partition"
            )
        raw = entry.get("registries", [])
        if not isinstance(raw, list) or not all(isinstance(r, str) for r in raw):
            raise UsageError(
                f"{where} (profile {profile!r}): 'registries' must be a list of strings"
            )
        endpoints = []
        for j, value in enumerate(raw, start=1):
            try:
                endpoints.append(parse_endpoint(value, partitions))
            except UsageError as e:
                raise UsageError(f"{where} (profile {profile!r}) registries[{j}]: {e}") from e
        specs.append(LoginSpec(profile, region, tuple(endpoints), origin=where))
    return specs
