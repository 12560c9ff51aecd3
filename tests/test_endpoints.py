"""The ENDPOINT parser, the standard registry host of an account, and botocore's partitions."""

from __future__ import annotations

import json
import os
import re
import string
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, example, find, given, settings

from runas_async.core.endpoints import (
    AccountEndpoint,
    Endpoint,
    HostEndpoint,
    PublicEndpoint,
    parse_endpoint,
    registry_for,
)
from runas_async.core.errors import NoRegion, UsageError
from runas_async.core.models import Registry
from runas_async.core.partitions import Partition, load_partitions, partition_for_region

PARTITIONS = load_partitions()
ACCOUNT = "123456789012"
STD = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com"
DIGEST = "sha256:" + "0123456789abcdef" * 4
NEAREST_FORM = re.compile(r"; (expected .+|did you mean \S+\?)$")
"""Every rejection ends with the nearest valid form: a corrected host, or the accepted forms."""
SHOWN_PREFIX = 6
"""How much of a long input a message quotes at the least, escapes aside (``endpoints._reject``)."""
MAX_MESSAGE_CHARS = 400
"""A rejection message is one line of at most 160 characters, whatever the input."""

ALL_SUFFIXES = frozenset(
    suffix for p in PARTITIONS for suffix in (p.dns_suffix, p.ecr_dualstack_suffix)
)


def parse(raw: str) -> Endpoint:
    return parse_endpoint(raw, PARTITIONS)


def rejection(raw: str) -> str:
    """The message of the UsageError that ``raw`` must raise."""
    with pytest.raises(UsageError) as info:
        parse(raw)
    return str(info.value)


def quoted_prefix(raw: str, shown: int = SHOWN_PREFIX) -> str:
    """``repr`` of the input's first characters without the closing quote."""
    return repr(raw[: shown - 1])[:-1]


def quoted_starts(raw: str, shown: int) -> tuple[str, str]:
    """The quoted input's first characters as ``repr`` writes them in either quote: it
    picks ``"`` for a value holding a ``'`` and no ``"``, which the start alone may not show
    (``0'`` is written ``"0'"``)."""
    start = raw[: shown - 1]
    single = repr(start + '"')[:-2]  # a '"' inside: repr keeps "'" and escapes any "'"
    double = repr(start + "'")[:-2]  # a "'" inside: repr takes '"' (unless start has one)
    return single, double


# ---------------------------------------------------------------------------------------------
# Accepted
# ---------------------------------------------------------------------------------------------


def host_case(raw: str, host: str, region: str, id: str) -> object:
    return pytest.param(raw, Registry(host=host, account=ACCOUNT, region=region), id=id)


def same(host: str, region: str, id: str) -> object:
    """A row whose input is already the normalised host."""
    return host_case(host, host, region, id)


