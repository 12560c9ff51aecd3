"""runas-async: log container clients into many Amazon ECR registries at once."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from runas_async.errors import (
    AwsError,
    ClientNotFound,
    ConfigError,
    CredentialsError,
    DockerConfigError,
    LoginError,
    NoRegion,
    ProfileNotFound,
    RunasError,
    TokenError,
    UsageError,
)

try:
    __version__ = version("runas-async")
except PackageNotFoundError:  # pragma: no cover
    __version__ = "0+unknown"

__all__ = [
    "AwsError",
    "ClientNotFound",
    "ConfigError",
    "CredentialsError",
    "DockerConfigError",
    "LoginError",
    "NoRegion",
    "ProfileNotFound",
    "RunasError",
    "TokenError",
    "UsageError",
    "__version__",
]
