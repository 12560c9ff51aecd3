"""AWS partitions (DNS suffixes, region patterns) read from botocore's own data.

botocore ships ``data/partitions.json``; reading that file directly keeps
``import botocore`` (and its start-up cost) off the paths that only parse
arguments.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Partition:
    """One AWS partition, with the ECR registry suffixes derived from it."""

    name: str
    dns_suffix: str
    dualstack_suffix: str
    region_regex: re.Pattern[str]
    regions: frozenset[str]

    @property
    def ecr_dualstack_suffix(self) -> str:
        """ECR's dual-stack registries live under ``on.`` where APIs use ``api.``.

        ``api.aws`` -> ``on.aws``; ``api.amazonwebservices.com.cn`` ->
        ``on.amazonwebservices.com.cn``.
        """
        rest = self.dualstack_suffix.removeprefix("api.")
        return f"on.{rest}"


def parse_partitions(data: dict[str, object]) -> tuple[Partition, ...]:
    """Build partitions from the parsed ``partitions.json`` document."""
    out: list[Partition] = []
    raw = data.get("partitions")
    if not isinstance(raw, list):
        raise ValueError("partitions.json has no 'partitions' list")
    for part in raw:
        outputs = part["outputs"]
        out.append(
            Partition(
                name=part["id"],
                dns_suffix=outputs["dnsSuffix"],
                dualstack_suffix=outputs.get("dualStackDnsSuffix", outputs["dnsSuffix"]),
                region_regex=re.compile(part["regionRegex"]),
                regions=frozenset(r for r in part.get("regions", {}) if not r.endswith("-global")),
            )
        )
    return tuple(out)


def _botocore_data_dir() -> Path:
    spec = importlib.util.find_spec("botocore")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("botocore is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


@functools.cache
def load_partitions() -> tuple[Partition, ...]:
    """botocore's partitions, most specific first (``aws`` is the fallback)."""
    with (_botocore_data_dir() / "partitions.json").open(encoding="utf-8") as f:
        parts = parse_partitions(json.load(f))
    # The aws partition's pattern is the loosest; try the others first.
    return tuple(sorted(parts, key=lambda p: p.name == "aws"))


def partition_for_region(region: str, partitions: tuple[Partition, ...]) -> Partition | None:
    """The partition a region belongs to, or None when no partition claims it."""
    for part in partitions:
        if region in part.regions:
            return part
    for part in partitions:
        if part.region_regex.fullmatch(region):
            return part
    return None