ACCEPTED_HOSTS = [
    # aws, including regions that look new
    same(STD, "us-east-1", "aws-us-east-1"),
    same(f"{ACCOUNT}.dkr.ecr.us-east-2.amazonaws.com", "us-east-2", "aws-us-east-2"),
    same(f"{ACCOUNT}.dkr.ecr.eu-central-2.amazonaws.com", "eu-central-2", "aws-eu-central-2"),
    same(f"{ACCOUNT}.dkr.ecr.ap-southeast-7.amazonaws.com", "ap-southeast-7", "aws-ap-southeast-7"),
    same(f"{ACCOUNT}.dkr.ecr.mx-central-1.amazonaws.com", "mx-central-1", "aws-mx-central-1"),
    same(f"{ACCOUNT}.dkr.ecr.il-central-1.amazonaws.com", "il-central-1", "aws-il-central-1"),
    same(f"{ACCOUNT}.dkr.ecr.ap-newplace-9.amazonaws.com", "ap-newplace-9", "aws-unlisted-region"),
    same(f"{ACCOUNT}.dkr.ecr.us-gov-west-1.amazonaws.com", "us-gov-west-1", "govcloud"),
    # other partitions
    same(f"{ACCOUNT}.dkr.ecr.cn-north-1.amazonaws.com.cn", "cn-north-1", "china-cn-north-1"),
    same(f"{ACCOUNT}.dkr.ecr.cn-northwest-1.amazonaws.com.cn", "cn-northwest-1", "china-northwest"),
    same(f"{ACCOUNT}.dkr.ecr.eusc-de-east-1.amazonaws.eu", "eusc-de-east-1", "eu-sovereign"),
    same(f"{ACCOUNT}.dkr.ecr.us-iso-east-1.c2s.ic.gov", "us-iso-east-1", "iso-c2s"),
    same(f"{ACCOUNT}.dkr.ecr.us-isob-east-1.sc2s.sgov.gov", "us-isob-east-1", "iso-b-sc2s"),
    same(f"{ACCOUNT}.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk", "eu-isoe-west-1", "iso-e-adc-e"),
    same(f"{ACCOUNT}.dkr.ecr.us-isof-south-1.csp.hci.ic.gov", "us-isof-south-1", "iso-f-hci"),
    # FIPS
    same(f"{ACCOUNT}.dkr.ecr-fips.us-east-1.amazonaws.com", "us-east-1", "fips-us-east-1"),
    same(f"{ACCOUNT}.dkr.ecr-fips.us-gov-west-1.amazonaws.com", "us-gov-west-1", "fips-govcloud"),
    # dual-stack
    same(f"{ACCOUNT}.dkr-ecr.us-east-1.on.aws", "us-east-1", "dualstack-us-east-1"),
    same(f"{ACCOUNT}.dkr-ecr-fips.us-east-1.on.aws", "us-east-1", "dualstack-fips"),
    same(f"{ACCOUNT}.dkr-ecr.us-gov-west-1.on.aws", "us-gov-west-1", "dualstack-govcloud"),
    same(
        f"{ACCOUNT}.dkr-ecr.cn-north-1.on.amazonwebservices.com.cn",
        "cn-north-1",
        "dualstack-china",
    ),
    same(
        f"{ACCOUNT}.dkr.ecr.cn-northwest-1.on.amazonwebservices.com.cn",
        "cn-northwest-1",
        "dualstack-china-dotted-spelling",
    ),
    # the ways people write or paste a host
    host_case(f"https://{STD}", STD, "us-east-1", "https-prefix"),
    host_case(f"https://{STD}/", STD, "us-east-1", "https-and-trailing-slash"),
    host_case(f"{STD}/", STD, "us-east-1", "trailing-slash"),
    host_case(f"HTTPS://{STD}", STD, "us-east-1", "upper-case-scheme"),
    host_case(STD.upper(), STD, "us-east-1", "upper-case-host"),
    host_case(f"HTTPS://{STD.upper()}/Repo", STD, "us-east-1", "all-upper-case"),
    host_case(f"{STD}/repo/name:tag", STD, "us-east-1", "image-reference-with-tag"),
    host_case(f"{STD}/a/b@{DIGEST}", STD, "us-east-1", "image-reference-with-digest"),
    host_case(f"https://{STD}/team/app:1.2.3", STD, "us-east-1", "https-image-reference"),
    host_case(f"  {STD}\n", STD, "us-east-1", "surrounding-whitespace"),
    host_case(f"\t{STD}/x:y \r\n", STD, "us-east-1", "whitespace-around-image-reference"),
]


@pytest.mark.parametrize(("raw", "expected"), ACCEPTED_HOSTS)
def test_accepts_registry_host(raw: str, expected: Registry) -> None:
    """Every host form AWS uses parses to its normalised host, account and region."""
    endpoint = parse(raw)

    assert endpoint == HostEndpoint(registry=expected, raw=raw)


@pytest.mark.parametrize(
    ("raw", "account"),
    [
        pytest.param(ACCOUNT, ACCOUNT, id="plain"),
        pytest.param("000000000001", "000000000001", id="leading-zeros-kept"),
        pytest.param("000000000000", "000000000000", id="all-zeros"),
        pytest.param(" 999999999999 ", "999999999999", id="surrounding-spaces"),
        pytest.param("\t012345678901\n", "012345678901", id="tab-and-newline-around"),
    ],
)
def test_accepts_bare_account(raw: str, account: str) -> None:
    """A bare 12-digit number is an account, kept as a string with its leading zeros."""
    assert parse(raw) == AccountEndpoint(account=account, raw=raw)


@pytest.mark.parametrize(
    ("raw", "host"),
    [
        pytest.param("public.ecr.aws", "public.ecr.aws", id="public"),
        pytest.param("https://PUBLIC.ECR.AWS/", "public.ecr.aws", id="https-upper-case"),
        pytest.param(" public.ecr.aws/team/app:1 ", "public.ecr.aws", id="image-reference"),
        pytest.param("ecr-public.aws.com", "ecr-public.aws.com", id="dualstack"),
    ],
)
def test_accepts_ecr_public(raw: str, host: str) -> None:
    """ECR Public is its own endpoint kind: no account, served from us-east-1."""
    assert parse(raw) == PublicEndpoint(
        registry=Registry(host=host, account=None, region="us-east-1"), raw=raw
    )


