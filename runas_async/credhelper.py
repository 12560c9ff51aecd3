"""``docker-credential-runas-async``: docker's credential-helper protocol, each registry
served with the profile registries.toml maps it to (mapping.py).

docker runs ``docker-credential-runas-async VERB`` with no terminal, the server URL (or,
for ``store``, a JSON document) on stdin, and reads JSON from stdout; an error is one line
on stdout and exit status 1, and the text ``credentials not found in native keychain``
makes docker go on without credentials. The verbs:

* ``get``: an ECR registry's token, reused from the cache (tokencache.py) while it is
  fresh, else fetched with the mapped profile (no table matches: the default
  credentials). Any other host: not found.
* ``store``, ``erase``: accepted and ignored for an ECR registry (a ``docker login`` to it
  must not fail); refused for any other host.
* ``list``: the registries registries.toml names outright, each with username ``AWS``.
* ``version`` (also ``--version``, ``-v``); ``-h``/``--help`` print the usage (exit 0), as
  does a missing or extra argument (exit 1), as docker-credential-helpers' ``Serve`` does.

A server URL names its registry as docker/cli's ``ConvertToHostname`` has it (scheme and
path dropped; ``HOST:443`` and ``HOST.`` are HOST): :func:`core.endpoints.registry_host`.
A ``store`` needs a ``ServerURL`` and a ``Username``, as the reference helpers check.

A warm ``get`` imports neither botocore nor aiohttp, and parses nothing: each answer is
remembered with a stamp of what chose it (the mapping and AWS config files, the variables
that pick credentials and endpoints), so a repeat of the same question with nothing
changed is one read of the cache file (:func:`warm_get`). Everything else is imported
only when needed. Nothing here ever prompts: a profile that needs an MFA
code and has no cached session fails at once, saying to run ``runas-async ecr login``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, NoReturn, TextIO

from runas_async import _recache
from runas_async.auth.helpercache import CachedToken, TokenCache, key
from runas_async.core import places
from runas_async.core.clients import HELPER
from runas_async.core.errors import MfaCodeRequired, RunasError, UsageError
from runas_async.core.sanitize import show
from runas_async.files import decode, parse_json, read_stream, read_user

if TYPE_CHECKING:
    from runas_async.aws.tokens import AwsTokenProvider
    from runas_async.core.mapping import Rule
    from runas_async.core.models import Token

PROG = "docker-credential-runas-async"
NOT_FOUND = "credentials not found in native keychain"
"""docker-credential-helpers' ErrCredentialsNotFound text, which docker's client looks for."""
MISSING_URL = "no credentials server URL"
MISSING_USERNAME = "no credentials username"
USAGE = f"Usage: {PROG} <store|get|erase|list|version>"
"""docker-credential-helpers' usage line: with no action (exit 1) and for ``-h``/``--help``
(exit 0), as their reference ``Serve`` does."""
VERBS = ("get", "store", "erase", "list")
USERNAME = "AWS"
MAX_STDIN = 64 * 1024
"""The most of stdin we read: a server URL, or store's small JSON document."""
LIFETIME_IF_UNKNOWN = 12 * 3600.0
"""ECR tokens last 12 hours; used only if an answer carried no expiresAt."""

Fetch = Callable[[str | None, str, bool, Mapping[str, str]], "Token"]


class NotServed(Exception):
    """The host is not an ECR registry: not ours to answer."""


