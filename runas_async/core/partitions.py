"""AWS partitions (DNS suffixes, region patterns) read from botocore's own data.

botocore ships ``data/partitions.json``; reading that file directly keeps
``import botocore`` (and its start-up cost) off the paths that only parse
arguments.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from runas_async.core.errors import UsageError
from runas_async.core.sanitize import show

log = logging.getLogger(__name__)

MAX_TYPO = 2
"""A region unknown to its partition within this edit distance of a known one is a typo."""


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


def check_region(region: str, partitions: tuple[Partition, ...]) -> Partition | None:
    """:func:`partition_for_region`, after a look at whether ``region`` is a known one.

    A region its partition does not list (botocore's list: AWS adds regions) is taken, with a
    one-line note on stderr, unless it is a misspelling of a listed one: within
    :data:`MAX_TYPO` edits (``eu-wset-1``), and not a new number of a listed name
    (``eu-west-4`` may be new). A misspelling is a UsageError saying what was meant.
    """
    partition = partition_for_region(region, partitions)
    if partition is None or region in partition.regions:
        return partition
    stem = _stem(region)
    known = sorted(partition.regions)
    if all(_stem(r) != stem for r in known):
        close = sorted(
            (_distance(region, r), r) for r in known if abs(len(r) - len(region)) <= MAX_TYPO
        )
        if close and close[0][0] <= MAX_TYPO:
            raise UsageError(
                f"region {show(region)} is not a region of the {partition.name} partition; "
                f"did you mean {close[0][1]}?"
            )
    _note_unknown(region, partition.name)
    return partition


@functools.cache
def _note_unknown(region: str, partition: str) -> None:
    """Once per region and run."""
    log.warning(
        "runas-async: note: region %s is not among the %s partition's known regions; "
        "using it as given",
        show(region),
        partition,
    )


def _stem(region: str) -> str:
    """``eu-west`` of ``eu-west-1``: the name without its number."""
    return region.rstrip("0123456789").rstrip("-")


def _distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions)."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]