# ---------------------------------------------------------------------------------------------
# Rejected
# ---------------------------------------------------------------------------------------------

NOT_ECR = "is not an ECR registry host"
CONTROL = "has spaces, control or non-ASCII characters"

REJECTED = [
    # not a private ECR registry
    pytest.param("docker.io", NOT_ECR, id="docker-hub"),
    pytest.param("ghcr.io/x", "'ghcr.io' is not an ECR", id="ghcr"),
    pytest.param("public.ecr.aws.evil.com", NOT_ECR, id="ecr-public-as-subdomain"),
    pytest.param("x.public.ecr.aws", NOT_ECR, id="subdomain-of-ecr-public"),
    pytest.param("public.ecr.aws:443", NOT_ECR, id="ecr-public-with-port"),
    pytest.param("http://public.ecr.aws", "not 'http'", id="ecr-public-over-http"),
    pytest.param(f"{STD}.evil.com", f"did you mean {STD}?", id="ecr-host-as-subdomain"),
    pytest.param(f"evil.com/{STD}", "'evil.com' is not", id="ecr-host-in-path"),
    pytest.param(
        f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.co", f"did you mean {STD}?", id="typo-tld"
    ),
    pytest.param(
        f"{ACCOUNT}.dkr.ecr.cn-north-1.amazonaws.com",
        f"needs .amazonaws.com.cn; did you mean {ACCOUNT}.dkr.ecr.cn-north-1.amazonaws.com.cn?",
        id="china-region-global-suffix",
    ),
    pytest.param(
        f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com.cn",
        f"us-east-1 needs .amazonaws.com; did you mean {STD}?",
        id="global-region-china-suffix",
    ),
    pytest.param(
        f"{ACCOUNT}.dkr.ecr.us-iso-east-1.amazonaws.com",
        f"did you mean {ACCOUNT}.dkr.ecr.us-iso-east-1.c2s.ic.gov?",
        id="iso-region-global-suffix",
    ),
    pytest.param(
        f"{ACCOUNT}.dkr.ecr.eusc-de-east-1.amazonaws.com",
        "eusc-de-east-1 needs .amazonaws.eu;",
        id="eusc-region-global-suffix",
    ),
    pytest.param(
        f"{ACCOUNT}.dkr-ecr.us-east-1.amazonaws.com",
        f"did you mean {ACCOUNT}.dkr-ecr.us-east-1.on.aws?",
        id="dualstack-label-plain-suffix",
    ),
    pytest.param(
        f"{ACCOUNT}.dkr.ecr.us-east-1.on.aws",
        f"did you mean {STD}?",
        id="plain-label-dualstack-suffix",
    ),
    pytest.param(
        f"{ACCOUNT}.dkr-ecr.cn-north-1.on.aws",
        f"did you mean {ACCOUNT}.dkr-ecr.cn-north-1.on.amazonwebservices.com.cn?",
        id="china-dualstack-global-suffix",
    ),
    pytest.param(
        f"{ACCOUNT}.dkr.ecr.us-east-1.on.amazonwebservices.com.cn",
        f"us-east-1 needs .amazonaws.com; did you mean {STD}?",
        id="dotted-china-dualstack-suffix-outside-china",
    ),
    pytest.param(f"{ACCOUNT}.ecr.us-east-1.amazonaws.com", NOT_ECR, id="missing-dkr-label"),
    pytest.param(f"{STD}.", f"did you mean {STD}?", id="trailing-dot"),
    # wrong number of digits
    pytest.param("12345678901", "12 digits, this has 11", id="11-digits"),
    pytest.param("1234567890123", "12 digits, this has 13", id="13-digits"),
    pytest.param("1", "12 digits, this has 1", id="1-digit"),
    pytest.param(f"{ACCOUNT[:-1]}.dkr.ecr.us-east-1.amazonaws.com", NOT_ECR, id="11-digit-host"),
    pytest.param(f"{ACCOUNT}3.dkr.ecr.us-east-1.amazonaws.com", NOT_ECR, id="13-digit-host"),
    pytest.param(f"-{ACCOUNT}", NOT_ECR, id="negative-number"),
    pytest.param("123_456_789_012", NOT_ECR, id="digit-separators"),
    # regions
    pytest.param(f"{ACCOUNT}.dkr.ecr..amazonaws.com", NOT_ECR, id="empty-region-label"),
    pytest.param(
        f"{ACCOUNT}.dkr.ecr.xx-nowhere-1.amazonaws.com",
        "'xx-nowhere-1' is not a region of any AWS partition",
        id="region-of-no-partition",
    ),
    # URL parts that a registry argument has no use for
    pytest.param(f"http://{STD}", "scheme must be https, not 'http'", id="http-scheme"),
    pytest.param(f"HTTP://{STD}", "not 'http'", id="upper-case-http-scheme"),
    pytest.param(f"ftp://{STD}", "not 'ftp'", id="ftp-scheme"),
    pytest.param("https://", "it has no host", id="scheme-only"),
    pytest.param(f"//{STD}", "it has no host", id="scheme-relative"),
    pytest.param(f"{STD}:443", NOT_ECR, id="port"),
    pytest.param(f"https://{STD}:443/repo", NOT_ECR, id="https-with-port"),
    pytest.param(f"user@{STD}", NOT_ECR, id="userinfo"),
    pytest.param(f"https://user:pw@{STD}", NOT_ECR, id="https-userinfo"),
    # empty, whitespace and control characters
    pytest.param("", "it is empty", id="empty"),
    pytest.param("   ", "it is empty", id="spaces-only"),
    pytest.param("\t\n", "it is empty", id="whitespace-only"),
    pytest.param(f"{STD}\n/x", CONTROL, id="embedded-newline"),
    pytest.param(f"{ACCOUNT[:6]} {ACCOUNT[6:]}", CONTROL, id="embedded-space"),
    pytest.param(f"{ACCOUNT[:6]}\t{ACCOUNT[6:]}", CONTROL, id="embedded-tab"),
    pytest.param(f"{STD}\x00", CONTROL, id="nul"),
    pytest.param(f"{STD}\x1b[2J", CONTROL, id="terminal-escape"),
    pytest.param("١٢٣٤٥٦٧٨٩٠١٢", CONTROL, id="arabic-indic-digits"),
    pytest.param("１２３４５６７８９０１２", CONTROL, id="full-width-digits"),
    # shell metacharacters are data, never interpreted
    pytest.param("$(rm -rf /)", CONTROL, id="command-substitution"),
    pytest.param("`id`", NOT_ECR, id="backticks"),
    pytest.param("; ls", CONTROL, id="semicolon-command"),
    pytest.param(f"{STD};id", NOT_ECR, id="host-then-semicolon"),
    pytest.param(f"{STD}|id", NOT_ECR, id="host-then-pipe"),
]


