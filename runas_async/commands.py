"""Each command as one function: ``ecr login``, ``ecr logout``, ``ecr password``, ``env``,
``exec``.

Each takes its typed options (options.py), the environment and stdout, builds the real
collaborators (token provider, client runner, reporter) and returns an :class:`Outcome`;
cli.py turns that into the exit status. Heavy modules (aiobotocore, rich) are imported
inside the functions, after the start-up connections are opened (preconnect.py).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from runas_async.errors import AwsError, ConfigError, RunasError, UsageError
from runas_async.options import (
    Command,
    Completion,
    ConfigureDocker,
    CredentialOptions,
    Env,
    EnvFormat,
    Exec,
    ListProfiles,
    Login,
    LoginStatus,
    Logout,
    Output,
    Password,
    RunOptions,
    Targets,
)

if TYPE_CHECKING:
    import anyio
    from aiobotocore.session import AioSession
    from anyio.abc import TaskStatus

    from runas_async.aws import AwsTokenProvider
    from runas_async.awsconfig import AwsFiles
    from runas_async.credentials import CredentialResolver, ResolvedCredentials
    from runas_async.dockerconfig import AuthFile
    from runas_async.login import ClientRunner
    from runas_async.models import LoginResult, Target, TokenKey
    from runas_async.orchestrate import Reporter
    from runas_async.partitions import Partition
    from runas_async.plan import LoginSpec, Plan
    from runas_async.preconnect import Preconnected
    from runas_async.registry import BuiltinRunner
    from runas_async.state import Recorder, State, StatusRow

log = logging.getLogger("runas_async")

STOPPING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""Signals that end a run cleanly: clients killed, logins done so far merged."""


@dataclass(frozen=True)
class Outcome:
    """What a command ended with; cli.exit_status turns it into the exit code.

    ``results`` for runs over registries, ``signum`` when a signal stopped the run,
    ``status`` for a status decided by the command itself (a dry run's 0, exec's child).
    """

    results: Sequence[LoginResult] | None = None
    signum: int | None = None
    status: int | None = None


DONE = Outcome(status=0)


def run(command: Command, env: Mapping[str, str], stdout: TextIO) -> Outcome:
    """Run one parsed command."""
    match command:
        case Login():
            return login(command, env, stdout)
        case Logout():
            return logout(command, env, stdout)
        case Password():
            return password(command, env, stdout)
        case LoginStatus():
            return status(command, env, stdout)
        case Env():
            return print_env(command, env, stdout)
        case Exec():
            return exec_(command, env)
        case ConfigureDocker():
            return configure_docker(command, env, stdout)
        case Completion():
            return completion(command, stdout)
        case ListProfiles():
            return list_profiles(env, stdout)


# --- completion ---------------------------------------------------------------------------


def completion(command: Completion, stdout: TextIO) -> Outcome:
    """Print the shell's completion script."""
    from runas_async.completion import script

    stdout.write(script(command.shell.value, command.prog, command.specs))
    stdout.flush()
    return DONE


def list_profiles(env: Mapping[str, str], stdout: TextIO) -> Outcome:
    """Print the profile names of the AWS config files, one a line (for the scripts)."""
    from runas_async import awsconfig

    stdout.writelines(f"{name}\n" for name in sorted(awsconfig.read(env).names))
    stdout.flush()
    return DONE


# --- ecr login / logout / password --------------------------------------------------------


def login(command: Login, env: Mapping[str, str], stdout: TextIO) -> Outcome:
    """Log the client into every registry of the plan; then, as asked, print the logins
    (``-o dockerconfigjson``, ``--k8s-secret``) or run ``-- CMD`` with them."""
    opts = command.run
    executable = _find_client(opts, env) if opts.client.program else None
    specs = _specs(command.targets, env)
    fresh = _Fresh()
    if command.renew_before is not None and not opts.dry_run:
        fresh = _fresh_logins(command, specs, env)
        if fresh.everything:
            return _report_fresh(fresh.results, opts.output, stdout)
    with _prepared(command.targets, env, connect=not opts.dry_run, specs=specs) as prepared:
        if opts.dry_run:
            if not command.prints_secrets:  # checked as the real run checks it
                _auth_file(opts, env, prepared.plan)
            return _dry_run(prepared.plan, opts.output, stdout, logout=False)
        with _job_environment(command, env) as run_env:
            outcome, secrets = _run_logins(
                command, prepared, fresh, specs, executable, run_env, stdout
            )
            _ci_summaries(outcome, env)
            if command.prints_secrets:
                _print_secrets(command, secrets, stdout)
            if command.job and _all_ok(outcome) and outcome.signum is None:
                return _run_job(command.job, run_env)
            return outcome


