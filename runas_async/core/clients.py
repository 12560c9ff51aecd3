"""The login clients runas-async drives, as data: one entry each in :data:`CLIENTS`.

Pure: no I/O. Adding a client is one :class:`Client` entry here (its verbs, how one login
is pointed at a private auth file, and where its real auth file lives, from places.py)
plus its tests; the command line's ``--client`` choices and the runner (login.py) read
this table and nothing else.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from runas_async.core import places

HELPER = "runas-async"
"""The ``credHelpers`` value that sends a registry to us (docker runs ``docker-credential-`` +
this name: the credential helper, credhelper.py)."""

CLIENT_ENV = "RUNAS_ASYNC_CLIENT"
"""The environment variable naming the default client."""
BUILTIN = "builtin"
"""The built-in login: no client program (registry.py)."""


class Redirect(enum.Enum):
    """How one login is pointed at a private auth file."""

    DOCKER_CONFIG = "DOCKER_CONFIG"
    """A directory holding config.json, named by ``$DOCKER_CONFIG`` (docker, nerdctl)."""
    AUTHFILE = "--authfile"
    """A file named on the command line with ``--authfile`` (podman)."""
    REGISTRY_CONFIG = "--registry-config"
    """A file named on the command line with ``--registry-config`` (helm)."""
    NONE = "none"
    """Cannot be redirected: logins run one at a time against the real file (finch)."""

    @property
    def variable(self) -> str | None:
        """The environment variable that points the client at an auth file, if any."""
        return _VARIABLES.get(self)


_VARIABLES = {
    Redirect.DOCKER_CONFIG: "DOCKER_CONFIG",  # names the directory that holds config.json
    Redirect.AUTHFILE: "REGISTRY_AUTH_FILE",
    Redirect.REGISTRY_CONFIG: "HELM_REGISTRY_CONFIG",
}


@dataclass(frozen=True)
class Client:
    """How to drive one login client, and where it keeps its auth file."""

    name: str
    redirect: Redirect
    auth_path: Callable[[Mapping[str, str]], Path]
    """The user's real auth file, from the environment."""
    login: tuple[str, ...] = ("login",)
    logout: tuple[str, ...] = ("logout",)
    host_first: bool = False
    """The host comes right after the verb (helm), not last."""
    program: bool = True
    """A program on PATH; False for the built-in login (registry.py), which needs none."""
    credential_helpers: bool = False
    """Its auth file's ``credHelpers`` send hosts to a helper (``configure-docker``)."""

    @property
    def private_name(self) -> str:
        """The file name of a login's private auth file."""
        return places.CONFIG_NAME if self.redirect is Redirect.DOCKER_CONFIG else "auth.json"

    def argv(
        self, executable: str, verb: tuple[str, ...], host: str, private: Path | None, *extra: str
    ) -> list[str]:
        args = [executable, *verb]
        if self.host_first:
            args.append(host)
        args.extend(extra)
        if private is not None and self.redirect in (Redirect.AUTHFILE, Redirect.REGISTRY_CONFIG):
            args += [self.redirect.value, str(private)]
        if not self.host_first:
            args.append(host)
        return args

    def login_argv(
        self, executable: str, host: str, username: str, private: Path | None
    ) -> list[str]:
        """The login command; the password is read from stdin, never put in argv."""
        return self.argv(
            executable, self.login, host, private, "--username", username, "--password-stdin"
        )

    def logout_argv(self, executable: str, host: str, private: Path | None) -> list[str]:
        return self.argv(executable, self.logout, host, private)

    def private_env(self, env: Mapping[str, str], private: Path) -> dict[str, str]:
        """``env`` with the variable that points the client at ``private``, if it has one."""
        out = dict(env)
        if self.redirect in (Redirect.DOCKER_CONFIG, Redirect.AUTHFILE):
            out.update(_pointing(self.redirect, private))
        return out

    @property
    def private_capable(self) -> bool:
        """A login can be pointed at a private auth file (``-- CMD`` needs it)."""
        return self.redirect is not Redirect.NONE or not self.program


def _pointing(redirect: Redirect, path: Path) -> dict[str, str]:
    variable = redirect.variable
    if variable is None:
        return {}
    return {variable: str(path.parent if redirect is Redirect.DOCKER_CONFIG else path)}


CLIENTS: Mapping[str, Client] = {
    c.name: c
    for c in (
        Client("docker", Redirect.DOCKER_CONFIG, places.docker_auth_file, credential_helpers=True),
        Client("podman", Redirect.AUTHFILE, places.podman_auth_file, credential_helpers=True),
        Client("nerdctl", Redirect.DOCKER_CONFIG, places.docker_auth_file, credential_helpers=True),
        Client("finch", Redirect.NONE, places.finch_auth_file),
        Client(BUILTIN, Redirect.NONE, places.docker_auth_file, program=False),
        Client(
            "helm",
            Redirect.REGISTRY_CONFIG,
            places.helm_auth_file,
            login=("registry", "login"),
            logout=("registry", "logout"),
            host_first=True,
        ),
    )
}
"""Every client, by the name ``--client`` takes. The first is the default."""

DEFAULT_CLIENT = next(iter(CLIENTS.values()))


HELPER_CLIENTS = tuple(name for name, client in CLIENTS.items() if client.credential_helpers)
"""The clients whose auth file has credHelpers for docker-credential-runas-async."""


def job_variables(config: Path) -> dict[str, str]:
    """Every variable that points a client at the auth file ``config`` (a ``config.json``):
    what a job's environment sets so that any client it runs finds its logins there."""
    out: dict[str, str] = {}
    for client in CLIENTS.values():
        out.update(_pointing(client.redirect, config))
    return out