@pytest.mark.parametrize(("raw", "reason"), REJECTED)
def test_rejects_with_usage_error_naming_the_input(raw: str, reason: str) -> None:
    """A bad ENDPOINT raises UsageError quoting it, saying why and listing the accepted forms."""
    message = rejection(raw)

    assert message.startswith(f"invalid endpoint {quoted_prefix(raw)}")
    assert reason in message
    assert NEAREST_FORM.search(message), message
    assert len(message) <= MAX_MESSAGE_CHARS, len(message)


@pytest.mark.parametrize(("raw", "reason"), REJECTED)
def test_rejection_message_is_one_line(raw: str, reason: str) -> None:
    """Every rejection message is exactly one line, whatever the input held."""
    message = rejection(raw)

    assert "\n" not in message
    assert len(message.splitlines()) == 1


LONG = 10_000

LONG_INPUTS = [
    pytest.param("a" * LONG, id="letters"),
    pytest.param("1" * LONG, id="digits"),
    pytest.param(f"https://{'a' * LONG}", id="https-then-letters"),
    pytest.param(f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.co/{'a' * LONG}", id="bad-host-long-path"),
    pytest.param(
        f"{'x' * LONG}://{STD}",
        id="long-scheme",
    ),
    pytest.param(
        f"{ACCOUNT}.dkr.ecr.xx-{'a' * LONG}-1.amazonaws.com",
        id="long-unknown-region",
    ),
    pytest.param(
        f"{ACCOUNT}.dkr.ecr.us-east-1.{'a' * LONG}",
        id="long-suffix",
    ),
]


@pytest.mark.parametrize("raw", LONG_INPUTS)
def test_long_input_gives_short_one_line_message(raw: str) -> None:
    """A 10,000-character argument is quoted by its start and end: the message stays short."""
    message = rejection(raw)

    assert len(message) <= MAX_MESSAGE_CHARS, len(message)
    assert "\n" not in message
    assert quoted_prefix(raw) in message
    assert NEAREST_FORM.search(message), message
    assert len(message) <= MAX_MESSAGE_CHARS, len(message)


@pytest.mark.parametrize(
    ("raw", "nearest"),
    [
        pytest.param(f"{ACCOUNT}.ecr.us-east-1.amazonaws.com", STD, id="missing-dkr"),
        pytest.param(f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.co", STD, id="typo-tld"),
        pytest.param(
            f"https://{ACCOUNT}.dkr.ecr.eu-west-1.aws.com/x",
            f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com",
            id="short-suffix",
        ),
        pytest.param(
            "dkr.ecr.eu-west-1.amazonaws.com",
            "ACCOUNT.dkr.ecr.eu-west-1.amazonaws.com",
            id="no-account",
        ),
        pytest.param(
            f"{ACCOUNT}.dkr.ecr.xx-nowhere-1.amazonaws.com",
            f"{ACCOUNT}.dkr.ecr.REGION.amazonaws.com",
            id="unknown-region",
        ),
        pytest.param(
            f"{ACCOUNT}.dkr.ecr.cn-north-1.amazonaws.com",
            f"{ACCOUNT}.dkr.ecr.cn-north-1.amazonaws.com.cn",
            id="china-suffix",
        ),
    ],
)
def test_rejection_names_the_nearest_valid_host(raw: str, nearest: str) -> None:
    """A near miss is answered with the host it most likely meant, account and region kept."""
    assert rejection(raw).endswith(f"; did you mean {nearest}?")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        pytest.param(
            "private.registry.com/foo/bar",
            "'private.registry.com' is not an ECR registry host",
            id="other-registry-with-path",
        ),
        pytest.param(
            f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com.evil.com",
            "eu-west-1 needs .amazonaws.com",
            id="suffix-after-suffix",
        ),
        pytest.param(
            f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com.example.org/very/long/repository/name:tag",
            "us-east-1 needs .amazonaws.com",
            id="long-image-reference",
        ),
    ],
)
def test_value_up_to_200_characters_is_quoted_whole(raw: str, reason: str) -> None:
    """The value is quoted whole (issue 20: the part that is wrong was the part cut off)."""
    message = rejection(raw)
    assert message.startswith(f"invalid endpoint {raw!r}: {reason}"), message


