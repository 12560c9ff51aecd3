"""A profile's credentials: botocore's chain, or one MFA session per (source profile, device).

:class:`CredentialResolver` takes one of two paths for a profile:

* **botocore's own chain** when no MFA applies (or no prompt was given): static keys,
  roles, ``credential_process``, SSO and web identity are resolved by botocore, whose
  ``assume-role`` and ``assume-role-with-web-identity`` providers get awscli's cache
  (:mod:`runas_async.aws.clicache`) exactly the way awscli hands it to them.
* **one MFA session per (source profile, device)** when an ``mfa_serial`` is set on the
  profile or anywhere down its ``source_profile`` chain. The chain's bottom profile (the
  one with credentials of its own) calls ``GetSessionToken(SerialNumber, TokenCode)`` once;
  every role above it is assumed with those session credentials and no MFA parameters
  (what aws-runas and aws-vault do: a role that demands MFA accepts a session that has
  it). Ten roles behind one device: one code (asked by :mod:`runas_async.aws.mfa`).

Both paths read and write awscli's cache files; see :mod:`runas_async.aws.clicache`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import anyio
from aiobotocore.credentials import AioCredentialResolver, AioProfileProviderBuilder
from botocore.credentials import ReadOnlyCredentials
from botocore.utils import parse_timestamp

from runas_async.aws._transport import credentials_expiry
from runas_async.aws.boundary import Doing, map_aws_errors, no_credentials
from runas_async.aws.clicache import (
    CredentialCache,
    _CachedFetch,
    role_cache_key,
    session_cache_key,
)
from runas_async.aws.mfa import MfaChallenge, MfaPrompt, Pause, TerminalPrompt, Waiting
from runas_async.core.errors import (
    ConfigError,
    CredentialsError,
    ProfileNotFound,
)
from runas_async.core.places import cli_cache_dir
from runas_async.core.sanitize import show

if TYPE_CHECKING:
    from aiobotocore.session import AioSession

log = logging.getLogger(__name__)

_CACHED_PROVIDERS = ("assume-role", "assume-role-with-web-identity")
"""The providers awscli gives its JSONFileCache to (awscli/customizations/assumerole.py)."""


# --- what comes out ----------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedCredentials:
    """A profile's credentials, with their expiry when they have one. Secrets stay out of repr."""

    access_key: str
    secret_key: str = field(repr=False)
    token: str | None = field(repr=False)
    expiry: datetime | None = None
    account_id: str | None = None
    method: str = "unknown"

    @property
    def frozen(self) -> ReadOnlyCredentials:
        """botocore's form, for ``create_client``."""
        return ReadOnlyCredentials(self.access_key, self.secret_key, self.token, self.account_id)


# --- the profile's chain -----------------------------------------------------------------


@dataclass(frozen=True)
class RoleHop:
    """One role in the chain, with the AssumeRole arguments botocore would take from it."""

    profile: str
    args: tuple[tuple[str, Any], ...]

    @property
    def role_arn(self) -> str:
        return str(dict(self.args)["RoleArn"])


@dataclass(frozen=True)
class MfaChain:
    """Roles from the requested profile down, the profile with credentials, and the device."""

    profile: str
    hops: tuple[RoleHop, ...]
    root: str
    serial: str