def main(
    argv: Sequence[str] | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """Run one verb; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    env = os.environ if env is None else env
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        stdout.write(USAGE + "\n")
        return 0 if argv in (["-h"], ["--help"]) else 1
    verb = argv[0]
    if verb in ("version", "--version", "-v"):
        from runas_async._version import __version__

        stdout.write(f"{PROG} {__version__}\n")
        return 0
    if verb not in VERBS:
        return _fail(stdout, unknown_action(verb))
    try:
        try:
            # a closed stdin (``<&-``) is None: nothing was sent
            text = (
                ""
                if stdin is None
                else read_stream(stdin, what="stdin", limit=MAX_STDIN, error=UsageError)
            )
        except UsageError as e:
            return _fail(stdout, str(e))
        if verb == "get" and (answer := warm_get(text.strip(), env, time.time())) is not None:
            stdout.write(answer)
            return 0
        return Helper(env).serve(verb, text, stdout)
    except KeyboardInterrupt:
        return 130


STAMPED_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_ECR",
    "AWS_ENDPOINT_URL_ECR_PUBLIC",
    "RUNAS_ASYNC_REGISTRIES",
)
"""The variables that decide which profile and credentials answer, and from where."""


def route_stamp(env: Mapping[str, str]) -> str:
    """What chose a ``get``'s answer: the files (identity, size, time) and the variables."""
    parts: list[object] = [env.get(name) for name in STAMPED_VARIABLES]
    for path in (
        places.registries_file(env),
        places.aws_config_file(env),
        places.aws_credentials_file(env),
    ):
        try:
            st = os.stat(path)
            parts.append((str(path), st.st_ino, st.st_size, st.st_mtime_ns))
        except OSError:
            parts.append((str(path), None))
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def warm_get(server_url: str, env: Mapping[str, str], now: float) -> str | None:
    """The answer to ``get`` from the cache alone, or None (then the full path decides)."""
    if not server_url:
        return None
    token = TokenCache(places.cache_dir(env)).route(server_url, route_stamp(env))
    if token is None or not token.fresh(now):
        return None
    return _answer(server_url, token)


def _answer(server_url: str, token: CachedToken) -> str:
    doc = {"ServerURL": server_url, "Username": token.username, "Secret": token.password}
    return json.dumps(doc) + "\n"


def run() -> NoReturn:
    """The console script."""
    patterns = _recache.install(lambda: _recache.cache_file(os.environ))
    code = main()
    sys.stdout.flush()
    if patterns is not None:
        patterns.save()
    os._exit(code)


def unknown_action(verb: str) -> str:
    """docker-credential-helpers' words for a verb that is not one."""
    return f"{PROG}: unknown action: {verb}"


def _fail(stdout: TextIO, message: str) -> int:
    """An error as helpers report it: one line on stdout (docker shows it), and on stderr."""
    line = " ".join(message.split())
    stdout.write(line + "\n")
    stdout.flush()
    if line != NOT_FOUND:
        sys.stderr.write((line if line.startswith(PROG) else f"{PROG}: {line}") + "\n")
    return 1


def _quiet_libraries() -> None:
    """botocore's and aiohttp's loggers never reach stderr (or docker's view of stdout)."""
    import logging

    for name in ("botocore", "aiobotocore", "aiohttp", "urllib3"):
        logger = logging.getLogger(name)
        logger.propagate = False
        logger.addHandler(logging.NullHandler())


class Helper:
    """The verbs, with the environment, a clock and the token fetch injected (tests)."""

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        clock: Callable[[], float] = time.time,
        fetch: Fetch | None = None,
    ) -> None:
        from runas_async.aws import config as awsconfig
        from runas_async.core.partitions import load_partitions

        self.env = env
        self.clock = clock
        self._started = clock()
        self.fetch = fetch or fetch_token
        self.partitions = load_partitions()
        self.files = awsconfig.read(env)
        self.cache = TokenCache(places.cache_dir(env))

    def serve(self, verb: str, text: str, stdout: TextIO) -> int:
        """Run ``verb`` on ``text`` (stdin); an error is one line on stdout, exit 1."""
        try:
            return self._serve(verb, text, stdout)
        except RunasError as e:
            return _fail(stdout, str(e))

    def _serve(self, verb: str, text: str, stdout: TextIO) -> int:
        if verb == "get":
            return self.get(text.strip(), stdout)
        if verb in ("store", "erase"):
            return self.store_or_erase(verb, text, stdout)
        if verb == "list":
            stdout.write(json.dumps(dict.fromkeys(self.listed(), USERNAME)) + "\n")
            return 0
        return _fail(stdout, unknown_action(verb))

    # -- the verbs

    def get(self, server_url: str, stdout: TextIO) -> int:
        if not server_url:
            return _fail(stdout, MISSING_URL)
        try:
            host, region, public = self._registry(server_url)
        except NotServed:
            return _fail(stdout, NOT_FOUND)
        stamp = route_stamp(self.env)  # before reading what it stands for
        profile = self.profile_for(host)
        token = self.token(profile, region, public)
        if token.fetched_at >= self._started:
            self.share_record(host, profile, region, token)
        with self.cache.locked():
            name = key(profile, region, public)
            self.cache.put_route(server_url, name, token.fingerprint, stamp)
        stdout.write(_answer(server_url, token))
        return 0

    def store_or_erase(self, verb: str, text: str, stdout: TextIO) -> int:
        server_url = text.strip()
        if verb == "store":
            try:
                doc = parse_json(text, what="store's stdin", error=UsageError)
            except UsageError:
                doc = None
            if not isinstance(doc, dict):
                return _fail(stdout, "store expects the credentials as JSON on stdin")
            server_url, username = str(doc.get("ServerURL") or ""), doc.get("Username")
            if server_url and not username:
                return _fail(stdout, MISSING_USERNAME)
        if not server_url:
            return _fail(stdout, MISSING_URL)
        try:
            self._registry(server_url)
        except NotServed:
            return _fail(
                stdout,
                f"{PROG} serves Amazon ECR registries only: it does not {verb} credentials "
                f"for {server_url}",
            )
        return 0  # ours: tokens are fetched on each get, nothing to keep or forget

    def listed(self) -> list[str]:
        from runas_async.core.mapping import concrete_hosts

        return concrete_hosts(self.rules(), self.partitions, self._region_of)

    # -- which profile, which token

    def _registry(self, server_url: str) -> tuple[str, str, bool]:
        """Host, region and private/public of an ECR registry; NotServed for anything else."""
        from runas_async.core.endpoints import (
            HostEndpoint,
            PublicEndpoint,
            parse_endpoint,
            registry_host,
        )

        try:
            ep = parse_endpoint(registry_host(server_url), self.partitions)
        except UsageError:
            raise NotServed(server_url) from None
        if not isinstance(ep, HostEndpoint | PublicEndpoint):
            raise NotServed(server_url)
        return ep.registry.host, ep.registry.region, isinstance(ep, PublicEndpoint)

    def rules(self) -> list[Rule]:
        from runas_async.core.mapping import parse_mapping

        path = places.registries_file(self.env)
        data = read_user(path, what="the registries file", error=UsageError)
        if data is None:
            return []
        text = decode(data, what=str(path), error=UsageError)
        return parse_mapping(text, str(path), self.partitions)

    def profile_for(self, host: str) -> str | None:
        """The first table that serves ``host``, else None (the default credentials)."""
        from runas_async.core.mapping import matches

        for rule in self.rules():
            if matches(rule, host, self.partitions, self._region_of, self._account_of):
                return rule.profile
        return None

    def _region_of(self, profile: str) -> str | None:
        return self.files.region(profile, self.env)

    def _account_of(self, profile: str) -> str | None:
        """From the config (a role's or SSO account), the cache, or STS (a cold lookup)."""
        account = self.files.account(profile)
        if account is not None:
            return account
        fingerprint = self.fingerprint(profile)
        name = f"account|{profile}"
        with self.cache.locked():
            account = self.cache.account(name, fingerprint)
            if account is None:
                region = self._region_of(profile) or "us-east-1"
                account = fetch_account(profile, region, self.env)
                self.cache.put_account(name, account, fingerprint)
        return account

    def fingerprint(self, profile: str | None) -> str:
        """What the cached token was fetched with: the profile's settings (both files), or
        for the default credentials the variables that choose them."""
        if profile is None:
            names = ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_ROLE_ARN", "AWS_DEFAULT_PROFILE")
            chosen: object = {n: self.env.get(n) for n in names}
            name = self.env.get("AWS_PROFILE") or "default"
        else:
            chosen, name = None, profile
        settings = {
            "config": dict(self.files.section(name) or {}),
            "credentials": dict(self.files.credentials.get(name, {})),
            "environment": chosen,
        }
        text = json.dumps(settings, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def token(self, profile: str | None, region: str, public: bool) -> CachedToken:
        """A fresh token from the cache, else a new one; never an expired one."""
        name, fingerprint = key(profile, region, public), self.fingerprint(profile)
        with self.cache.locked():  # others wait here, then find this one's token
            cached = self.cache.get(name, fingerprint)
            now = self.clock()
            if cached is not None and cached.fresh(now):
                return cached
            try:
                got = self.fetch(profile, region, public, self.env)
            except RunasError:
                if cached is not None and cached.valid(self.clock()):
                    return cached  # past half-life but still good: better than nothing
                raise
            fetched = self.clock()
            expires = got.expires_at if got.expires_at is not None else now + LIFETIME_IF_UNKNOWN
            token = CachedToken(got.username, got.password, expires, fetched, fingerprint)
            if not token.valid(fetched):
                raise UsageError(
                    f"the token for {region} from the API has already expired "
                    f"({time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(expires))})"
                )
            self.cache.put(name, token)
            return token

    def share_record(self, host: str, profile: str | None, region: str, token: CachedToken) -> None:
        """A new token is a login record (state.py) for the docker config's credHelpers
        entry, so that ``ecr status`` shows the helper's registries with their time left."""
        from runas_async.auth.state import LoginRecord, StateFile, auth_key

        account = host.split(".", 1)[0] if host[:12].isdigit() else None
        record = LoginRecord(
            expires_at=token.expires_at,
            profile=_session_name(profile, self.env),
            account=account,
            region=region,
            client=PROG,
            store="credHelpers",
            helper=HELPER,
        )
        auth = auth_key(places.docker_auth_file(self.env))
        StateFile(places.state_file(self.env)).update(
            lambda state: state.logins.setdefault(auth, {}).__setitem__(host, record)
        )


def _session_name(profile: str | None, env: Mapping[str, str]) -> str:
    return profile or env.get("AWS_PROFILE") or "default"


async def _no_prompt(challenge: object) -> str:
    profile = getattr(challenge, "profile", "")
    raise MfaCodeRequired(
        f"profile {show(profile)} needs an MFA code, and docker runs this helper without a "
        f"terminal: run `runas-async ecr login {profile}` once to start a session"
    )


def _provider(profile: str | None, env: Mapping[str, str]) -> tuple[AwsTokenProvider, str]:
    from runas_async.aws import _lazyca

    _lazyca.defer(load_after=False)  # aiohttp's CA loading: never used here (_lazyca.py)
    from runas_async.aws.clicache import CredentialCache
    from runas_async.aws.credentials import CredentialResolver
    from runas_async.aws.tokens import AwsTokenProvider, new_session

    _lazyca.resume()

    _quiet_libraries()
    name = _session_name(profile, env)
    resolver = CredentialResolver(
        cache=CredentialCache(places.cli_cache_dir(env)),
        prompt=_no_prompt,
        environment_keys=bool(env.get("AWS_ACCESS_KEY_ID")),
    )
    return AwsTokenProvider({name: new_session(profile)}, resolver=resolver, env=env), name


def fetch_token(profile: str | None, region: str, public: bool, env: Mapping[str, str]) -> Token:
    """One GetAuthorizationToken (plus what the credentials need, e.g. AssumeRole)."""
    import anyio

    from runas_async.core.models import TokenKey

    provider, name = _provider(profile, env)
    token: Token = anyio.run(provider.token, TokenKey(name, region, public))
    return token


def fetch_account(profile: str, region: str, env: Mapping[str, str]) -> str:
    """The account of a profile's credentials (STS GetCallerIdentity)."""
    import anyio

    provider, name = _provider(profile, env)
    account: str = anyio.run(provider.account, name, region)
    return account


if __name__ == "__main__":  # python -m runas_async.credhelper VERB
    run()
