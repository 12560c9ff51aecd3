"""Where things are: one lookup each for HOME, AWS files, auth files and the region."""

from __future__ import annotations

import os
import pwd
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from runas_async.core import places
from runas_async.core.clients import CLIENTS

Lookup = Callable[[Mapping[str, str]], Path]


@pytest.mark.parametrize(
    ("lookup", "env", "expected"),
    [
        pytest.param(places.home, {"HOME": "/h"}, "/h", id="home"),
        pytest.param(
            places.home, {}, pwd.getpwuid(os.getuid()).pw_dir, id="home-from-passwd-database"
        ),
        pytest.param(places.aws_config_file, {"HOME": "/h"}, "/h/.aws/config", id="aws-config"),
        pytest.param(
            places.aws_config_file,
            {"HOME": "/h", "AWS_CONFIG_FILE": "~/c"},
            "/h/c",
            id="aws-config-tilde-expanded-as-botocore",
        ),
        pytest.param(
            places.aws_credentials_file,
            {"HOME": "/h", "AWS_SHARED_CREDENTIALS_FILE": "/x/creds"},
            "/x/creds",
            id="aws-credentials",
        ),
        pytest.param(places.cli_cache_dir, {"HOME": "/h"}, "/h/.aws/cli/cache", id="cli-cache"),
        pytest.param(
            places.docker_auth_file, {"HOME": "/h"}, "/h/.docker/config.json", id="docker"
        ),
        pytest.param(
            places.docker_auth_file,
            {"HOME": "/h", "DOCKER_CONFIG": "/d"},
            "/d/config.json",
            id="docker-config",
        ),
        pytest.param(
            places.docker_auth_file,
            {"HOME": "/h", "DOCKER_CONFIG": "~/dc"},
            "~/dc/config.json",
            id="docker-config-literal-as-docker",
        ),
        pytest.param(
            places.podman_auth_file,
            {"REGISTRY_AUTH_FILE": "/a.json", "XDG_RUNTIME_DIR": "/run/u"},
            "/a.json",
            id="podman-registry-auth-file",
        ),
        pytest.param(
            places.podman_auth_file,
            {"XDG_RUNTIME_DIR": "/run/u"},
            "/run/u/containers/auth.json",
            id="podman-runtime-dir",
        ),
        pytest.param(
            places.podman_auth_file,
            {},
            f"/run/containers/{os.getuid()}/containers/auth.json",
            id="podman-fallback",
        ),
        pytest.param(
            places.helm_auth_file,
            {"HOME": "/h"},
            "/h/.config/helm/registry/config.json",
            id="helm",
        ),
        pytest.param(
            places.helm_auth_file,
            {"HOME": "/h", "XDG_CONFIG_HOME": "/x"},
            "/x/helm/registry/config.json",
            id="helm-xdg",
        ),
        pytest.param(
            places.helm_auth_file,
            {"HELM_REGISTRY_CONFIG": "/r.json"},
            "/r.json",
            id="helm-registry-config",
        ),
        pytest.param(places.finch_auth_file, {"HOME": "/h"}, "/h/.finch/config.json", id="finch"),
        pytest.param(
            places.state_file,
            {"HOME": "/h"},
            "/h/.local/state/runas-async/logins.json",
            id="state",
        ),
        pytest.param(
            places.state_file,
            {"HOME": "/h", "XDG_STATE_HOME": "/s"},
            "/s/runas-async/logins.json",
            id="state-xdg",
        ),
        pytest.param(
            places.state_file,
            {"HOME": "/h", "XDG_STATE_HOME": "rel"},
            "/h/.local/state/runas-async/logins.json",
            id="state-xdg-relative-ignored",
        ),
    ],
)
def test_lookup(lookup: Lookup, env: dict[str, str], expected: str) -> None:
    """Each place is found the way its owner (botocore, docker, podman, helm) finds it."""
    assert lookup(env) == Path(expected)


@pytest.mark.parametrize(
    ("override", "env", "configured", "expected"),
    [
        pytest.param(
            "eu-west-1", {"AWS_REGION": "us-east-1"}, "ap-south-1", "eu-west-1", id="flag"
        ),
        pytest.param(
            None,
            {"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-west-2"},
            "ap-south-1",
            "us-east-1",
            id="aws-region",
        ),
        pytest.param(
            None, {"AWS_DEFAULT_REGION": "us-west-2"}, "ap-south-1", "us-west-2", id="default"
        ),
        pytest.param(None, {}, "ap-south-1", "ap-south-1", id="profile"),
        pytest.param(None, {"AWS_REGION": ""}, None, None, id="none"),
    ],
)
def test_region_order(
    override: str | None, env: dict[str, str], configured: str | None, expected: str | None
) -> None:
    """--region, then AWS_REGION, then AWS_DEFAULT_REGION, then the profile's own."""
    assert places.region_in_force(override, env, configured) == expected


def test_every_client_finds_its_auth_file_through_places() -> None:
    """Each client's auth file is one of the places' lookups (one lookup each)."""
    env = {"HOME": "/h"}
    found = {name: client.auth_path(env) for name, client in CLIENTS.items()}
    assert found == {
        "docker": places.docker_auth_file(env),
        "nerdctl": places.docker_auth_file(env),
        "podman": places.podman_auth_file(env),
        "helm": places.helm_auth_file(env),
        "finch": places.finch_auth_file(env),
        "builtin": places.docker_auth_file(env),
    }
