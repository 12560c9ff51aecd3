"""The AWS config files read without botocore: profile names, sections, a profile's account.

Standard library only (configparser), so that what can be known from the files alone is
known before the heavy imports: which names are profiles (is a first argument a PROFILE
or an ENDPOINT?), where a profile's calls go (preconnect.py), and the account of a role
or SSO profile (its own registry needs no GetCallerIdentity). botocore stays the judge
of everything else; a file that cannot be read or parsed here reads as empty, and
botocore reports it properly when the session is made.
"""

from __future__ import annotations

import configparser
import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from runas_async.core.errors import RunasError
from runas_async.core.places import aws_config_file, aws_credentials_file, region_in_force
from runas_async.core.sanitize import show
from runas_async.files import decode, read_user

_ARN_ACCOUNT = re.compile(r"arn:[a-z0-9-]+:iam::([0-9]{12}):role/.+")
_ACCOUNT = re.compile(r"[0-9]{12}")


@dataclass(frozen=True)
class AwsFiles:
    """The profiles of the config file (``[profile NAME]``, ``[default]``) and of the
    credentials file (``[NAME]``), as botocore names them."""

    config: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    credentials: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.config) | frozenset(self.credentials)

    def region(
        self, profile: str, env: Mapping[str, str], override: str | None = None
    ) -> str | None:
        """The region the profile's calls use, from the files alone: ``override``
        (``--region``), then the environment, then the profile's ``region``
        (:func:`places.region_in_force`)."""
        configured = (self.section(profile) or {}).get("region")
        return region_in_force(override, env, configured)

    def section(self, profile: str) -> Mapping[str, str] | None:
        """The profile's settings from the config file, or None when it has none there."""
        return self.config.get(profile)

    def account(self, profile: str) -> str | None:
        """The account the profile's credentials belong to, when the config says so plainly:
        its ``role_arn``'s account (a role's credentials are the role's), else its
        ``sso_account_id``. None when only a request can tell.
        """
        section = self.section(profile) or {}
        m = _ARN_ACCOUNT.fullmatch(section.get("role_arn", "").strip())
        if m is not None:
            return m.group(1)
        sso = section.get("sso_account_id", "").strip()
        return sso if _ACCOUNT.fullmatch(sso) else None

    def identity(self, profile: str) -> str | None:
        """What identifies the profile's credentials without botocore: its ``role_arn``, else
        its access key id (the credentials file first, as botocore reads it); None when only
        a request can tell (SSO, credential_process, a chain of sources without keys)."""
        role = (self.section(profile) or {}).get("role_arn", "").strip()
        if role:
            return role
        for sections in (self.credentials, self.config):
            key = sections.get(profile, {}).get("aws_access_key_id", "").strip()
            if key:
                return key
        return None

    def check(self, profile: str) -> str | None:
        """What makes ``profile`` unusable before any request, or None.

        A ``source_profile`` that names no profile, or a chain of them that loops: botocore
        would only find out while resolving credentials, mid-run. The chain is followed as
        botocore follows it: a source with keys of its own, or without ``role_arn``, ends it.
        """
        seen: list[str] = []
        name = profile
        while True:
            section = self.section(name) or {}
            source = section.get("source_profile", "").strip()
            if "role_arn" not in section or not source or (seen and self._has_keys(name)):
                return None
            if source not in self.names:
                return (
                    f"profile {show(name)} names source_profile {show(source)}, which is not "
                    f"in the AWS config files{did_you_mean(source, self.names)}"
                )
            if source == name and self._has_keys(name):
                return None  # a role assumed with the profile's own keys
            if source == name or source in seen:
                return f"profile {show(profile)}: source_profile loops back to {show(source)}"
            seen.append(name)
            name = source

    def _has_keys(self, name: str) -> bool:
        return any(
            "aws_access_key_id" in sections.get(name, {})
            for sections in (self.config, self.credentials)
        )


def did_you_mean(name: str, names: Iterable[str]) -> str:
    """``"; did you mean 'prod'?"`` naming the profiles closest to a misspelt ``name``
    (at most three), or ``""`` when none is close."""
    close = difflib.get_close_matches(name, sorted(names), n=3, cutoff=0.6)
    if not close:
        return ""
    quoted = [repr(c) for c in close]
    listed = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
    return f"; did you mean {listed}?"


def read(env: Mapping[str, str]) -> AwsFiles:
    """Both files, as they stand; unreadable or unparsable ones read as empty."""
    config: dict[str, Mapping[str, str]] = {}
    for name, items in _sections(aws_config_file(env)).items():
        if name == "default":
            config.setdefault("default", items)
        elif name.startswith("profile "):
            profile = name.removeprefix("profile ").strip()
            # botocore lets [profile default] win over [default]
            config[profile] = items
    return AwsFiles(config=config, credentials=_sections(aws_credentials_file(env)))


def _sections(path: object) -> dict[str, Mapping[str, str]]:
    parser = configparser.RawConfigParser()
    try:  # bounded (files.py): a FIFO or /dev/zero reads as no file, never a hang
        data = read_user(Path(str(path)), what="the AWS config file")
        parser.read_string(decode(data or b"", what=str(path)), str(path))
    except (RunasError, configparser.Error):
        return {}
    return {name: dict(parser.items(name)) for name in parser.sections()}


CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
)
"""The environment variables through which botocore's chain can find credentials."""


def nothing_found(files: AwsFiles, env: Mapping[str, str]) -> str | None:
    """What to say when there is nothing to log in with: no profile in either file and no
    credential variable set (instance credentials aside, which only a request can find).
    None when something is there."""
    if files.names or any(env.get(name) for name in CREDENTIAL_VARIABLES):
        return None
    config, credentials = aws_config_file(env), aws_credentials_file(env)
    return (
        f"no AWS credentials or profiles found: no profile in {config} or {credentials}, "
        f"and none of {', '.join(CREDENTIAL_VARIABLES[:4])} set; run aws configure, or set "
        "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION (on an instance or in a "
        "container with a role: pass --region)"
    )
