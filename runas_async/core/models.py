"""Plain, frozen data shared by every module. Pure: no I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Status(enum.Enum):
    """Where one registry is in its run."""

    PLANNED = "planned"
    WAITING = "waiting"
    TOKEN = "token"  # noqa: S105 - a state name, not a secret
    LOGIN = "login"
    LOGOUT = "logout"
    OK = "ok"
    FAILED = "failed"
    FRESH = "fresh"
    """Skipped by --renew-before: the recorded login stays valid long enough."""

    @property
    def done(self) -> bool:
        return self in (Status.OK, Status.FAILED, Status.FRESH)

    @property
    def succeeded(self) -> bool:
        return self in (Status.OK, Status.FRESH)


@dataclass(frozen=True, order=True)
class Registry:
    """One ECR registry: an account's private registry in one region, or ECR Public.

    ``account`` is None for ECR Public (``public.ecr.aws``).
    """

    host: str
    account: str | None
    region: str


@dataclass(frozen=True, order=True)
class TokenKey:
    """What one GetAuthorizationToken call serves: a profile's credentials in a region.

    ``public`` selects the ecr-public API (always us-east-1) instead of ecr.
    """

    profile: str
    region: str
    public: bool = False


@dataclass(frozen=True)
class Token:
    """A decoded authorization token. ``repr`` never shows the password."""

    username: str
    password: str
    expires_at: float | None = None

    def __repr__(self) -> str:
        return f"Token(username={self.username!r}, password=<redacted>)"

    __str__ = __repr__


@dataclass(frozen=True)
class Target:
    """One row of the plan: a registry to log into and the token request serving it.

    ``registry`` is None for the profile's own default registry before its
    account is known (it comes from STS at run time).
    """

    key: TokenKey
    registry: Registry | None

    @property
    def label(self) -> str:
        if self.registry is not None:
            return self.registry.host
        return f"{self.key.profile}'s own registry in {self.key.region}"


@dataclass(frozen=True)
class LoginResult:
    """The outcome for one registry."""

    target: Target
    status: Status
    registry: Registry | None = None
    error: str | None = None
    seconds: float = 0.0
    expires_in: float | None = None
    """For a FRESH registry: seconds its recorded login has left."""
