"""``ecr login``: the logins, the registries ``--renew-before`` finds still fresh,
``-- CMD`` with a private auth file, the printed secrets, the CI summaries.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from runas_async.cli.args import (
    EXIT_EPILOG,
    PROG,
    Registration,
    _add_credential_options,
    _add_debug,
    _add_run_options,
    _add_targets,
    _duration,
    _k8s_namespace,
    _k8s_secret_name,
    add_job,
    check_no_stray,
    credentials_of,
    jobs_for,
    run_options,
    targets_of,
)
from runas_async.cli.context import Context, Needs, Outcome
from runas_async.core.clients import BUILTIN, CLIENTS
from runas_async.core.errors import DockerConfigError, RunasError, UsageError
from runas_async.core.options import Login, Output, needs_every_token
from runas_async.core.sanitize import show

if TYPE_CHECKING:
    import anyio

    from runas_async.core.models import LoginResult, Target, TokenKey
    from runas_async.core.plan import Plan
    from runas_async.engine import Reporter

log = logging.getLogger("runas_async")


def login(command: Login, ctx: Context) -> Outcome:
    """Log the client into every registry of the plan; then, as asked, print the logins
    (``-o dockerconfigjson``, ``--k8s-secret``) or run ``-- CMD`` with them."""
    ctx.find_client()
    fresh = _Fresh()
    if command.renew_before is not None and not command.run.dry_run:
        fresh = _fresh_logins(command.renew_before, ctx)
        if fresh.everything:
            return _ci_summaries(_report_fresh(fresh.results, ctx), ctx.env)
    if command.run.dry_run:
        if not command.prints_secrets:  # checked as the real run checks it
            ctx.check_auth(ctx.plan)
        return ctx.dry_run(ctx.plan)
    # The built-in client's registries are connected at start-up too.
    with ctx.connecting(registries=command.prints_secrets or ctx.find_client() is None):
        if not command.job:  # a job's run sweeps when it makes its directory
            from runas_async.cli import jobdir

            jobdir.sweep(ctx.env)
        plan = fresh.remaining(ctx.plan)
        with _job_environment(command, ctx) as started:
            outcome, secrets = _run_logins(command, ctx, plan, fresh)
            outcome = _ci_summaries(outcome, ctx.env)
            if command.prints_secrets:
                _print_secrets(command, secrets, ctx.stdout)
            if command.job and _all_ok(outcome) and outcome.signum is None:
                return _run_job(command.job, ctx.run_env, started)
            return outcome


def _run_logins(
    command: Login, ctx: Context, plan: Plan, fresh: _Fresh
) -> tuple[Outcome, Mapping[str, tuple[str, str]]]:
    """The logins themselves: tokens in parallel, each login as its token arrives; the
    fresh ones (``--renew-before``) reported as they stand.

    Logins are recorded (recording.py) where they last: in the user's auth file, not in a
    job's private one or in printed secrets (the context's recorder is None then).
    """
    from runas_async.auth.recording import Recording
    from runas_async.engine import run_plan

    opts = command.run
    runner = ctx.runner(plan)
    saving = _UntilSaved(ctx.reporter)
    reporter = Recording(saving, ctx.recorder, fresh.results)
    tokens = ctx.tokens(reporter)

    async def work(stop: anyio.Event) -> list[LoginResult]:
        done: list[LoginResult] | None = None
        try:
            async with runner:
                done = await run_plan(
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
        except DockerConfigError as e:
            if done is None:
                raise  # not the merge: known before any login
            done = saving.unsaved(done, runner.logged_in, str(e))
        saving.release()
        return fresh.results + done

    outcome = ctx.until_signalled(work, reporter, collect_after=lambda: tokens.on_wire)
    return outcome, getattr(runner, "secrets", {})


class _UntilSaved:
    """A reporter whose ``finish`` waits until the logins are saved (the merge into the auth
    file, on the runner's way out): a login is ok only once it is saved. If the merge fails,
    every login it carried is failed with the reason before anything is finished."""

    def __init__(self, inner: Reporter) -> None:
        self.inner = inner
        self.finished: list[LoginResult] | None = None

    def finish(self, results: Sequence[LoginResult]) -> None:
        self.finished = list(results)

    def unsaved(
        self, results: list[LoginResult], carried: Mapping[str, object], reason: str
    ) -> list[LoginResult]:
        """``results`` with each login the failed merge carried failed with ``reason``."""
        from runas_async.core.models import Status

        def failed(result: LoginResult) -> LoginResult:
            host = None if result.registry is None else result.registry.host
            if result.status is not Status.OK or host not in carried:
                return result
            return replace(result, status=Status.FAILED, error=f"not saved: {reason}")

        now = {id(r): failed(r) for r in results}
        for before in results:
            if now[id(before)] is not before:
                self.inner.update(now[id(before)])
        if self.finished is not None:
            self.finished = [now.get(id(r), r) for r in self.finished]
        return [now[id(r)] for r in results]

    def release(self) -> None:
        if self.finished is not None:
            self.inner.finish(self.finished)

    def start(self, plan: Plan) -> None:
        self.inner.start(plan)

    def update(self, result: LoginResult) -> None:
        self.inner.update(result)

    def note(self, key: TokenKey | str, text: str | None) -> None:
        self.inner.note(key, text)

    def paused(self) -> contextlib.AbstractContextManager[None]:
        return self.inner.paused()

    def begin(self) -> None:
        self.inner.begin()

    def stop(self) -> None:
        self.inner.stop()


def _all_ok(outcome: Outcome) -> bool:
    from runas_async.core.models import Status

    return outcome.results is not None and all(r.status is Status.OK for r in outcome.results)


@contextlib.contextmanager
def _job_environment(command: Login, ctx: Context) -> Iterator[Callable[[int], None] | None]:
    """For ``-- CMD``: the context redirected to a fresh private directory (0700) whose
    config.json holds only this run's logins, plus the user's settings that carry no
    credentials (``proxies``...). ``credsStore`` and ``credHelpers`` are left out: nothing
    goes to a keychain. The directory is removed on every way out, and by a watchdog if we
    are killed (jobdir.py); what it yields is to be told CMD's process group. Without
    ``-- CMD``: nothing changes (None)."""
    if not command.job:
        yield None
        return
    env = ctx.env
    from runas_async.auth.authfile import AuthFile, credential_free
    from runas_async.cli import jobdir
    from runas_async.core.clients import job_variables
    from runas_async.core.places import docker_auth_file
    from runas_async.files import atomic_write

    settings = credential_free(AuthFile(docker_auth_file(env)).document())
    directory = jobdir.create(env)
    watchdog = jobdir.Watchdog(directory)
    try:
        config = directory / "config.json"
        atomic_write(config, json.dumps(settings, indent="\t").encode() + b"\n", 0o600)
        ctx.redirect({**env, **job_variables(config)})
        yield watchdog.group
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        watchdog.done()


def _run_job(
    argv: Sequence[str], env: Mapping[str, str], started: Callable[[int], None] | None
) -> Outcome:
    """CMD with the job's auth file; its exit status (128+N for signal N) is ours."""
    import anyio

    from runas_async.cli.runas import exec_command

    status: int = anyio.run(functools.partial(exec_command, started=started), argv, env)
    return Outcome(status=status)


def _print_secrets(command: Login, secrets: Mapping[str, tuple[str, str]], stdout: TextIO) -> None:
    """``-o dockerconfigjson`` or ``--k8s-secret``: the logins of this run, by design."""
    from runas_async.cli.formats.dockerconfigjson import dockerconfigjson
    from runas_async.cli.formats.k8s import k8s_secrets

    document = dockerconfigjson(secrets)
    if command.k8s_secret is None:
        stdout.write(document)
    else:
        stdout.write(k8s_secrets(command.k8s_secret, command.namespaces, document))
    stdout.flush()


def _ci_summaries(outcome: Outcome, env: Mapping[str, str]) -> Outcome:
    """GitHub Actions, on every run: a table in the step summary; the registries in force
    and those logged in by this run as outputs. A file that cannot be written (files.py's
    rules) is one line on stderr and makes the run's exit status 1; the logins stand."""
    from runas_async.cli.formats.github import github_output, github_summary
    from runas_async.files import append_user

    if outcome.results is None:
        return outcome
    failed = False
    for variable, text in (
        ("GITHUB_STEP_SUMMARY", github_summary(outcome.results)),
        ("GITHUB_OUTPUT", github_output(outcome.results)),
    ):
        path = env.get(variable)
        if not path:
            continue
        try:
            append_user(Path(path), text.encode(), what=f"${variable}")
        except RunasError as e:
            sys.stderr.write(f"{PROG}: error: {e}\n")
            failed = True
    return replace(outcome, status=1) if failed else outcome  # 1: some part failed


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
        from runas_async.core.plan import Plan

        def skipped(target: Target) -> bool:
            if target.registry is None:
                return target.key in self.own
            return target.registry.host in self.hosts

        kept = tuple(t for t in plan.targets if not skipped(t))
        return Plan(targets=kept, partitions=plan.partitions)


def _fresh_logins(renew_before: float, ctx: Context) -> _Fresh:
    """The registries whose recorded login outlives ``renew_before``; none when unsure.

    From the files alone (AWS config, auth file, state file): a profile's region as
    botocore would find it, its own registry from the config or from the account the
    state file remembers for its credentials. The auth file is checked first, as the run
    checks it, so that it is read once.
    """
    import time

    from runas_async.auth.freshness import fresh_seconds
    from runas_async.core.models import LoginResult, Status, Target

    try:
        plan, own_hosts = _plan_from_files(ctx)
    except RunasError:
        return _Fresh()  # the full path reports it
    ctx.check_auth()
    now = time.time()
    fresh: list[LoginResult] = []
    hosts: set[str] = set()
    own: set[TokenKey] = set()
    for target in plan.targets:
        if target.registry is None:
            continue
        host = target.registry.host
        left = fresh_seconds(ctx.document, ctx.auth.path, ctx.state, host, renew_before, now)
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


def _plan_from_files(ctx: Context) -> tuple[Plan, dict[str, TokenKey]]:
    """The plan as far as the files tell it, and which of its hosts are profiles' own."""
    from runas_async.core.endpoints import AccountEndpoint, registry_for
    from runas_async.core.models import TokenKey
    from runas_async.core.plan import plan_logins

    identities = ctx.identities()
    resolved, own_hosts = [], {}
    for spec in ctx.specs:
        spec_region = spec.region or ctx.files.region(spec.profile, ctx.env, ctx.region)
        spec = replace(spec, region=spec_region)
        account = ctx.state.account(spec.profile, identities.get(spec.profile))
        if not spec.endpoints and account is not None and spec_region is not None:
            host = registry_for(account, spec_region, ctx.partitions).host
            own_hosts[host] = TokenKey(spec.profile, spec_region)
            spec = replace(spec, endpoints=(AccountEndpoint(account=account, raw=account),))
        resolved.append(spec)
    return plan_logins(resolved, ctx.partitions), own_hosts


def _report_fresh(results: list[LoginResult], ctx: Context) -> Outcome:
    """Every registry fresh: its lines or JSON, no live display, nothing else imported."""
    from runas_async.cli.formats import reporter as reporter_for

    reporter = reporter_for(ctx.output, ctx.stdout, ctx.env, live=False)
    for result in results:
        reporter.update(result)
    reporter.finish(results)
    return Outcome(results=results)


# --- the command line --------------------------------------------------------------------


def _arguments(p: argparse.ArgumentParser, reg: Registration) -> None:
    _add_targets(p, many=True)
    _add_run_options(p, reg, what="logins")
    p.add_argument(
        "--k8s-secret",
        metavar="NAME",
        type=_k8s_secret_name,
        help="print a kubernetes.io/dockerconfigjson Secret NAME (JSON, for kubectl apply -f -)",
    )
    p.add_argument(
        "--namespace",
        dest="namespaces",
        action="append",
        type=_k8s_namespace,
        default=[],
        metavar="NS",
        help="namespace of the --k8s-secret (repeatable: one Secret each)",
    )
    p.add_argument(
        "--renew-before",
        type=_duration,
        metavar="DURATION",
        help="skip registries whose recorded login stays valid longer than DURATION "
        "(30m, 2h, 1h30m); no token is requested for them",
    )
    _add_credential_options(p)
    _add_debug(p)
    add_job(
        p,
        required=False,
        help="after the logins, run CMD with an auth file of its own that holds only them "
        "(removed when CMD ends); exit with its exit status",
    )


def _build(args: argparse.Namespace, job: tuple[str, ...] | None, env: Mapping[str, str]) -> Login:
    """``ecr login``: outputs that print secrets imply the built-in client."""
    check_no_stray(args, "ecr login")
    if job == ():
        raise UsageError(f"give a command after '--' (see '{PROG} ecr login --help')")
    run = run_options(args, env)
    credentials = credentials_of(args)
    command = Login(
        targets_of(args, "login"),
        run,
        credentials,
        args.k8s_secret,
        tuple(args.namespaces),
        job or (),
        renew_before=args.renew_before,
    )
    if args.namespaces and args.k8s_secret is None:
        raise UsageError("--namespace goes with --k8s-secret NAME")
    if args.k8s_secret is not None and run.output is not Output.TEXT:
        raise UsageError(
            f"--k8s-secret prints the Secret as JSON itself: leave out -o {run.output.value}"
        )
    if command.renew_before is not None and (mode := needs_every_token(command)):
        raise UsageError(f"--renew-before leaves fresh registries out; {mode} needs them all")
    if command.prints_secrets:
        command = _with_builtin(command, args)
    client = command.run.client
    if job and not client.private_capable:
        able = ", ".join(name for name, c in CLIENTS.items() if c.private_capable)
        raise UsageError(
            f"--client {client.name} cannot be pointed at a private auth file, "
            f"which '-- CMD' needs: use {able}"
        )
    return command


def _with_builtin(command: Login, args: argparse.Namespace) -> Login:
    if args.client not in (None, BUILTIN):
        raise UsageError(
            f"-o dockerconfigjson and --k8s-secret use the built-in client, not "
            f"{show(args.client)}: leave out --client"
        )
    if command.job:
        raise UsageError("-o dockerconfigjson and --k8s-secret print the logins: no '-- CMD'")
    builtin = CLIENTS[BUILTIN]
    run = replace(command.run, client=builtin, jobs=jobs_for(args.jobs, builtin))
    return replace(command, run=run)


def _needs(command: Login) -> Needs:
    """The context of a login: a job's private auth file and printed secrets are not recorded."""
    return Needs(
        client=command.run.client,
        targets=command.targets,
        run=command.run,
        credentials=command.credentials,
        secrets_out=command.prints_secrets,
        recorded=not (command.prints_secrets or command.job),
    )


COMMAND = Registration(
    path=("ecr", "login"),
    help="log container clients into ECR registries",
    description=(
        "Log a container client into one or more ECR registries with the credentials "
        "of AWS profiles. Tokens are fetched once per (credentials, region), "
        "logins run concurrently, and every login ends up in the client's auth file."
    ),
    add_arguments=_arguments,
    build=_build,
    run=login,
    needs=_needs,
    formats=(Output.TEXT, Output.JSON, Output.DOCKERCONFIGJSON),
    epilog=EXIT_EPILOG,
    takes_command=True,
    order=1,
)
