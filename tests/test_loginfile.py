"""The --file TOML loader: valid files, every kind of invalid one, and hypothesis properties."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runas_async.core.endpoints import AccountEndpoint, HostEndpoint, PublicEndpoint
from runas_async.core.errors import UsageError
from runas_async.core.loginfile import parse_login_file
from runas_async.core.partitions import load_partitions

PARTS = load_partitions()
HOST = "210987654321.dkr.ecr.eu-west-1.amazonaws.com"


def test_valid_file() -> None:
    """Entries become specs in order, with their registries parsed and regions kept."""
    text = (
        '[[login]]\nprofile = "dev"\n\n'
        f'[[login]]\nprofile = "prod"\nregistries = ["210987654321", "{HOST}", "public.ecr.aws"]\n'
        'region = "us-west-2"\n'
    )
    dev, prod = parse_login_file(text, "ci.toml", PARTS)
    assert (dev.profile, dev.region, dev.endpoints) == ("dev", None, ())
    assert dev.origin == "ci.toml: login[1]"
    assert prod.region == "us-west-2"
    kinds = [type(e) for e in prod.endpoints]
    assert kinds == [AccountEndpoint, HostEndpoint, PublicEndpoint]


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        pytest.param("", ["no [[login]] entries"], id="empty"),
        pytest.param("[login]\nprofile='a'", ["no [[login]] entries"], id="table-not-array"),
        pytest.param("login = [1]", ["login[1]", "expected a table"], id="not-a-table"),
        pytest.param("[[login]]\nprofile = ''", ["login[1]", "'profile'"], id="empty-profile"),
        pytest.param("[[login]]\nprofile = 3", ["login[1]", "'profile'"], id="profile-number"),
        pytest.param(
            "[[login]]\nprofile = 'a'\nregistries = 'x'", ["'registries' must be a list"], id="str"
        ),
        pytest.param(
            "[[login]]\nprofile = 'a'\nregistries = [1]", ["'registries' must be a list"], id="int"
        ),
        pytest.param(
            "[[login]]\nprofile = 'a'\nregistries = ['evil.com']",
            ["registries[1]", "'evil.com'"],
            id="bad-host",
        ),
        pytest.param("[[login]]\nprofile = 'a'\nregion = 7", ["region '7'"], id="region-number"),
        pytest.param("x = 1\n[[login]]\nprofile='a'", ["unknown top-level key 'x'"], id="extra"),
        pytest.param("[[login]]\nprofile = 'a'\nroles = []", ["unknown key 'roles'"], id="key"),
        pytest.param("[[login]\n", ["not valid TOML"], id="syntax"),
    ],
)
def test_invalid_files(text: str, needles: list[str]) -> None:
    """Each kind of invalid file: one line naming the file, the entry and the value."""
    with pytest.raises(UsageError) as info:
        parse_login_file(text, "ci.toml", PARTS)
    message = str(info.value)
    assert message.startswith("ci.toml: ")
    assert "\n" not in message
    for needle in needles:
        assert needle in message


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_is_parsed_or_refused(text: str) -> None:
    """Whatever the file holds, the loader returns specs or raises UsageError, nothing else."""
    try:
        parse_login_file(text, "f.toml", PARTS)
    except UsageError as e:
        assert "\n" not in str(e)


_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4),
    max_leaves=8,
)
_registry = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        [
            HOST,
            "210987654321",
            "public.ecr.aws",
            f"{HOST}.evil.com",
            "docker.io",
            f"https://{HOST}/x",
        ]
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {"profile": st.text(max_size=20)},
            optional={
                "registries": st.lists(_registry, max_size=4),
                "region": st.one_of(
                    st.sampled_from(["us-east-1", "cn-north-1"]), st.text(max_size=12)
                ),
                "other": _values,
            },
        ),
        max_size=4,
    )
)
def test_structured_entries_never_accept_a_non_ecr_host(entries: list[dict[str, object]]) -> None:
    """Random [[login]] entries: accepted registries are always ECR hosts or account numbers."""
    text = "".join(
        "[[login]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in e.items() if v is not None)
        for e in entries
    )
    try:
        specs = parse_login_file(text, "f.toml", PARTS)
    except UsageError as e:
        assert "\n" not in str(e)
        return
    for spec in specs:
        for ep in spec.endpoints:
            if isinstance(ep, AccountEndpoint):
                assert ep.account.isdigit() and len(ep.account) == 12
            else:
                host = ep.registry.host
                assert host in ("public.ecr.aws", "ecr-public.aws.com") or host.endswith(
                    (".amazonaws.com", ".amazonaws.com.cn", ".on.aws")
                )
