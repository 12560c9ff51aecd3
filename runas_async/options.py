"""The typed commands the command line parses argv into. Pure data: no I/O.

cli.py builds one of :data:`Command` from argv and the environment; commands.py runs it.
Every choice is an enum or a :class:`~runas_async.clients.Client`, never a bare string.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from runas_async.clients import Client
from runas_async.completion import CommandSpec

DEFAULT_JOBS = 64
DEFAULT_TIMEOUT = 30.0
DEFAULT_DEADLINE = 300.0


class Output(enum.StrEnum):
    """How ``ecr`` commands report: a table or lines (``text``), or one JSON document."""

    TEXT = "text"
    JSON = "json"


class EnvFormat(enum.StrEnum):
    """What ``env`` prints: shell lines for eval, or ``credential_process`` JSON."""

    SH = "sh"
    FISH = "fish"
    JSON = "json"


@dataclass(frozen=True)
class Targets:
    """Which profiles and registries: ``PROFILE [ENDPOINT ...]``, or ``-p``/``--file``."""

    profile: str | None
    """PROFILE, or None for the default credentials (botocore's chain, which reads
    ``$AWS_PROFILE`` itself). A PROFILE that names no profile but is an ENDPOINT is an
    ENDPOINT (commands.py decides, with the config files at hand)."""
    endpoints: tuple[str, ...] = ()
    profiles: tuple[str, ...] = ()
    file: str | None = None
    """A ``--file`` path, ``-`` for stdin."""
    region: str | None = None


@dataclass(frozen=True)
class RunOptions:
    """How a run of many registries goes."""

    client: Client
    jobs: int = DEFAULT_JOBS
    timeout: float = DEFAULT_TIMEOUT
    deadline: float = DEFAULT_DEADLINE
    output: Output = Output.TEXT
    dry_run: bool = False


@dataclass(frozen=True)
class CredentialOptions:
    """How credentials are resolved: an MFA code given up front, the cache ignored."""

    mfa_code: str | None = None
    refresh: bool = False


@dataclass(frozen=True)
class Login:
    """``ecr login``."""

    targets: Targets
    run: RunOptions
    credentials: CredentialOptions = CredentialOptions()


@dataclass(frozen=True)
class Logout:
    """``ecr logout``."""

    targets: Targets
    run: RunOptions
    credentials: CredentialOptions = CredentialOptions()


@dataclass(frozen=True)
class Password:
    """``ecr password``: one registry's password on stdout."""

    targets: Targets
    credentials: CredentialOptions = CredentialOptions()


@dataclass(frozen=True)
class Env:
    """``env``: a profile's credentials as shell lines or credential_process JSON."""

    profile: str | None
    region: str | None = None
    format: EnvFormat = EnvFormat.SH
    credentials: CredentialOptions = CredentialOptions()


@dataclass(frozen=True)
class Exec:
    """``exec``: run a command with a profile's credentials in its environment."""

    profile: str | None
    argv: tuple[str, ...]
    region: str | None = None
    credentials: CredentialOptions = CredentialOptions()


class Shell(enum.StrEnum):
    """The shells ``completion`` writes a script for."""

    BASH = "bash"
    ZSH = "zsh"
    FISH = "fish"


@dataclass(frozen=True)
class Completion:
    """``completion SHELL``: the shell's completion script for every command of ``specs``."""

    shell: Shell
    prog: str
    specs: tuple[CommandSpec, ...]


@dataclass(frozen=True)
class ListProfiles:
    """``completion --profiles`` (hidden): the profile names, one a line, for the scripts."""


Command = Login | Logout | Password | Env | Exec | Completion | ListProfiles