def test_longer_value_is_shortened_in_the_middle_keeping_start_and_end() -> None:
    """Past 200 characters the value keeps its start and its end, the middle elided."""
    raw = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com.{'a' * 300}.evil.com"
    message = rejection(raw)
    m = re.match(r"invalid endpoint '(.+)…(.+)': ", message)
    assert m is not None, message
    assert raw.startswith(m.group(1)) and raw.endswith(m.group(2))
    assert len(m.group(1)) + len(m.group(2)) + 1 == 200
    assert m.group(2).endswith(".evil.com")


def test_long_image_path_is_ignored_but_host_still_checked() -> None:
    """A long repository path after a valid host does not matter; the host alone decides."""
    raw = f"{STD}/{'a' * LONG}:{'b' * LONG}"

    assert parse(raw) == HostEndpoint(
        registry=Registry(host=STD, account=ACCOUNT, region="us-east-1"), raw=raw
    )


# ---------------------------------------------------------------------------------------------
# registry_for
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("region", "host"),
    [
        pytest.param("us-east-1", f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com", id="aws"),
        pytest.param("ap-southeast-7", f"{ACCOUNT}.dkr.ecr.ap-southeast-7.amazonaws.com", id="new"),
        pytest.param("us-gov-east-1", f"{ACCOUNT}.dkr.ecr.us-gov-east-1.amazonaws.com", id="gov"),
        pytest.param("cn-north-1", f"{ACCOUNT}.dkr.ecr.cn-north-1.amazonaws.com.cn", id="china"),
        pytest.param(
            "cn-northwest-1", f"{ACCOUNT}.dkr.ecr.cn-northwest-1.amazonaws.com.cn", id="china-nw"
        ),
        pytest.param("us-iso-east-1", f"{ACCOUNT}.dkr.ecr.us-iso-east-1.c2s.ic.gov", id="iso"),
        pytest.param(
            "us-isob-east-1", f"{ACCOUNT}.dkr.ecr.us-isob-east-1.sc2s.sgov.gov", id="iso-b"
        ),
        pytest.param(
            "eu-isoe-west-1", f"{ACCOUNT}.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk", id="iso-e"
        ),
        pytest.param(
            "us-isof-south-1", f"{ACCOUNT}.dkr.ecr.us-isof-south-1.csp.hci.ic.gov", id="iso-f"
        ),
        pytest.param("eusc-de-east-1", f"{ACCOUNT}.dkr.ecr.eusc-de-east-1.amazonaws.eu", id="eusc"),
    ],
)
def test_registry_for_uses_the_partition_suffix(region: str, host: str) -> None:
    """An account's standard registry in a region ends in that region's partition suffix."""
    registry = registry_for(ACCOUNT, region, PARTITIONS)

    assert registry == Registry(host=host, account=ACCOUNT, region=region)
    assert parse(registry.host) == HostEndpoint(registry=registry, raw=registry.host)


