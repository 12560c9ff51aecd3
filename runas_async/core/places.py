"""Where things are: HOME, the AWS config files, caches, auth files, and the region in force.

Pure: each answer is a function of the environment mapping passed in (the command line
passes the process environment once; nothing below it reads it itself). One
lookup each, so that every module agrees:

==========================  ============================================================
a login client              its name on ``$PATH``
HOME                        ``$HOME``, else the user's home from the password database
AWS config / credentials    ``$AWS_CONFIG_FILE`` / ``$AWS_SHARED_CREDENTIALS_FILE``, else
                            ``~/.aws/config`` / ``~/.aws/credentials`` (``~`` expanded, as
                            botocore does)
awscli's credentials cache  ``~/.aws/cli/cache``
docker, nerdctl             ``$DOCKER_CONFIG/config.json`` (taken literally, as docker
                            does: no ``~`` expansion), else ``~/.docker/config.json``
podman                      ``$REGISTRY_AUTH_FILE``, else
                            ``$XDG_RUNTIME_DIR/containers/auth.json``, else
                            ``/run/containers/UID/auth.json``
helm                        ``$HELM_REGISTRY_CONFIG``, else
                            ``$XDG_CONFIG_HOME/helm/registry/config.json``
finch                       ``~/.finch/config.json``
helper's registry mapping    ``$RUNAS_ASYNC_REGISTRIES``, else
                            ``$XDG_CONFIG_HOME/runas-async/registries.toml``
helper's token cache        ``$XDG_CACHE_HOME/runas-async/`` (``~/.cache/runas-async/``)
our state (login expiries)  ``$XDG_STATE_HOME/runas-async/logins.json``, else
                            ``~/.local/state/runas-async/logins.json``
region                      ``--region``, ``$AWS_REGION``, ``$AWS_DEFAULT_REGION``, then the
                            profile's ``region``
==========================  ============================================================
"""

from __future__ import annotations

import os
import pwd
import shutil
from collections.abc import Mapping
from pathlib import Path

from runas_async.core.errors import ClientNotFound
from runas_async.core.sanitize import show

CONFIG_NAME = "config.json"
"""docker's (and nerdctl's, helm's, finch's) auth file name."""


def home(env: Mapping[str, str]) -> Path:
    """``$HOME``, else the home directory of the user we run as (from the password database)."""
    value = env.get("HOME")
    if value:
        return Path(value)
    try:
        return Path(pwd.getpwuid(os.getuid()).pw_dir)
    except KeyError:  # no passwd entry (some containers): the root of nothing
        return Path("/")


def _expand(value: str, env: Mapping[str, str]) -> Path:
    """``~`` at the start of a path, expanded with :func:`home` (botocore expands it)."""
    if value == "~" or value.startswith("~/"):
        return home(env) / value[2:]
    return Path(value)


def aws_config_file(env: Mapping[str, str]) -> Path:
    """The AWS config file botocore reads."""
    return _expand(env.get("AWS_CONFIG_FILE") or "~/.aws/config", env)


def aws_credentials_file(env: Mapping[str, str]) -> Path:
    """The AWS shared credentials file botocore reads."""
    return _expand(env.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials", env)


def cli_cache_dir(env: Mapping[str, str]) -> Path:
    """awscli's credentials cache: ``~/.aws/cli/cache`` (awscli expands ``~`` the same way)."""
    return home(env) / ".aws" / "cli" / "cache"


def find_client(name: str, env: Mapping[str, str]) -> str:
    """The client's executable on ``$PATH``, or ClientNotFound naming it."""
    path = shutil.which(name, path=env.get("PATH", os.defpath))
    if path is None:
        raise ClientNotFound(f"{show(name)} was not found on PATH; install it or put it on PATH")
    return path


def docker_config_dir(env: Mapping[str, str]) -> Path:
    """Where the docker CLI keeps config.json: ``$DOCKER_CONFIG`` (literally) or ``~/.docker``.

    docker does not expand ``~`` in ``DOCKER_CONFIG`` (a shell would have, unquoted); a
    quoted ``"~/dc"`` names a directory called ``~`` under the current one, for docker and
    for us alike.
    """
    if env.get("DOCKER_CONFIG"):
        return Path(env["DOCKER_CONFIG"])
    return home(env) / ".docker"


def docker_auth_file(env: Mapping[str, str]) -> Path:
    """docker's and nerdctl's auth file."""
    return docker_config_dir(env) / CONFIG_NAME


def podman_auth_file(env: Mapping[str, str]) -> Path:
    """containers-auth.json as podman (and buildah, skopeo) find it."""
    if env.get("REGISTRY_AUTH_FILE"):
        return Path(env["REGISTRY_AUTH_FILE"])
    runtime = env.get("XDG_RUNTIME_DIR") or f"/run/containers/{os.getuid()}"
    return Path(runtime) / "containers" / "auth.json"


def helm_auth_file(env: Mapping[str, str]) -> Path:
    """helm's registry config."""
    if env.get("HELM_REGISTRY_CONFIG"):
        return Path(env["HELM_REGISTRY_CONFIG"])
    xdg = Path(env.get("XDG_CONFIG_HOME") or home(env) / ".config")
    return xdg / "helm" / "registry" / "config.json"


def finch_auth_file(env: Mapping[str, str]) -> Path:
    """finch's auth file (it cannot be pointed elsewhere)."""
    return home(env) / ".finch" / CONFIG_NAME


def registries_file(env: Mapping[str, str]) -> Path:
    """Which profile serves which registry, for the credential helper (credhelper.py)."""
    if env.get("RUNAS_ASYNC_REGISTRIES"):
        return Path(env["RUNAS_ASYNC_REGISTRIES"])
    xdg = Path(env.get("XDG_CONFIG_HOME") or home(env) / ".config")
    return xdg / "runas-async" / "registries.toml"


def cache_dir(env: Mapping[str, str]) -> Path:
    """runas-async's own cache directory (the credential helper's tokens)."""
    xdg = Path(env.get("XDG_CACHE_HOME") or home(env) / ".cache")
    return xdg / "runas-async"


STATE_NAME = "logins.json"
"""The state file's name in :func:`state_dir`."""


def state_dir(env: Mapping[str, str]) -> Path:
    """runas-async's state directory: ``$XDG_STATE_HOME/runas-async`` (an absolute path, as
    the XDG spec requires; a relative one is ignored), else ``~/.local/state/runas-async``."""
    xdg = env.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else home(env) / ".local" / "state"
    return base / "runas-async"


def state_file(env: Mapping[str, str]) -> Path:
    """The one state file: each login's expiry, each profile's own account (state.py)."""
    return state_dir(env) / STATE_NAME


def region_in_force(
    override: str | None, env: Mapping[str, str], configured: str | None
) -> str | None:
    """The region a profile's calls use: ``--region``, ``$AWS_REGION``,
    ``$AWS_DEFAULT_REGION``, then the profile's own ``region`` (``configured``).

    ``AWS_REGION`` is ours and the SDKs' (botocore reads only ``AWS_DEFAULT_REGION``).
    """
    for value in (override, env.get("AWS_REGION"), env.get("AWS_DEFAULT_REGION"), configured):
        if value:
            return value
    return None