def _run_logins(
    command: Login,
    prepared: _Prepared,
    fresh: _Fresh,
    specs: list[LoginSpec],
    executable: str | None,
    env: Mapping[str, str],
    stdout: TextIO,
) -> tuple[Outcome, Mapping[str, tuple[str, str]]]:
    """The logins themselves: tokens in parallel, each login as its token arrives; the
    fresh ones (``--renew-before``) reported as they stand."""
    from runas_async.orchestrate import run_plan
    from runas_async.state import Recording

    opts = command.run
    plan = fresh.remaining(prepared.plan)
    report_to = sys.stderr if command.prints_secrets else stdout
    output = Output.TEXT if command.prints_secrets else opts.output
    runner, recorder = _login_runner(command, plan, specs, executable, env)
    reporter = Recording(_reporter(output, report_to, env), recorder, fresh.results)
    tokens = _tokens(prepared, command.credentials, env, reporter)

    async def work(stop: anyio.Event) -> list[LoginResult]:
        async with runner:
            return fresh.results + await run_plan(
                plan,
                tokens,
                runner,
                reporter,
                jobs=opts.jobs,
                login_timeout=opts.timeout,
                deadline=opts.deadline,
                stop=stop,
                # Clients start once the first AWS connection is under way:
                # spawning them earlier would delay it.
                prestart=tokens.on_wire,
            )

    outcome = _until_signalled(work, reporter)
    return outcome, getattr(runner, "secrets", {})


def _login_runner(
    command: Login,
    plan: Plan,
    specs: list[LoginSpec],
    executable: str | None,
    env: Mapping[str, str],
) -> tuple[ClientRunner | BuiltinRunner, Recorder | None]:
    """The client's runner, or the built-in one; the auth file checked before any request.

    Logins are recorded (state.py) where they last: in the user's auth file, not in a
    job's private one or in printed secrets.
    """
    from runas_async.registry import BuiltinRunner

    opts = command.run
    if command.prints_secrets:
        return BuiltinRunner(None, None, env, connections=opts.jobs, keep_secrets=True), None
    auth, seed = _auth_file(opts, env, plan)
    recorder = None if command.job else _recorder(opts, env, auth, specs)
    if executable is None:
        runner = BuiltinRunner(auth, seed, env, connections=opts.jobs, recorder=recorder)
        return runner, recorder
    return _client_runner(opts, executable, auth, seed, env, recorder), recorder


def _all_ok(outcome: Outcome) -> bool:
    from runas_async.models import Status

    return outcome.results is not None and all(r.status is Status.OK for r in outcome.results)