def _role_args(cfg: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """AssumeRole arguments of a role profile, as botocore's AssumeRoleProvider builds them."""
    args: dict[str, Any] = {"RoleArn": cfg["role_arn"]}
    for option, arg in (
        ("role_session_name", "RoleSessionName"),
        ("external_id", "ExternalId"),
        ("mfa_serial", "SerialNumber"),
    ):
        if cfg.get(option) is not None:
            args[arg] = cfg[option]
    if cfg.get("duration_seconds") is not None:
        with contextlib.suppress(ValueError, TypeError):
            args["DurationSeconds"] = int(cfg["duration_seconds"])
    return tuple(args.items())


def _is_role(cfg: Mapping[str, Any]) -> bool:
    return "role_arn" in cfg and "web_identity_token_file" not in cfg


def _has_keys(cfg: Mapping[str, Any]) -> bool:
    return "aws_access_key_id" in cfg or "aws_secret_access_key" in cfg


def mfa_chain(profile: str, profiles: Mapping[str, Mapping[str, Any]]) -> MfaChain | None:
    """The MFA plan for ``profile``, or None when botocore's chain should resolve it.

    Follows ``source_profile`` down as botocore does (a source with keys of its own, or
    without ``role_arn``, ends the chain). None when no profile on the way names
    ``mfa_serial``, or when a role takes ``credential_source`` (left to botocore).
    """
    walked = _role_hops(profile, profiles)
    if walked is None:
        return None
    hops, root = walked
    serial = _one_device(profile, [*(h.profile for h in hops), root], profiles)
    if serial is None:
        return None
    return MfaChain(profile=profile, hops=hops, root=root, serial=serial)


def _role_hops(
    profile: str, profiles: Mapping[str, Mapping[str, Any]]
) -> tuple[tuple[RoleHop, ...], str] | None:
    """The roles from ``profile`` down its ``source_profile`` chain, and the profile below
    them; None when a role has no ``source_profile`` (botocore decides)."""
    hops: list[RoleHop] = []
    name = profile
    while True:
        cfg = profiles.get(name)
        if cfg is None:
            if not hops:
                raise ProfileNotFound(f"profile {show(name)} is not in the AWS config files")
            raise ConfigError(
                f"profile {show(hops[-1].profile)} names source_profile {show(name)}, "
                "which is not in the AWS config files"
            )
        if not _is_role(cfg) or (hops and _has_keys(cfg)):
            return tuple(hops), name
        if "source_profile" not in cfg:
            return None  # credential_source, or an incomplete role: botocore decides
        if any(h.profile == name for h in hops):
            raise ConfigError(f"profile {show(profile)}: source_profile loops back to {show(name)}")
        hops.append(RoleHop(profile=name, args=_role_args(cfg)))
        name = str(cfg["source_profile"])


def _one_device(
    profile: str, chain: list[str], profiles: Mapping[str, Mapping[str, Any]]
) -> str | None:
    """The one ``mfa_serial`` named along ``chain`` (top down), or None; two is an error."""
    devices: dict[str, str] = {}
    for owner in reversed(chain):
        serial = profiles[owner].get("mfa_serial")
        if serial:
            devices.setdefault(str(serial), owner)
    if len(devices) > 1:
        named = ", ".join(f"{show(s)} (profile {show(p)})" for s, p in devices.items())
        raise ConfigError(
            f"profile {show(profile)}: its source_profile chain names more than one MFA device: "
            f"{named}"
        )
    return next(iter(devices), None)


# --- the resolver ------------------------------------------------------------------------


class CredentialResolver:
    """Resolves profiles' credentials; see the module docstring for the two paths.

    ``CredentialResolver()`` (no cache, no prompt) is botocore's chain as it stands: no cache
    files, and ``mfa_serial`` handled (or not) by botocore itself. The command line passes a
    :class:`CredentialCache` and a :class:`TerminalPrompt` (:func:`default_resolver`).

    Within one resolver every (source profile, device) prompts at most once and every role is
    assumed at most once, however many profiles share them and however concurrently they are
    resolved.
    """

    def __init__(
        self,
        *,
        cache: CredentialCache | None = None,
        prompt: MfaPrompt | None = None,
        environment_keys: bool = False,
    ) -> None:
        self.cache = cache
        self.prompt = prompt
        self.environment_keys = environment_keys
        """Keys are set in the environment: for a session with no profile named, botocore's
        environment provider wins, so no MFA chain of ours applies."""
        self._memo: dict[str, ResolvedCredentials] = {}
        self._locks: dict[str, anyio.Lock] = {}

    def _mfa_chain(self, session: AioSession, profile: str) -> MfaChain | None:
        """Our MFA plan for the profile, or None for botocore's chain.

        A session with no profile named (the default credentials) follows botocore's order:
        environment keys first; the profile (``$AWS_PROFILE`` or ``default``) only if it
        exists.
        """
        if self.prompt is None:
            return None
        profiles = session.full_config.get("profiles", {})
        if session.instance_variables().get("profile") is None and (
            self.environment_keys or profile not in profiles
        ):
            return None
        return mfa_chain(profile, profiles)

    async def resolve(self, session: AioSession, profile: str) -> ResolvedCredentials:
        """The credentials of ``profile`` (``session`` is an AioSession bound to it)."""
        started = time.monotonic()
        with map_aws_errors(profile=profile, doing=Doing.RESOLVING):
            chain = self._mfa_chain(session, profile)
            if chain is None:
                resolved = await self._botocore(session, profile)
            else:
                resolved = await self._hop(session, chain, 0)
        log.debug(
            "credentials of profile %r via %s in %.3fs",
            profile,
            resolved.method,
            time.monotonic() - started,
        )
        return resolved

    # -- botocore's chain

    async def _botocore(self, session: AioSession, profile: str) -> ResolvedCredentials:
        if self.cache is not None:
            chain = session.get_component("credential_provider")
            for name in _CACHED_PROVIDERS:
                chain.get_provider(name).cache = self.cache
        creds = await session.get_credentials()
        if creds is None:
            raise CredentialsError(no_credentials(show(profile)))
        frozen = await creds.get_frozen_credentials()
        if frozen.access_key is None or frozen.secret_key is None:
            raise CredentialsError(f"profile {show(profile)} has incomplete credentials")
        return ResolvedCredentials(
            access_key=frozen.access_key,
            secret_key=frozen.secret_key,
            token=frozen.token,
            expiry=credentials_expiry(creds),
            account_id=frozen.account_id,
            method=str(getattr(creds, "method", "unknown")),
        )

    # -- the MFA path

    def _lock(self, key: str) -> anyio.Lock:
        return self._locks.setdefault(key, anyio.Lock())

    def _fetch_cache(self) -> CredentialCache | dict[str, Any]:
        return self.cache if self.cache is not None else {}

    async def _hop(self, session: AioSession, chain: MfaChain, index: int) -> ResolvedCredentials:
        """Credentials of ``chain.hops[index]`` (the MFA session below the last hop)."""
        if index == len(chain.hops):
            return await self._mfa_session(session, chain)
        hop = chain.hops[index]
        memo_key = f"role\0{hop.profile}"
        async with self._lock(memo_key):
            if memo_key in self._memo:
                return self._memo[memo_key]

            async def source() -> ReadOnlyCredentials:
                return (await self._hop(session, chain, index + 1)).frozen

            async def assume() -> dict[str, Any]:
                return await self._assume_role(session, hop, source)

            fetched = await _CachedFetch(
                role_cache_key(dict(hop.args)), assume, self._fetch_cache()
            ).fetch_credentials()
            resolved = _from_fetched(fetched, "assume-role (MFA session)")
            self._memo[memo_key] = resolved
            return resolved

    async def _assume_role(
        self,
        session: AioSession,
        hop: RoleHop,
        source: Callable[[], Awaitable[ReadOnlyCredentials]],
    ) -> dict[str, Any]:
        creds = await source()
        args = dict(hop.args)
        args.pop("SerialNumber", None)  # in the cache key (as awscli), not sent: MFA is upstream
        args.setdefault("RoleSessionName", f"runas-async-{int(time.time())}")
        log.debug("AssumeRole %s for profile %r", hop.role_arn, hop.profile)
        what = f"AssumeRole {show(hop.role_arn)}"
        with map_aws_errors(profile=hop.profile, what=what, doing=Doing.FETCHING_CREDENTIALS):
            async with _sts(session, creds) as sts:
                response: dict[str, Any] = dict(await sts.assume_role(**args))
        arn = str(response.get("AssumedRoleUser", {}).get("Arn", ""))
        parts = arn.split(":")
        if len(parts) > 4 and parts[4]:
            response["Credentials"]["AccountId"] = parts[4]
        return response

    async def _mfa_session(self, session: AioSession, chain: MfaChain) -> ResolvedCredentials:
        """The GetSessionToken credentials of ``chain.root`` with ``chain.serial``: one prompt."""
        key = session_cache_key(chain.root, chain.serial)
        async with self._lock(key):
            if key in self._memo:
                return self._memo[key]

            prompt = self.prompt
            if prompt is None:  # pragma: no cover - chains are only looked for with a prompt
                raise CredentialsError(f"profile {show(chain.profile)} needs an MFA code")

            async def get_session_token() -> dict[str, Any]:
                return await self._get_session_token(session, chain, prompt)

            fetched = await _CachedFetch(
                key, get_session_token, self._fetch_cache()
            ).fetch_credentials()
            resolved = _from_fetched(fetched, "mfa-session")
            self._memo[key] = resolved
            return resolved

    async def _get_session_token(
        self, session: AioSession, chain: MfaChain, prompt: MfaPrompt
    ) -> dict[str, Any]:
        source = await self._own_credentials(session, chain.root)
        challenge = MfaChallenge(
            profile=chain.profile, source_profile=chain.root, serial=chain.serial
        )
        code = (await prompt(challenge)).strip()
        if not code:
            raise CredentialsError(
                f"no MFA code given for device {show(chain.serial)} (profile {show(chain.root)})"
            )
        log.debug("GetSessionToken for profile %r with MFA device %s", chain.root, chain.serial)
        what = f"GetSessionToken with MFA device {show(chain.serial)}"
        with map_aws_errors(profile=chain.root, what=what, doing=Doing.FETCHING_CREDENTIALS):
            async with _sts(session, source) as sts:
                response = await sts.get_session_token(SerialNumber=chain.serial, TokenCode=code)
        return dict(response)

    async def _own_credentials(self, session: AioSession, profile: str) -> ReadOnlyCredentials:
        """What ``profile`` holds itself: botocore's providers for a source profile, no roles."""
        builder = AioProfileProviderBuilder(session)
        providers = builder.providers(profile_name=profile, disable_env_vars=True)
        creds = await AioCredentialResolver(providers).load_credentials()
        if creds is None:
            raise CredentialsError(
                f"profile {show(profile)} has no credentials of its own to ask for an MFA session"
            )
        return await creds.get_frozen_credentials()


def _sts(session: AioSession, creds: ReadOnlyCredentials) -> Any:
    """An STS client signed with ``creds``, in the session's region (as botocore's providers)."""
    return session.create_client(
        "sts",
        aws_access_key_id=creds.access_key,
        aws_secret_access_key=creds.secret_key,
        aws_session_token=creds.token,
    )


def _from_fetched(fetched: Mapping[str, Any], method: str) -> ResolvedCredentials:
    """``CachedCredentialFetcher.fetch_credentials()``'s dict as :class:`ResolvedCredentials`."""
    expiry = fetched.get("expiry_time")
    return ResolvedCredentials(
        access_key=str(fetched["access_key"]),
        secret_key=str(fetched["secret_key"]),
        token=fetched.get("token"),
        expiry=parse_timestamp(expiry) if isinstance(expiry, str) else None,
        account_id=fetched.get("account_id"),
        method=method,
    )


def default_resolver(
    env: Mapping[str, str],
    *,
    mfa_code: str | None = None,
    refresh: bool = False,
    pause: Pause | None = None,
    waiting: Waiting | None = None,
) -> CredentialResolver:
    """What the command line uses: awscli's cache under ``$HOME`` and the terminal prompt.

    ``mfa_code`` (``--mfa-code``) wins over ``MFA_CODE``; ``refresh`` (``--refresh``) ignores
    cached entries for this run and writes new ones.
    """
    return CredentialResolver(
        cache=CredentialCache(cli_cache_dir(env), refresh=refresh),
        prompt=TerminalPrompt(code=mfa_code or env.get("MFA_CODE"), pause=pause, waiting=waiting),
        environment_keys=bool(env.get("AWS_ACCESS_KEY_ID")),
    )
