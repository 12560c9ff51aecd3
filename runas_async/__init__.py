"""runas-async: log container clients into many Amazon ECR registries at once.

The layers and where each concern lives: ARCHITECTURE.md.
"""

from __future__ import annotations

from runas_async._version import __version__
from runas_async.core.errors import (
    AwsError,
    ClientNotFound,
    CommandNotFound,
    ConfigError,
    CredentialsError,
    DockerConfigError,
    LoginError,
    MfaCodeRequired,
    NoRegion,
    ProfileNotFound,
    RunasError,
    TokenError,
    UsageError,
)

__all__ = [
    "AwsError",
    "ClientNotFound",
    "CommandNotFound",
    "ConfigError",
    "CredentialsError",
    "DockerConfigError",
    "LoginError",
    "MfaCodeRequired",
    "NoRegion",
    "ProfileNotFound",
    "RunasError",
    "TokenError",
    "UsageError",
    "__version__",
]