@pytest.mark.parametrize(
    "region",
    [
        pytest.param("xx-nowhere-1", id="unknown-prefix"),
        pytest.param("us-east", id="no-number"),
        pytest.param("", id="empty"),
        pytest.param("US-EAST-1", id="upper-case"),
    ],
)
def test_registry_for_unknown_region_raises_no_region(region: str) -> None:
    """A region no partition claims raises NoRegion naming the region."""
    with pytest.raises(NoRegion) as info:
        registry_for(ACCOUNT, region, PARTITIONS)

    assert repr(region) in str(info.value)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------

KNOWN_REGIONS = sorted(r for p in PARTITIONS for r in p.regions)


WRONG_FRAGMENTS: dict[str, st.SearchStrategy[str]] = {
    "scheme": st.sampled_from(["http://", "ftp://", "//", "https:///", "HTTPS:/"]),
    "account": st.one_of(
        st.from_regex(r"[0-9]{10,11}|[0-9]{13,14}", fullmatch=True),
        st.sampled_from(["", "12345678901a", "١٢٣٤٥٦٧٨٩٠١٢", "123456789012x"]),
    ),
    "kind": st.sampled_from(["ecr", "dkr.ecr.", "dkr_ecr", "dkr.ecr-fipz", "dkr", "dkr-ecr.x"]),
    "region": st.one_of(
        st.sampled_from(KNOWN_REGIONS),
        st.from_regex(r"[a-z]{2,5}(-[a-z0-9]{1,8}){1,3}", fullmatch=True),
        st.sampled_from(["", "us-east-1.", "us_east_1", "us-east-1:", "US-EAST"]),
    ),
    "suffix": st.one_of(
        st.sampled_from(sorted(ALL_SUFFIXES)),
        st.sampled_from(["amazonaws.co", "amazonaws.com.evil.com", "evil.com", "", "."]),
    ),
    "tail": st.sampled_from([":443", ".", "?x", " /x", "\n/x", ";id", "\x00", "@evil.com"]),
    "space": st.sampled_from(["\x0b", "\u00a0", "\u2028", "\x1b"]),
}
CASINGS: list[Callable[[str], str]] = [str.lower, str.upper, str.title, str.swapcase]


@st.composite
def ecr_like(draw: st.DrawFn) -> str:
    """A valid ECR host or image reference, with none, one or a few fragments made wrong."""
    wrong = draw(st.sets(st.sampled_from(sorted(WRONG_FRAGMENTS)), max_size=3))

    def pick(name: str, right: st.SearchStrategy[str]) -> str:
        return draw(WRONG_FRAGMENTS[name] if name in wrong else right)

    partition = draw(st.sampled_from(PARTITIONS))
    scheme = pick("scheme", st.sampled_from(["", "https://", "HTTPS://"]))
    account = pick("account", st.from_regex(r"[0-9]{12}", fullmatch=True))
    kind = pick("kind", st.sampled_from(["dkr.ecr", "dkr.ecr-fips", "dkr-ecr", "dkr-ecr-fips"]))
    region = pick("region", st.sampled_from(sorted(partition.regions)))
    dualstack = kind.startswith("dkr-ecr")
    right_suffix = partition.ecr_dualstack_suffix if dualstack else partition.dns_suffix
    suffix = pick("suffix", st.just(right_suffix))
    tail = pick("tail", st.sampled_from(["", "/", "/repo:tag", f"/a/b@{DIGEST}", "/x/y/z"]))
    space = pick("space", st.sampled_from(["", " ", "\t", "\n", "\r\n"]))
    text = f"{space}{scheme}{account}.{kind}.{region}.{suffix}{tail}{space}"
    text = draw(st.sampled_from(CASINGS))(text)
    if draw(st.booleans()) and draw(st.booleans()):
        return f"{space}{account}{space}"  # a bare number now and then
    return text


