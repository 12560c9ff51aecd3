"""``ecr configure-docker``: credHelpers entries in the auth file, and in registries.toml
the profile that serves each registry.
"""

from __future__ import annotations

import argparse
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from runas_async.cli.args import (
    Registration,
    _add_client_option,
    _add_debug,
    _add_targets,
    targets_of,
    whole,
)
from runas_async.cli.context import DONE, Context, Needs, Outcome
from runas_async.core.clients import CLIENTS, DEFAULT_CLIENT, HELPER, HELPER_CLIENTS
from runas_async.core.errors import AwsError, ConfigError, UsageError
from runas_async.core.options import ConfigureDocker
from runas_async.core.sanitize import show

if TYPE_CHECKING:
    from runas_async.core.mapping import Served
    from runas_async.core.partitions import Partition


def configure_docker(command: ConfigureDocker, ctx: Context) -> Outcome:
    """credHelpers entries for the named registries, and which profile serves each.

    All or nothing across the two files: the profiles, config.json and registries.toml
    are all checked before either file is written.
    """
    from runas_async.core.places import registries_file

    served = _hosts_by_profile(ctx)
    if not command.remove:
        _check_profiles(ctx)
    hosts = [host for _, group in served for host in group]
    ctx.check_auth()
    mapping = _MappingFile(registries_file(ctx.env), ctx.partitions)
    mapping.preflight(served, command.remove)  # checked before anything is written
    ctx.auth.set_helpers(hosts, HELPER, remove=command.remove)
    mapping.update(served, command.remove)
    verb = "no longer sent to" if command.remove else "sent to"
    for host in hosts:
        ctx.stdout.write(f"{host} {verb} docker-credential-{HELPER} ({ctx.auth.path})\n")
    return DONE


def _check_profiles(ctx: Context) -> None:
    """Every profile named exists, as ``ecr login`` checks it (with "did you mean")."""
    from runas_async.aws.tokens import new_session

    for spec in ctx.specs:
        if spec.explicit:
            try:
                new_session(spec.profile)
            except AwsError as e:
                raise type(e)(f"{spec.origin}: {e}" if spec.origin else str(e)) from e


def _hosts_by_profile(ctx: Context) -> list[tuple[str | None, list[str]]]:
    """Each spec's concrete registry hosts (None: the default credentials)."""
    from runas_async.core.endpoints import AccountEndpoint, registry_for

    out: list[tuple[str | None, list[str]]] = []
    for spec in ctx.specs:
        if not spec.endpoints:
            raise UsageError(
                f"name the registries of profile {show(spec.profile)} (ACCOUNT or HOST): its "
                "account is not in the config files, and docker needs concrete hosts"
            )
        in_force = spec.region or ctx.files.region(spec.profile, ctx.env, ctx.region)
        hosts = []
        for ep in spec.endpoints:
            if isinstance(ep, AccountEndpoint):
                if in_force is None:
                    raise UsageError(f"no region for account {ep.account}: pass --region")
                hosts.append(registry_for(ep.account, in_force, ctx.partitions).host)
            else:
                hosts.append(ep.registry.host)
        out.append((spec.profile if spec.explicit else None, hosts))
    return out


class _MappingFile:
    """registries.toml, read and written through files.py: bounded, symlinks written
    through, owner kept, every change under the directory's lock."""

    def __init__(self, path: Path, partitions: tuple[Partition, ...]) -> None:
        from runas_async.files import target_of

        self.path = path
        self.partitions = partitions
        try:
            self.target = target_of(path)
        except OSError as e:
            raise ConfigError(f"cannot read {path}: a symlink loop") from e

    def text(self) -> str:
        from runas_async.files import decode, read_user

        data = read_user(self.path, what="the registries file")
        return "" if data is None else decode(data, what=str(self.path))

    def edited(self, served: Served, remove: bool) -> str:
        """The file's new text; ConfigError or UsageError (nothing written) when it cannot
        be read or parsed."""
        from runas_async.core.mapping import edit_mapping

        return edit_mapping(self.text(), served, remove, str(self.path), self.partitions)

    def preflight(self, served: Served, remove: bool) -> None:
        """What :meth:`update` needs, checked: the file readable and valid, and its
        directory able to take a new file (made when missing, as the write would)."""
        import tempfile

        from runas_async.files import make_dirs

        self.edited(served, remove)
        try:
            make_dirs(self.target.parent)
            tempfile.NamedTemporaryFile(dir=self.target.parent, prefix=".probe-").close()
        except OSError as e:
            raise ConfigError(f"cannot write {self.path}: {e.strerror or e}") from e

    def update(self, served: Served, remove: bool) -> None:
        """Read again and edit under the lock: concurrent runs keep each other's tables."""
        from runas_async.files import atomic_write, locked, make_dirs

        try:
            make_dirs(self.target.parent)
            with locked(self.target.parent):
                atomic_write(self.target, self.edited(served, remove).encode(), self._mode())
        except OSError as e:
            raise ConfigError(f"cannot write {self.path}: {e.strerror or e}") from e

    def _mode(self) -> int:
        try:
            return stat.S_IMODE(os.stat(self.target).st_mode)
        except FileNotFoundError:
            return 0o600


# --- the command line --------------------------------------------------------------------


def _arguments(p: argparse.ArgumentParser, reg: Registration) -> None:
    _add_targets(p, many=True, verb="send")
    _add_client_option(
        p,
        HELPER_CLIENTS,
        help=f"{', '.join(HELPER_CLIENTS)}: whose auth file gets the entries "
        f"(default {DEFAULT_CLIENT.name})",
    )
    p.add_argument(
        "--remove", action="store_true", help="take the entries out again (and the mapping)"
    )
    _add_debug(p)


def _build(
    args: argparse.Namespace, job: tuple[str, ...] | None, env: Mapping[str, str]
) -> ConfigureDocker:
    client = CLIENTS[args.client or DEFAULT_CLIENT.name]
    return ConfigureDocker(targets_of(args, "configure-docker"), client, args.remove)


def _needs(command: ConfigureDocker) -> Needs:
    return Needs(client=command.client, targets=command.targets)


COMMAND = Registration(
    path=("ecr", "configure-docker"),
    help="send ECR registries to runas-async's docker credential helper",
    description=(
        "Write credHelpers entries that send these registries to "
        + whole(f"docker-credential-{HELPER}")
        + ", and record in registries.toml which profile serves each (as "
        + whole("gcloud auth configure-docker")
        + "). Everything else stays."
    ),
    add_arguments=_arguments,
    build=_build,
    run=configure_docker,
    needs=_needs,
    order=5,
)
