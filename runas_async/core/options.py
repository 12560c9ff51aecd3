"""The typed commands the command line parses argv into. Pure data: no I/O.

cli.py builds one of :data:`Command` from argv and the environment; commands/ runs it.
Every choice is an enum or a :class:`~runas_async.core.clients.Client`, never a bare string.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

from runas_async.core.clients import Client

if TYPE_CHECKING:  # completion's specs: only the completion command imports shells.py
    from runas_async.core.shells import CommandSpec

DEFAULT_JOBS = 64
BUILTIN_JOBS = 256
"""--client builtin starts no process per login: only connections, which are cheap."""
DEFAULT_TIMEOUT = 30.0
DEFAULT_DEADLINE = 300.0


class Output(enum.StrEnum):
    """How ``ecr`` commands report: a table or lines (``text``), or one JSON document."""

    TEXT = "text"
    JSON = "json"
    DOCKERCONFIGJSON = "dockerconfigjson"
    """``ecr login`` only: one ``{"auths": ...}`` document with every login's secret."""


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
    ENDPOINT (cli/context.py decides, with the config files at hand)."""
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
    k8s_secret: str | None = None
    """Print a kubernetes.io/dockerconfigjson Secret of this name (per namespace)."""
    namespaces: tuple[str, ...] = ()
    job: tuple[str, ...] = ()
    """``-- CMD [ARG ...]``: run CMD with these logins only, in a private auth file."""
    renew_before: float | None = None
    """``--renew-before`` in seconds: a registry whose recorded login lasts longer is skipped."""

    @property
    def prints_secrets(self) -> bool:
        """The run's output carries every login's secret (no local auth file is written)."""
        return self.run.output is Output.DOCKERCONFIGJSON or self.k8s_secret is not None


EVERY_TOKEN_OUTPUTS: frozenset[Output] = frozenset({Output.DOCKERCONFIGJSON})
"""Outputs that must carry every registry's credentials, so --renew-before cannot skip any."""


def needs_every_token(login: Login) -> str | None:
    """What in ``login`` needs every registry's token (named as on the command line), or
    None: outputs that carry the credentials, and ``-- CMD``, whose private auth file holds
    only this run's logins."""
    if login.run.output in EVERY_TOKEN_OUTPUTS:
        return f"-o {login.run.output.value}"
    if login.k8s_secret is not None:
        return "--k8s-secret"
    if login.job:
        return "'-- CMD'"
    return None


@dataclass(frozen=True)
class Logout:
    """``ecr logout``."""

    targets: Targets
    run: RunOptions
    credentials: CredentialOptions = CredentialOptions()
    expired: bool = False
    """``--expired``: the registries whose recorded login has ended, instead of targets."""


@dataclass(frozen=True)
class ListLogins:
    """``ecr status``: list the ECR logins of a client's auth file and when they expire."""

    client: Client
    output: Output = Output.TEXT


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


@dataclass(frozen=True)
class ConfigureDocker:
    """``ecr configure-docker``: send registries to the credential helper, or stop."""

    targets: Targets
    client: Client
    remove: bool = False


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


Command = (
    Login
    | Logout
    | Password
    | Env
    | Exec
    | ListLogins
    | ConfigureDocker
    | Completion
    | ListProfiles
)
