"""``ecr configure-docker``: credHelpers entries in the auth file, and in registries.toml
the profile that serves each registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from runas_async.cli.context import DONE, Context, Outcome
from runas_async.core.errors import ConfigError, UsageError
from runas_async.core.options import ConfigureDocker
from runas_async.core.sanitize import show

if TYPE_CHECKING:
    from runas_async.core.partitions import Partition

HELPER = "runas-async"
"""The name in credHelpers: docker runs docker-credential-runas-async."""


def configure_docker(command: ConfigureDocker, ctx: Context) -> Outcome:
    """credHelpers entries for the named registries, and which profile serves each."""
    served = _hosts_by_profile(ctx)
    hosts = [host for _, group in served for host in group]
    ctx.check_auth()
    ctx.auth.set_helpers(hosts, HELPER, remove=command.remove)
    _update_mapping(served, command.remove, ctx.env, ctx.partitions)
    verb = "no longer sent to" if command.remove else "sent to"
    for host in hosts:
        ctx.stdout.write(f"{host} {verb} docker-credential-{HELPER} ({ctx.auth.path})\n")
    return DONE


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


def _update_mapping(
    served: list[tuple[str | None, list[str]]],
    remove: bool,
    env: Mapping[str, str],
    partitions: tuple[Partition, ...],
) -> None:
    """registries.toml with these hosts mapped to their profiles (or taken out)."""
    from runas_async.core.mapping import parse_mapping, render_mapping, with_hosts, without_hosts
    from runas_async.core.places import registries_file
    from runas_async.files import atomic_write

    path = registries_file(env)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror or e}") from e
    rules = parse_mapping(text, str(path), partitions)
    for profile, hosts in served:
        if remove or profile is None:  # the default credentials need no table
            rules = without_hosts(rules, hosts)
        else:
            rules = with_hosts(rules, profile, hosts, partitions)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    atomic_write(path, render_mapping(rules).encode(), 0o600)
