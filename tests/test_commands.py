"""From what was asked to what runs: [PROFILE] [ENDPOINT ...], -p and --file as LoginSpecs."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from runas_async.aws.config import AwsFiles
from runas_async.cli.context import specs_for
from runas_async.core.clients import DEFAULT_CLIENT
from runas_async.core.endpoints import AccountEndpoint, HostEndpoint
from runas_async.core.errors import ConfigError
from runas_async.core.options import Targets
from runas_async.core.partitions import load_partitions

PARTITIONS = load_partitions()
ACCOUNT = "012345678901"
HOST = f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com"
FILES = AwsFiles(
    config={
        "dev": {"region": "us-east-1"},
        "role": {"role_arn": "arn:aws:iam::210987654321:role/ci", "source_profile": "dev"},
        "web": {"role_arn": "arn:aws:iam::310987654321:role/gh", "web_identity_token_file": "t"},
        "sso": {"sso_account_id": "410987654321", "sso_session": "s"},
        ACCOUNT: {"region": "us-west-2"},
    },
    credentials={"keys": {"aws_access_key_id": "AKIA"}},
)

Row = tuple[str, bool, tuple[str, ...]]
"""A spec as (profile shown, explicit, endpoints as accounts or hosts)."""


def _rows(targets: Targets, env: Mapping[str, str] | None = None) -> list[Row]:
    specs = specs_for(targets, None, FILES, env or {}, PARTITIONS)
    rows = []
    for spec in specs:
        eps = tuple(
            e.account if isinstance(e, AccountEndpoint) else e.registry.host
            for e in spec.endpoints
            if isinstance(e, AccountEndpoint | HostEndpoint)
        )
        rows.append((spec.profile, spec.explicit, eps))
    return rows


@pytest.mark.parametrize(
    ("targets", "env", "expected"),
    [
        pytest.param(Targets("dev"), {}, [("dev", True, ())], id="profile"),
        pytest.param(Targets(None), {}, [("default", False, ())], id="no-profile"),
        pytest.param(
            Targets(None), {"AWS_PROFILE": "dev"}, [("dev", False, ())], id="no-profile-aws-profile"
        ),
        pytest.param(
            Targets("210987654321"),
            {},
            [("default", False, ("210987654321",))],
            id="account-instead-of-profile",
        ),
        pytest.param(
            Targets(HOST, ("110987654321",)),
            {"AWS_PROFILE": "keys"},
            [("keys", False, (HOST, "110987654321"))],
            id="host-instead-of-profile",
        ),
        pytest.param(Targets(ACCOUNT), {}, [(ACCOUNT, True, ())], id="a-profile-of-that-name-wins"),
        pytest.param(Targets("nosuch"), {}, [("nosuch", True, ())], id="neither: profile error"),
        pytest.param(
            Targets("role"), {}, [("role", True, ("210987654321",))], id="role-account-from-arn"
        ),
        pytest.param(
            Targets("web"), {}, [("web", True, ("310987654321",))], id="web-identity-role-arn"
        ),
        pytest.param(Targets("sso"), {}, [("sso", True, ("410987654321",))], id="sso-account"),
        pytest.param(Targets("role", (HOST,)), {}, [("role", True, (HOST,))], id="endpoints-given"),
        pytest.param(
            Targets(None),
            {"AWS_PROFILE": "role"},
            [("role", False, ("210987654321",))],
            id="aws-profile-role",
        ),
        pytest.param(
            Targets(None),
            {"AWS_PROFILE": "role", "AWS_ACCESS_KEY_ID": "AKIA"},
            [("role", False, ())],
            id="environment-keys-win-over-aws-profile",
        ),
        pytest.param(
            Targets(None, profiles=("dev", "role")),
            {},
            [("dev", True, ()), ("role", True, ("210987654321",))],
            id="dash-p",
        ),
    ],
)
def test_specs_for(
    targets: Targets, env: dict[str, str], expected: list[tuple[str, bool, tuple[str, ...]]]
) -> None:
    """PROFILE or ENDPOINT, default credentials, and accounts the config already states."""
    assert _rows(targets, env) == expected


def test_file_entries_are_explicit_profiles() -> None:
    """[[login]] entries name their profiles; a role entry's own registry is its role's."""
    text = (
        '[[login]]\nprofile = "role"\n\n'
        '[[login]]\nprofile = "dev"\nregistries = ["public.ecr.aws"]\n'
    )
    specs = specs_for(Targets(None, file="f.toml"), text, FILES, {}, PARTITIONS)
    assert [(s.profile, s.explicit, s.origin) for s in specs] == [
        ("role", True, "f.toml: login[1]"),
        ("dev", True, "f.toml: login[2]"),
    ]
    assert specs[0].endpoints == (AccountEndpoint("210987654321", "210987654321"),)


def test_default_client_is_docker() -> None:
    """The first entry of the clients table is the default, and it is docker."""
    assert DEFAULT_CLIENT.name == "docker"


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        pytest.param(
            {"p": {"role_arn": "arn:aws:iam::210987654321:role/x", "source_profile": "gone"}},
            "names source_profile 'gone'",
            id="missing-source",
        ),
        pytest.param(
            {
                "p": {"role_arn": "arn:aws:iam::210987654321:role/x", "source_profile": "q"},
                "q": {"role_arn": "arn:aws:iam::210987654321:role/y", "source_profile": "p"},
            },
            "loops back to 'p'",
            id="loop",
        ),
    ],
)
def test_broken_source_profile_chain_is_a_config_error(
    config: dict[str, dict[str, str]], needle: str
) -> None:
    """A broken source_profile chain is known from the files alone: exit 2, no request."""
    with pytest.raises(ConfigError, match=needle):
        specs_for(Targets("p"), None, AwsFiles(config=config), {}, PARTITIONS)


@pytest.mark.parametrize(
    "config",
    [
        pytest.param(
            {
                "p": {
                    "role_arn": "arn:aws:iam::210987654321:role/x",
                    "source_profile": "p",
                    "aws_access_key_id": "AKIA",
                }
            },
            id="self-with-keys",
        ),
        pytest.param(
            {
                "p": {"role_arn": "arn:aws:iam::210987654321:role/x", "source_profile": "q"},
                "q": {
                    "role_arn": "arn:aws:iam::210987654321:role/y",
                    "source_profile": "p",
                    "aws_access_key_id": "AKIA",
                },
            },
            id="source-with-keys-ends-the-chain",
        ),
    ],
)
def test_chains_botocore_accepts_are_accepted(config: dict[str, dict[str, str]]) -> None:
    """A role assumed with a profile's own keys is no loop: botocore resolves it."""
    assert specs_for(Targets("p"), None, AwsFiles(config=config), {}, PARTITIONS)