ANY_INPUT = st.one_of(st.text(), ecr_like())


def check_accepted(raw: str, endpoint: Endpoint) -> None:
    """What every accepted endpoint must satisfy."""
    if isinstance(endpoint, AccountEndpoint):
        assert endpoint.account == raw.strip()
        assert len(endpoint.account) == 12
        assert set(endpoint.account) <= set(string.digits)
        return
    if isinstance(endpoint, PublicEndpoint):
        assert endpoint.registry.host in {"public.ecr.aws", "ecr-public.aws.com"}
        return
    host = endpoint.registry.host
    assert any(host.endswith(f".{suffix}") for suffix in ALL_SUFFIXES), host
    assert len(host) > 13
    assert set(host[:12]) <= set(string.digits)
    assert host[12] == "."
    assert host[:12] == endpoint.registry.account
    assert f".{endpoint.registry.region}." in host
    assert parse(host) == HostEndpoint(registry=endpoint.registry, raw=host)


def check_rejected(raw: str, message: str) -> None:
    """What every rejection message must satisfy."""
    assert len(message.splitlines()) == 1, message
    assert "\n" not in message
    assert any(start in message for start in quoted_starts(raw, 2)), message
    assert NEAREST_FORM.search(message), message
    assert len(message) <= MAX_MESSAGE_CHARS, len(message)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(raw=ANY_INPUT)
def test_property_only_usage_error_escapes(raw: str) -> None:
    """For any string at all, parse_endpoint returns an endpoint or raises UsageError."""
    try:
        endpoint = parse(raw)
    except UsageError:
        return
    assert isinstance(endpoint, AccountEndpoint | HostEndpoint | PublicEndpoint)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(raw=ecr_like())
def test_property_accepted_hosts_are_well_formed_and_reparse_identically(raw: str) -> None:
    """An accepted host ends in a partition suffix, starts with 12 digits and re-parses the same."""
    try:
        endpoint = parse(raw)
    except UsageError:
        return
    check_accepted(raw, endpoint)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(raw=ANY_INPUT)
@example(raw="0'")  # repr quotes it with '"': the flake of issue 18
@example(raw="'")
@example(raw="'\"")
def test_property_rejections_are_one_line_and_quote_the_input(raw: str) -> None:
    """A rejection message is one line and contains the quoted input (or its start)."""
    try:
        parse(raw)
    except UsageError as e:
        check_rejected(raw, str(e))


def test_hypothesis_has_no_database_and_is_derandomized_in_ci() -> None:
    """No example database (a failed run must not fail every later one, nor leave
    ``.hypothesis/``), and under CI the examples are the same on every run."""
    assert settings().database is None
    assert settings.get_profile("ci").derandomize
    assert settings.get_profile("ci").database is None
    assert settings().derandomize == bool(os.environ.get("CI"))
    storage = Path(os.environ["HYPOTHESIS_STORAGE_DIRECTORY"]).resolve()
    assert not storage.is_relative_to(Path(__file__).resolve().parent.parent)


FIND = settings(database=None, max_examples=5_000)


def test_ecr_like_strategy_reaches_both_outcomes() -> None:
    """The generated inputs include accepted hosts and rejected ones, so the properties bite."""

    def accepted_host(raw: str) -> bool:
        try:
            return isinstance(parse(raw), HostEndpoint)
        except UsageError:
            return False

    def accepted_fips_dualstack(raw: str) -> bool:
        return accepted_host(raw) and ".dkr-ecr-fips." in raw.lower()

    host = find(ecr_like(), accepted_host, settings=FIND)
    fips = find(ecr_like(), accepted_fips_dualstack, settings=FIND)
    bad = find(ecr_like(), lambda raw: not accepted_host(raw), settings=FIND)

    check_accepted(host, parse(host))
    check_accepted(fips, parse(fips))
    check_rejected(bad, rejection(bad))


# ---------------------------------------------------------------------------------------------
# Partitions
# ---------------------------------------------------------------------------------------------