JOB_VARIABLES = ("DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "HELM_REGISTRY_CONFIG")
"""What points docker, nerdctl, kaniko, crane (DOCKER_CONFIG), buildah, skopeo, podman
(REGISTRY_AUTH_FILE) and helm (HELM_REGISTRY_CONFIG) at the job's private auth file."""


@contextlib.contextmanager
def _job_environment(command: Login, env: Mapping[str, str]) -> Iterator[Mapping[str, str]]:
    """For ``-- CMD``: ``env`` pointed at a fresh private directory (0700) whose config.json
    holds only this run's logins, plus the user's settings that carry no credentials
    (``proxies``...). ``credsStore`` and ``credHelpers`` are left out: nothing goes to a
    keychain. The directory is removed on every way out. Without ``-- CMD``: ``env``."""
    if not command.job:
        yield env
        return
    import tempfile

    from runas_async.dockerconfig import AuthFile, credential_free
    from runas_async.files import atomic_write
    from runas_async.places import docker_auth_file

    settings = credential_free(AuthFile(docker_auth_file(env)).document())
    directory = Path(tempfile.mkdtemp(prefix="runas-async-job-"))  # 0700
    try:
        config = directory / "config.json"
        atomic_write(config, json.dumps(settings, indent="\t").encode() + b"\n", 0o600)
        yield {**env, **dict.fromkeys(JOB_VARIABLES, str(config)), "DOCKER_CONFIG": str(directory)}
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _run_job(argv: Sequence[str], env: Mapping[str, str]) -> Outcome:
    """CMD with the job's auth file; its exit status (128+N for signal N) is ours."""
    import anyio

    from runas_async.runas import exec_command

    status: int = anyio.run(exec_command, argv, env)
    return Outcome(status=status)


def _print_secrets(command: Login, secrets: Mapping[str, tuple[str, str]], stdout: TextIO) -> None:
    """``-o dockerconfigjson`` or ``--k8s-secret``: the logins of this run, by design."""
    from runas_async.report import dockerconfigjson, k8s_secrets

    document = dockerconfigjson(secrets)
    if command.k8s_secret is None:
        stdout.write(document)
    else:
        stdout.write(k8s_secrets(command.k8s_secret, command.namespaces, document))
    stdout.flush()


def _ci_summaries(outcome: Outcome, env: Mapping[str, str]) -> None:
    """GitHub Actions: a table in the step summary, the hosts logged in as an output."""
    from runas_async.report import github_output, github_summary

    if outcome.results is None:
        return
    for variable, text in (
        ("GITHUB_STEP_SUMMARY", github_summary(outcome.results)),
        ("GITHUB_OUTPUT", github_output(outcome.results)),
    ):
        path = env.get(variable)
        if not path:
            continue
        try:
            with open(path, "a", encoding="utf-8") as f:
                f.write(text)
        except OSError as e:
            log.warning("cannot write %s (%s): %s", variable, path, e.strerror or e)


def logout(command: Logout, env: Mapping[str, str], stdout: TextIO) -> Outcome:
    """Log the client out of every registry of the plan (no tokens fetched)."""
    opts = command.run
    executable = _find_client(opts, env) if opts.client.program else None
    if command.expired:
        plan = _expired_plan(opts, env)
        if opts.dry_run:
            return _dry_run(plan, opts.output, stdout, logout=True)
        return _logout_plan(plan, None, executable, opts, env, stdout)
    with _prepared(command.targets, env, connect=False) as prepared:
        _auth_file(opts, env, prepared.plan)  # before anything, dry run or not
        if opts.dry_run:
            return _dry_run(prepared.plan, opts.output, stdout, logout=True)
        reporter = _reporter(opts.output, stdout, env, logout=True)
        accounts = _tokens(prepared, command.credentials, env, reporter)
        return _logout_plan(prepared.plan, accounts, executable, opts, env, stdout, reporter)


def _logout_plan(
    plan: Plan,
    accounts: AwsTokenProvider | None,
    executable: str | None,
    opts: RunOptions,
    env: Mapping[str, str],
    stdout: TextIO,
    reporter: Reporter | None = None,
) -> Outcome:
    """Log out of ``plan``'s registries (``accounts`` for profiles' own registries, if any)."""
    from runas_async.orchestrate import run_logouts
    from runas_async.registry import BuiltinRunner

    auth, seed = _auth_file(opts, env, plan)
    reporter = reporter or _reporter(opts.output, stdout, env, logout=True)
    recorder = _recorder(opts, env, auth, [])
    runner: ClientRunner | BuiltinRunner = (
        BuiltinRunner(auth, seed, env, connections=opts.jobs, recorder=recorder)
        if executable is None
        else _client_runner(opts, executable, auth, seed, env, recorder)
    )

    async def work(stop: anyio.Event) -> list[LoginResult]:
        async with runner:
            return await run_logouts(
                plan,
                accounts or _NoAccounts(),
                runner,
                reporter,
                jobs=opts.jobs,
                login_timeout=opts.timeout,
                deadline=opts.deadline,
                stop=stop,
            )

    return _until_signalled(work, reporter)


class _NoAccounts:
    """For a plan whose every registry is known: no account is ever asked."""

    async def account(self, profile: str, region: str) -> str:
        raise RuntimeError(f"no account lookup for {profile!r} in {region}")


def _expired_plan(opts: RunOptions, env: Mapping[str, str]) -> Plan:
    """``logout --expired``: the registries whose recorded login has ended."""
    from runas_async.models import Registry, Target, TokenKey
    from runas_async.partitions import load_partitions
    from runas_async.plan import Plan
    from runas_async.state import Freshness

    targets = [
        Target(
            TokenKey(row.record.profile, row.record.region, public=row.record.account is None),
            Registry(row.host, row.record.account, row.record.region),
        )
        for row in _status_rows(opts.client.auth_path(env), env)
        if row.freshness is Freshness.EXPIRED and row.record is not None
    ]
    return Plan(targets=tuple(targets), partitions=load_partitions())


def password(command: Password, env: Mapping[str, str], stdout: TextIO) -> Outcome:
    """Print one registry's password alone on stdout."""
    import anyio

    with _prepared(command.targets, env, connect=True) as prepared:
        if len(prepared.plan.targets) != 1:
            raise UsageError("ecr password takes at most one ENDPOINT")
        (target,) = prepared.plan.targets
        tokens = _tokens(prepared, command.credentials, env, None)
        token = anyio.run(tokens.token, target.key)
    stdout.write(token.password + "\n")
    stdout.flush()
    return DONE


def status(command: LoginStatus, env: Mapping[str, str], stdout: TextIO) -> Outcome:
    """List the auth file's ECR registries and their time left; no AWS call."""
    from runas_async.report import render_status
    from runas_async.state import Freshness

    rows = _status_rows(command.client.auth_path(env), env)
    render_status(rows, command.output.value, stdout)
    expired = any(row.freshness is Freshness.EXPIRED for row in rows)
    return Outcome(status=1 if expired else 0)


def _status_rows(path: Path, env: Mapping[str, str]) -> list[StatusRow]:
    import time

    from runas_async.dockerconfig import AuthFile
    from runas_async.partitions import load_partitions
    from runas_async.places import state_file
    from runas_async.state import StateFile, status_rows

    doc = AuthFile(path).document()
    state = StateFile(state_file(env)).load()
    return status_rows(doc, path, state, time.time(), load_partitions())


# --- --renew-before: what is still fresh, decided before any heavy import -------------------


@dataclass(frozen=True)
class _Fresh:
    """The registries ``--renew-before`` skips, and how many the run has in all."""

    results: list[LoginResult] = field(default_factory=list)
    hosts: frozenset[str] = frozenset()
    own: frozenset[TokenKey] = frozenset()
    """Profiles' own registries (in a region) known from the state file, and fresh."""
    total: int = 0

    @property
    def everything(self) -> bool:
        return self.total > 0 and len(self.results) == self.total

    def remaining(self, plan: Plan) -> Plan:
        from runas_async.plan import Plan

        def skipped(target: Target) -> bool:
            if target.registry is None:
                return target.key in self.own
            return target.registry.host in self.hosts

        kept = tuple(t for t in plan.targets if not skipped(t))
        return Plan(targets=kept, partitions=plan.partitions)


def _fresh_logins(command: Login, specs: list[LoginSpec], env: Mapping[str, str]) -> _Fresh:
    """The registries whose recorded login outlives ``--renew-before``; none when unsure.

    From the files alone (AWS config, auth file, state file): a profile's region as
    botocore would find it, its own registry from the config or from the account the
    state file remembers for its credentials.
    """
    import time

    from runas_async import awsconfig
    from runas_async.dockerconfig import AuthFile
    from runas_async.models import LoginResult, Status, Target
    from runas_async.places import state_file
    from runas_async.state import StateFile, fresh_seconds

    files = awsconfig.read(env)
    state = StateFile(state_file(env)).load()
    try:
        plan, own_hosts = _plan_from_files(specs, command.targets.region, files, state, env)
    except RunasError:
        return _Fresh()  # the full path reports it
    auth = AuthFile(command.run.client.auth_path(env))
    doc, now = auth.document(), time.time()
    renew = command.renew_before or 0.0
    fresh: list[LoginResult] = []
    hosts: set[str] = set()
    own: set[TokenKey] = set()
    for target in plan.targets:
        if target.registry is None:
            continue
        host = target.registry.host
        left = fresh_seconds(doc, auth.path, state, host, renew, now)
        if left is None:
            continue
        shown = target
        if host in own_hosts:
            shown = Target(key=own_hosts[host], registry=None)
            own.add(own_hosts[host])
        else:
            hosts.add(host)
        fresh.append(LoginResult(shown, Status.FRESH, target.registry, expires_in=left))
    return _Fresh(fresh, frozenset(hosts), frozenset(own), len(plan.targets))


def _plan_from_files(
    specs: list[LoginSpec],
    region: str | None,
    files: AwsFiles,
    state: State,
    env: Mapping[str, str],
) -> tuple[Plan, dict[str, TokenKey]]:
    """The plan as far as the files tell it, and which of its hosts are profiles' own."""
    from runas_async.endpoints import AccountEndpoint, registry_for
    from runas_async.models import TokenKey
    from runas_async.partitions import load_partitions
    from runas_async.places import region_in_force
    from runas_async.plan import plan_logins

    partitions = load_partitions()
    identities = _identities(specs, files, env)
    resolved, own_hosts = [], {}
    for spec in specs:
        configured = (files.section(spec.profile) or {}).get("region")
        spec_region = spec.region or region_in_force(region, env, configured)
        spec = replace(spec, region=spec_region)
        account = state.account(spec.profile, identities.get(spec.profile))
        if not spec.endpoints and account is not None and spec_region is not None:
            host = registry_for(account, spec_region, partitions).host
            own_hosts[host] = TokenKey(spec.profile, spec_region)
            spec = replace(spec, endpoints=(AccountEndpoint(account=account, raw=account),))
        resolved.append(spec)
    return plan_logins(resolved, partitions), own_hosts


def _identities(
    specs: list[LoginSpec], files: AwsFiles, env: Mapping[str, str]
) -> dict[str, str | None]:
    """Per profile, what identifies its credentials without botocore (see AwsFiles.identity)."""
    out: dict[str, str | None] = {}
    for spec in specs:
        if spec.explicit:
            out[spec.profile] = files.identity(spec.profile)
        else:  # the default chain: environment keys first, then the profile
            out[spec.profile] = env.get("AWS_ACCESS_KEY_ID") or files.identity(spec.profile)
    return out


def _report_fresh(results: list[LoginResult], output: Output, stdout: TextIO) -> Outcome:
    """Every registry fresh: its lines or JSON, no live display, nothing else imported."""
    from runas_async.report import JsonReporter, PlainReporter

    reporter = JsonReporter(stdout) if output is Output.JSON else PlainReporter(stdout)
    for result in results:
        reporter.update(result)
    reporter.finish(results)
    return Outcome(results=results)


def _recorder(
    opts: RunOptions, env: Mapping[str, str], auth: AuthFile, specs: list[LoginSpec]
) -> Recorder:
    from runas_async import awsconfig
    from runas_async.places import state_file
    from runas_async.state import Recorder, StateFile

    identities = _identities(specs, awsconfig.read(env), env) if specs else {}
    return Recorder(StateFile(state_file(env)), auth.path, opts.client.name, identities)


@dataclass(frozen=True)
class _Prepared:
    """What is known before the first request: the plan, and a session per profile."""

    plan: Plan
    sessions: dict[str, AioSession]
    preconnected: Preconnected | None = None


@contextlib.contextmanager
def _prepared(
    targets: Targets,
    env: Mapping[str, str],
    *,
    connect: bool,
    specs: list[LoginSpec] | None = None,
) -> Iterator[_Prepared]:
    """Everything that can fail before any request: arguments, profiles, files.

    With ``connect``, the start-up connections (preconnect.py) are opened first, before
    the heavy imports, so that they connect while those run; they are closed on the way
    out, used or not.
    """
    from runas_async.partitions import load_partitions

    specs = _specs(targets, env) if specs is None else specs
    preconnected = None
    if connect:
        from runas_async import preconnect

        preconnected = preconnect.start(specs, env, load_partitions(), targets.region)
        log.debug("connecting at start-up to %s", preconnected.targets or "nothing")
    try:
        yield _sessions_and_plan(specs, targets.region, env, preconnected)
    finally:
        if preconnected is not None:
            preconnected.close()


def _specs(targets: Targets, env: Mapping[str, str]) -> list[LoginSpec]:
    """The profiles and registries asked for, from --file, -p, or [PROFILE] [ENDPOINT ...]."""
    from runas_async import awsconfig
    from runas_async.partitions import load_partitions

    text = None if targets.file is None else _read_file(targets.file)
    return specs_for(targets, text, awsconfig.read(env), env, load_partitions())


def specs_for(
    targets: Targets,
    file_text: str | None,
    files: AwsFiles,
    env: Mapping[str, str],
    partitions: tuple[Partition, ...],
) -> list[LoginSpec]:
    """What :func:`_specs` reads, decided from the texts at hand (no I/O).

    A PROFILE that names no profile of the config files but is a valid ENDPOINT is an
    ENDPOINT, with the default credentials; a profile of that name wins. A profile whose
    own registry is asked for and whose account the config states (a role's ``role_arn``,
    an ``sso_account_id``) gets that registry without a GetCallerIdentity call. A
    ``source_profile`` chain that is broken is a ConfigError here, before any request.
    """
    from runas_async.endpoints import parse_endpoints
    from runas_async.loginfile import parse_login_file
    from runas_async.plan import LoginSpec

    specs: list[LoginSpec] = []
    if targets.file is not None and file_text is not None:
        name = "<stdin>" if targets.file == "-" else targets.file
        specs += parse_login_file(file_text, name, partitions)
    specs += [LoginSpec(p, None) for p in targets.profiles]
    if not specs:
        profile, raws = targets.profile, list(targets.endpoints)
        if profile is not None and profile not in files.names and _is_endpoint(profile):
            raws = [profile, *raws]
            profile = None
        endpoints = tuple(parse_endpoints(raws, partitions))
        if profile is None:
            shown = env.get("AWS_PROFILE") or "default"
            specs.append(LoginSpec(shown, None, endpoints, explicit=False))
        else:
            specs.append(LoginSpec(profile, None, endpoints))
    for spec in specs:
        problem = files.check(spec.profile)
        if problem is not None:
            raise ConfigError(f"{spec.origin}: {problem}" if spec.origin else problem)
    return [_with_known_account(spec, files, env) for spec in specs]


def _is_endpoint(text: str) -> bool:
    from runas_async.endpoints import parse_endpoint
    from runas_async.partitions import load_partitions

    try:
        parse_endpoint(text, load_partitions())
    except UsageError:
        return False
    return True


def _with_known_account(spec: LoginSpec, files: AwsFiles, env: Mapping[str, str]) -> LoginSpec:
    """``spec`` with its own registry named by account, when the config files say it."""
    from runas_async.endpoints import AccountEndpoint

    if spec.endpoints:
        return spec
    if not spec.explicit and (env.get("AWS_ACCESS_KEY_ID") or spec.profile not in files.names):
        return spec  # environment keys (or no profile at all) win: only STS can tell
    account = files.account(spec.profile)
    if account is None:
        return spec
    return replace(spec, endpoints=(AccountEndpoint(account=account, raw=account),))


def _read_file(name: str) -> str:
    if name == "-":
        return sys.stdin.read()
    try:
        return Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise UsageError(f"cannot read --file {name!r}: {reason}") from e


def _sessions_and_plan(
    specs: list[LoginSpec],
    region: str | None,
    env: Mapping[str, str],
    preconnected: Preconnected | None,
) -> _Prepared:
    from runas_async.aws import new_session, profile_region
    from runas_async.partitions import load_partitions
    from runas_async.plan import plan_logins

    sessions: dict[str, AioSession] = {}
    regions: dict[str, str | None] = {}
    resolved = []
    for spec in specs:
        try:
            if spec.profile not in sessions:
                sessions[spec.profile] = new_session(spec.profile if spec.explicit else None)
                regions[spec.profile] = profile_region(sessions[spec.profile], region, env)
        except AwsError as e:
            if spec.origin:
                raise type(e)(f"{spec.origin}: {e}") from e
            raise
        resolved.append(replace(spec, region=spec.region or regions[spec.profile]))
    plan = plan_logins(resolved, load_partitions())
    log.debug(
        "plan: %d registries, %d token requests, profiles %s",
        len(plan.targets),
        len(plan.keys),
        ", ".join(repr(p) for p in sessions),
    )
    return _Prepared(plan=plan, sessions=sessions, preconnected=preconnected)


def _find_client(opts: RunOptions, env: Mapping[str, str]) -> str:
    from runas_async.places import find_client  # not login.py: it imports anyio

    return find_client(opts.client.name, env)


def _dry_run(plan: Plan, output: Output, stdout: TextIO, *, logout: bool) -> Outcome:
    from runas_async.report import render_plan

    render_plan(plan, output.value, stdout, logout=logout)
    return DONE


def _auth_file(
    opts: RunOptions, env: Mapping[str, str], plan: Plan
) -> tuple[AuthFile, bytes | None]:
    """The client's real auth file, checked before anything runs, and its content.

    Checked too: every credential helper that would store one of the plan's logins is
    on PATH.
    """
    from runas_async.dockerconfig import AuthFile
    from runas_async.login import check_helpers

    auth = AuthFile(opts.client.auth_path(env))
    seed = auth.preflight()
    hosts = [t.registry.host if t.registry else None for t in plan.targets]
    check_helpers(hosts, auth, seed, env)
    return auth, seed


def _client_runner(
    opts: RunOptions,
    executable: str,
    auth: AuthFile,
    seed: bytes | None,
    env: Mapping[str, str],
    recorder: Recorder | None = None,
) -> ClientRunner:
    from runas_async.login import ClientRunner

    return ClientRunner(opts.client, executable, auth, seed, env, recorder)


def _tokens(
    prepared: _Prepared,
    credentials: CredentialOptions,
    env: Mapping[str, str],
    reporter: Reporter | None,
) -> AwsTokenProvider:
    from runas_async.aws import AwsTokenProvider

    return AwsTokenProvider(
        prepared.sessions,
        resolver=_resolver(credentials, env, reporter),
        preconnected=prepared.preconnected,
        env=env,
        notify=getattr(reporter, "note", None),
    )


def _resolver(
    credentials: CredentialOptions, env: Mapping[str, str], reporter: object = None
) -> CredentialResolver:
    """Credentials with awscli's cache and one MFA prompt per device (the live table paused)."""
    from runas_async.credentials import default_resolver

    return default_resolver(
        env,
        mfa_code=credentials.mfa_code,
        refresh=credentials.refresh,
        pause=getattr(reporter, "paused", None),
        waiting=getattr(reporter, "note", None),
    )


def _reporter(
    output: Output, stream: TextIO, env: Mapping[str, str], *, logout: bool = False
) -> Reporter:
    from runas_async.report import JsonReporter, PlainReporter

    if output is Output.JSON:
        return JsonReporter(stream)
    if stream.isatty() and env.get("TERM") != "dumb":
        from rich.console import Console

        from runas_async.report import LiveTableReporter

        # NO_COLOR (no-color.org) takes the colours away; bold stays, as rich does.
        no_color = bool(env.get("NO_COLOR"))
        console = Console(file=stream, stderr=False, no_color=no_color)
        return LiveTableReporter(console, logout=logout)
    return PlainReporter(stream)


def _until_signalled(
    work: Callable[[anyio.Event], Awaitable[list[LoginResult]]], reporter: Reporter
) -> Outcome:
    """Run ``work`` in an event loop; SIGINT, SIGTERM and SIGHUP set its ``stop`` event.

    The signal receiver outlives ``work`` (whose clean-up merges the logins done and removes
    the temporary files), so a signal cannot interrupt that; after the first signal, later
    ones are ignored. The live display is left as it stands, whatever happens.
    """
    import anyio

    received: list[int] = []

    async def watch(
        stop: anyio.Event, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        try:
            with anyio.open_signal_receiver(*STOPPING) as signals:
                task_status.started()
                async for signum in signals:
                    log.debug("received signal %d; stopping", signum)
                    received.append(signum)
                    stop.set()
        finally:
            if received:
                # Stopping already: a second Ctrl-C must not cut the clean-up short.
                for signum in STOPPING:
                    signal.signal(signum, signal.SIG_IGN)

    async def go() -> list[LoginResult]:
        stop = anyio.Event()
        async with anyio.create_task_group() as tg:
            await tg.start(watch, stop)
            results = await work(stop)
            tg.cancel_scope.cancel()
        return results

    _fast_child_watcher()
    try:
        results = anyio.run(go)
    finally:
        stop_display = getattr(reporter, "stop", None)
        if stop_display is not None:
            stop_display()
    return Outcome(results=results, signum=received[0] if received else None)


def _fast_child_watcher() -> None:
    """On Python 3.11, watch children with pidfds instead of one thread per child.

    asyncio's default watcher before 3.12 starts a thread for every process
    spawned; with dozens of logins at once that alone costs a few hundred ms.
    """
    if sys.version_info >= (3, 12) or not hasattr(os, "pidfd_open"):
        return
    import asyncio

    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:  # kernel without pidfd
        return
    asyncio.set_child_watcher(asyncio.PidfdChildWatcher())


# --- env / exec ---------------------------------------------------------------------------


def print_env(command: Env, env: Mapping[str, str], stdout: TextIO) -> Outcome:
    """Print the profile's credentials for eval, or as credential_process JSON."""
    from runas_async.runas import credential_process_json, env_lines

    creds, region = _resolve_one(command.profile, command.region, command.credentials, env)
    if command.format is EnvFormat.JSON:
        stdout.write(credential_process_json(creds))
    else:
        stdout.write(env_lines(creds, region, command.format.value))
    stdout.flush()
    return DONE


def exec_(command: Exec, env: Mapping[str, str]) -> Outcome:
    """Run the command with the profile's credentials; its exit status is ours."""
    import anyio

    from runas_async.runas import child_environ, exec_command

    creds, region = _resolve_one(command.profile, command.region, command.credentials, env)
    status: int = anyio.run(exec_command, command.argv, child_environ(env, creds, region))
    return Outcome(status=status)


def _resolve_one(
    profile: str | None, region: str | None, credentials: CredentialOptions, env: Mapping[str, str]
) -> tuple[ResolvedCredentials, str | None]:
    """The credentials of ``profile`` (None: the default credentials) and its region."""
    import anyio

    from runas_async.aws import new_session, profile_region

    session = new_session(profile)
    in_force = profile_region(session, region, env)
    resolver = _resolver(credentials, env)
    shown = profile or env.get("AWS_PROFILE") or "default"
    creds = anyio.run(resolver.resolve, session, shown)
    return creds, in_force


# --- ecr configure-docker -----------------------------------------------------------------

HELPER = "runas-async"
"""The name in credHelpers: docker runs docker-credential-runas-async."""


def configure_docker(command: ConfigureDocker, env: Mapping[str, str], stdout: TextIO) -> Outcome:
    """credHelpers entries for the named registries, and which profile serves each."""
    from runas_async import awsconfig
    from runas_async.dockerconfig import AuthFile
    from runas_async.partitions import load_partitions

    files = awsconfig.read(env)
    specs = _specs(command.targets, env)
    served = _hosts_by_profile(specs, files, command.targets.region, env)
    hosts = [host for _, group in served for host in group]
    auth = AuthFile(command.client.auth_path(env))
    auth.preflight()
    auth.set_helpers(hosts, HELPER, remove=command.remove)
    _update_mapping(served, command.remove, env, load_partitions())
    verb = "no longer sent to" if command.remove else "sent to"
    for host in hosts:
        stdout.write(f"{host} {verb} docker-credential-{HELPER} ({auth.path})\n")
    return DONE


def _hosts_by_profile(
    specs: list[LoginSpec], files: AwsFiles, region: str | None, env: Mapping[str, str]
) -> list[tuple[str | None, list[str]]]:
    """Each spec's concrete registry hosts (None: the default credentials)."""
    from runas_async.endpoints import AccountEndpoint, registry_for
    from runas_async.partitions import load_partitions
    from runas_async.places import region_in_force

    partitions = load_partitions()
    out: list[tuple[str | None, list[str]]] = []
    for spec in specs:
        if not spec.endpoints:
            raise UsageError(
                f"name the registries of profile {spec.profile!r} (ACCOUNT or HOST): its "
                "account is not in the config files, and docker needs concrete hosts"
            )
        section = files.section(spec.profile) or {}
        in_force = spec.region or region_in_force(region, env, section.get("region"))
        hosts = []
        for ep in spec.endpoints:
            if isinstance(ep, AccountEndpoint):
                if in_force is None:
                    raise UsageError(f"no region for account {ep.account}: pass --region")
                hosts.append(registry_for(ep.account, in_force, partitions).host)
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
    from runas_async.files import atomic_write
    from runas_async.mapping import parse_mapping, render_mapping, with_hosts, without_hosts
    from runas_async.places import registries_file

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