def botocore_partitions() -> dict[str, dict[str, str]]:
    """botocore's own partition outputs, read independently of runas_async."""
    data = json.loads(files("botocore").joinpath("data", "partitions.json").read_text("utf-8"))
    return {p["id"]: p["outputs"] for p in data["partitions"]}


def by_name(name: str) -> Partition:
    (partition,) = (p for p in PARTITIONS if p.name == name)
    return partition


def test_partitions_come_from_botocore() -> None:
    """Every partition botocore ships is loaded, with botocore's DNS suffixes, none invented."""
    ours = {p.name: p.dns_suffix for p in PARTITIONS}
    theirs = botocore_partitions()

    assert ours == {name: outputs["dnsSuffix"] for name, outputs in theirs.items()}
    assert {
        "aws",
        "aws-cn",
        "aws-us-gov",
        "aws-iso",
        "aws-iso-b",
        "aws-iso-e",
        "aws-iso-f",
        "aws-eusc",
    } <= set(ours)


@pytest.mark.parametrize(
    ("name", "dns_suffix", "ecr_dualstack_suffix"),
    [
        pytest.param("aws", "amazonaws.com", "on.aws", id="aws"),
        pytest.param("aws-us-gov", "amazonaws.com", "on.aws", id="aws-us-gov"),
        pytest.param("aws-cn", "amazonaws.com.cn", "on.amazonwebservices.com.cn", id="aws-cn"),
        pytest.param("aws-iso", "c2s.ic.gov", "on.aws.ic.gov", id="aws-iso"),
        pytest.param("aws-iso-b", "sc2s.sgov.gov", "on.aws.scloud", id="aws-iso-b"),
        pytest.param("aws-iso-e", "cloud.adc-e.uk", "on.cloud-aws.adc-e.uk", id="aws-iso-e"),
        pytest.param("aws-iso-f", "csp.hci.ic.gov", "on.aws.hci.ic.gov", id="aws-iso-f"),
        pytest.param("aws-eusc", "amazonaws.eu", "on.amazonwebservices.eu", id="aws-eusc"),
    ],
)
def test_partition_suffixes(name: str, dns_suffix: str, ecr_dualstack_suffix: str) -> None:
    """Each partition has its DNS suffix and ECR's dual-stack (on.) suffix."""
    partition = by_name(name)

    assert partition.dns_suffix == dns_suffix
    assert partition.ecr_dualstack_suffix == ecr_dualstack_suffix


def test_aws_partition_is_tried_last() -> None:
    """The loose aws pattern is the fallback, after every more specific partition."""
    assert PARTITIONS[-1].name == "aws"
    assert [p.name for p in PARTITIONS].count("aws") == 1


@pytest.mark.parametrize(
    ("region", "name"),
    [
        pytest.param("us-east-1", "aws", id="us-east-1"),
        pytest.param("il-central-1", "aws", id="il-central-1"),
        pytest.param("ap-newplace-9", "aws", id="unlisted-aws-by-pattern"),
        pytest.param("us-gov-west-1", "aws-us-gov", id="us-gov-west-1"),
        pytest.param("us-gov-newplace-3", "aws-us-gov", id="unlisted-gov-by-pattern"),
        pytest.param("cn-north-1", "aws-cn", id="cn-north-1"),
        pytest.param("cn-northwest-1", "aws-cn", id="cn-northwest-1"),
        pytest.param("us-iso-east-1", "aws-iso", id="us-iso-east-1"),
        pytest.param("us-isob-east-1", "aws-iso-b", id="us-isob-east-1"),
        pytest.param("eu-isoe-west-1", "aws-iso-e", id="eu-isoe-west-1"),
        pytest.param("us-isof-south-1", "aws-iso-f", id="us-isof-south-1"),
        pytest.param("eusc-de-east-1", "aws-eusc", id="eusc-de-east-1"),
    ],
)
def test_partition_for_region(region: str, name: str) -> None:
    """A region maps to the partition that lists it or whose pattern it matches."""
    partition = partition_for_region(region, PARTITIONS)

    assert partition is not None
    assert partition.name == name


@pytest.mark.parametrize(
    "region",
    [
        pytest.param("xx-nowhere-1", id="unknown-prefix"),
        pytest.param("us-east", id="no-number"),
        pytest.param("aws-global", id="global-pseudo-region"),
        pytest.param("", id="empty"),
    ],
)
def test_partition_for_unknown_region_is_none(region: str) -> None:
    """A region no partition lists or matches belongs to none."""
    assert partition_for_region(region, PARTITIONS) is None
