"""Command line: argv -> Settings -> anyio.run. The only place that exits or picks exit codes."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TextIO

from runas_async.errors import LoginError, RunasError, TokenError, UsageError

if TYPE_CHECKING:
    from aiobotocore.session import AioSession
    from anyio.abc import TaskStatus

    from runas_async.credentials import CredentialResolver
    from runas_async.login import Client
    from runas_async.models import LoginResult
    from runas_async.orchestrate import Reporter
    from runas_async.plan import LoginSpec, Plan
    from runas_async.preconnect import Preconnected

PROG = "runas-async"
DEFAULT_JOBS = 64
DEFAULT_TIMEOUT = 30.0
DEFAULT_DEADLINE = 300.0
CLIENT_NAMES = ("docker", "podman", "nerdctl", "finch", "helm")
CLIENT_ENV = "RUNAS_ASYNC_CLIENT"

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT; other signals give 128 + their number

log = logging.getLogger("runas_async")


@dataclass(frozen=True)
class Settings:
    """Everything one ``ecr`` run needs, taken from argv and the environment."""

    profile: str
    endpoints: tuple[str, ...]
    region: str | None
    jobs: int = DEFAULT_JOBS
    timeout: float = DEFAULT_TIMEOUT
    deadline: float = DEFAULT_DEADLINE
    output: str = "text"
    dry_run: bool = False
    debug: bool = False
    client: str = "docker"
    command: str = "login"
    profiles: tuple[str, ...] = ()
    file: str | None = None
    mfa_code: str | None = None
    refresh: bool = False
    argv: tuple[str, ...] = ()
    """The command of ``exec``, after ``--``."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number of seconds")
    return value


class _Version(argparse.Action):
    """--version that reads package metadata only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> NoReturn:
        from runas_async._version import __version__

        sys.stdout.write(f"{PROG} {__version__}\n")
        parser.exit()


_PROFILE_HELP = "AWS profile (default: $AWS_PROFILE, then 'default')"
_ENDPOINT_HELP = (
    "registry host (ACCOUNT.dkr.ecr.REGION.amazonaws.com, any partition, FIPS, "
    "dual-stack, public.ecr.aws) or 12-digit account number; "
    "default: the profile's own registry"
)


def _add_targets(p: argparse.ArgumentParser, *, many: bool) -> None:
    """PROFILE [ENDPOINT ...], and for many: --profile/--file."""
    p.add_argument(
        "profile",
        nargs="?",
        metavar="PROFILE",
        help="AWS profile (default: $AWS_PROFILE, then 'default')",
    )
    p.add_argument("endpoints", nargs="*" if many else "?", metavar="ENDPOINT", help=_ENDPOINT_HELP)
    p.add_argument("-r", "--region", help="region for account numbers and the default registry")
    if not many:
        return
    p.add_argument(
        "-p",
        "--profile",
        dest="profiles",
        action="append",
        default=[],
        metavar="NAME",
        help="also log into this profile's own registry (repeatable; not with PROFILE)",
    )
    p.add_argument(
        "-f",
        "--file",
        metavar="FILE",
        help="TOML file of [[login]] tables (profile, registries, region); - for stdin",
    )


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-c",
        "--client",
        choices=CLIENT_NAMES,
        metavar="CLIENT",
        help=f"{', '.join(CLIENT_NAMES)} (default: ${CLIENT_ENV}, then docker)",
    )
    p.add_argument(
        "-j",
        "--jobs",
        type=_positive_int,
        default=DEFAULT_JOBS,
        help=f"at most this many clients at once (default: {DEFAULT_JOBS})",
    )
    p.add_argument(
        "-t",
        "--timeout",
        type=_positive_float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"kill a client that takes longer (default: {DEFAULT_TIMEOUT:g})",
    )
    p.add_argument(
        "--deadline",
        type=_positive_float,
        default=DEFAULT_DEADLINE,
        metavar="SECONDS",
        help=f"fail whatever is not done after this long in all (default: {DEFAULT_DEADLINE:g})",
    )
    p.add_argument(
        "-o",
        "--output",
        choices=("text", "json"),
        default="text",
        help="text: live table on a terminal, one line per registry otherwise; json: one document",
    )
    p.add_argument(
        "-n",
        "--dry-run",
        action="store_true",
        help="print the plan without calling AWS or the client",
    )


def _add_credential_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--mfa-code",
        metavar="CODE",
        help="answer the MFA prompt with this code (default: $MFA_CODE, else ask on the terminal)",
    )
    p.add_argument(
        "--refresh",
        action="store_true",
        help="ignore cached credentials (~/.aws/cli/cache) for this run",
    )


def _add_debug(p: argparse.ArgumentParser) -> None:
    p.add_argument("--debug", action="store_true", help="log what runas-async does (never secrets)")


_EXIT_EPILOG = (
    "exit status: 0 all registries done, 1 some failed (all were tried), "
    "2 usage or configuration error (nothing tried), 130 interrupted, 143 terminated, "
    "129 hung up"
)


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The top-level parser and the parsers of each ``ecr`` command."""
    parser = _Parser(
        prog=PROG,
        description="Log container clients into Amazon ECR registries, concurrently.",
    )
    parser.add_argument("--version", action=_Version)
    commands = parser.add_subparsers(dest="service", metavar="COMMAND", required=True)
    ecr = commands.add_parser("ecr", help="Amazon ECR commands")
    ecr_commands = ecr.add_subparsers(dest="command", metavar="COMMAND", required=True)
    login = ecr_commands.add_parser(
        "login",
        help="log container clients into ECR registries",
        description=(
            "Log a container client into one or more ECR registries with the credentials "
            "of AWS profiles. Tokens are fetched once per (credentials, region), "
            "logins run concurrently, and every login ends up in the client's auth file."
        ),
        epilog=_EXIT_EPILOG,
    )
    _add_targets(login, many=True)
    _add_run_options(login)
    _add_credential_options(login)
    _add_debug(login)
    logout = ecr_commands.add_parser(
        "logout",
        help="remove ECR registries from the client's auth file",
        description=(
            "Log a container client out of exactly these ECR registries, concurrently, "
            "leaving every other entry of its auth file as it is."
        ),
        epilog=_EXIT_EPILOG,
    )
    _add_targets(logout, many=True)
    _add_run_options(logout)
    _add_credential_options(logout)
    _add_debug(logout)
    password = ecr_commands.add_parser(
        "password",
        help="print a registry's login password, for tools runas-async does not drive",
        description=(
            "Print the password for one registry (ECR's get-login-password) alone on "
            "stdout, e.g. for: runas-async ecr password prod | tool login -u AWS --password-stdin"
        ),
    )
    _add_targets(password, many=False)
    _add_credential_options(password)
    _add_debug(password)
    env_cmd = commands.add_parser(
        "env",
        help="print a profile's credentials for eval, or as credential_process JSON",
        description=(
            "Print a profile's credentials and region as shell lines for eval "
            '(eval "$(runas-async env prod)"), or with --output json in the '
            "credential_process format."
        ),
    )
    env_cmd.add_argument("profile", nargs="?", metavar="PROFILE", help=_PROFILE_HELP)
    env_cmd.add_argument("-r", "--region", help="region to export (default: the profile's)")
    env_cmd.add_argument(
        "-o",
        "--output",
        choices=("sh", "fish", "json"),
        default="sh",
        help="sh (bash, zsh) or fish lines for eval; json: credential_process format",
    )
    _add_credential_options(env_cmd)
    _add_debug(env_cmd)
    exec_cmd = commands.add_parser(
        "exec",
        usage=f"{PROG} exec [-h] [-r REGION] [--mfa-code CODE] [--refresh] [--debug] "
        "[PROFILE] -- CMD [ARG ...]",
        help="run a command with a profile's credentials in its environment",
        description=(
            "Run CMD with the profile's credentials and region in its environment; "
            "exit with its exit status (128+N if signal N killed it). SIGINT, SIGTERM "
            "and SIGHUP are passed on to it."
        ),
    )
    exec_cmd.add_argument("profile", nargs="?", metavar="PROFILE", help=_PROFILE_HELP)
    exec_cmd.add_argument("-r", "--region", help="region to set (default: the profile's)")
    _add_credential_options(exec_cmd)
    _add_debug(exec_cmd)
    return parser, {
        "login": login,
        "logout": logout,
        "password": password,
        "env": env_cmd,
        "exec": exec_cmd,
    }


def parse_settings(argv: Sequence[str], env: Mapping[str, str]) -> Settings:
    parser, subs = build_parser()
    argv = list(argv)
    if argv and argv[0] in ("env", "exec"):
        return _parse_runas(argv, env, subs[argv[0]])
    if len(argv) < 2 or argv[0] != "ecr" or argv[1] not in subs:
        parser.parse_args(argv)  # prints help or version, or raises UsageError
        raise UsageError(f"unknown command {' '.join(argv)!r} (see '{PROG} --help')")
    command = argv[1]
    # Intermixed: options may come after PROFILE and between ENDPOINTs.
    args = subs[command].parse_intermixed_args(argv[2:])
    endpoints = args.endpoints if isinstance(args.endpoints, list) else [args.endpoints]
    endpoints = [e for e in endpoints if e is not None]
    profiles = tuple(getattr(args, "profiles", ()))
    file = getattr(args, "file", None)
    if args.profile is not None and (profiles or file):
        raise UsageError(
            f"give either PROFILE [ENDPOINT ...] or --profile/--file, not both "
            f"(got PROFILE {args.profile!r}; see '{PROG} ecr {command} --help')"
        )
    client = getattr(args, "client", None) or env.get(CLIENT_ENV) or "docker"
    if client not in CLIENT_NAMES:
        raise UsageError(
            f"unknown client {client!r} (from ${CLIENT_ENV}); choose from {', '.join(CLIENT_NAMES)}"
        )
    return Settings(
        command=command,
        profile=args.profile or env.get("AWS_PROFILE") or "default",
        endpoints=tuple(endpoints),
        profiles=profiles,
        file=file,
        region=args.region,
        jobs=getattr(args, "jobs", DEFAULT_JOBS),
        timeout=getattr(args, "timeout", DEFAULT_TIMEOUT),
        deadline=getattr(args, "deadline", DEFAULT_DEADLINE),
        output=getattr(args, "output", "text"),
        dry_run=getattr(args, "dry_run", False),
        debug=args.debug,
        client=client,
        mfa_code=args.mfa_code,
        refresh=args.refresh,
    )


def _parse_runas(argv: list[str], env: Mapping[str, str], sub: argparse.ArgumentParser) -> Settings:
    """``env [options] [PROFILE]`` and ``exec [options] [PROFILE] -- CMD [ARG ...]``."""
    command, rest = argv[0], argv[1:]
    run: list[str] = []
    if command == "exec":
        if "--" not in rest:
            raise UsageError(f"exec needs the command after '--' (see '{PROG} exec --help')")
        at = rest.index("--")
        rest, run = rest[:at], rest[at + 1 :]
        if not run:
            raise UsageError(f"exec needs a command after '--' (see '{PROG} exec --help')")
    args = sub.parse_intermixed_args(rest)
    return Settings(
        command=command,
        profile=args.profile or env.get("AWS_PROFILE") or "default",
        endpoints=(),
        region=args.region,
        output=getattr(args, "output", "sh"),
        debug=args.debug,
        mfa_code=args.mfa_code,
        refresh=args.refresh,
        argv=tuple(run),
    )


def exit_status(
    results: Sequence[LoginResult] | None,
    error: BaseException | None,
    signum: int | None = None,
) -> int:
    """The exit code of a run: the one place that decides it."""
    if signum is not None:
        return 128 + signum
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(error, TokenError | LoginError):
        return EXIT_FAILED  # `ecr password`: the one registry's token could not be had
    if isinstance(error, RunasError):
        return EXIT_USAGE
    if error is not None:
        raise error
    from runas_async.models import Status

    if results is not None and all(r.status is Status.OK for r in results):
        return EXIT_OK
    return EXIT_FAILED


def _first_runas_error(error: BaseException) -> BaseException:
    """Unwrap exception groups from task groups down to our own error."""
    while isinstance(error, BaseExceptionGroup):
        leaves = [e for e in error.exceptions if isinstance(e, RunasError | BaseExceptionGroup)]
        if not leaves:
            return error
        error = leaves[0]
    return error


def _reporter(settings: Settings, stream: TextIO) -> Reporter:
    from runas_async.report import JsonReporter, PlainReporter

    if settings.output == "json":
        return JsonReporter(stream)
    if stream.isatty() and os.environ.get("TERM") != "dumb":
        from rich.console import Console

        from runas_async.report import LiveTableReporter

        return LiveTableReporter(Console(file=stream, stderr=False))
    return PlainReporter(stream)


@dataclass(frozen=True)
class _Prepared:
    plan: Plan
    sessions: dict[str, AioSession]
    client: Client
    executable: str | None
    preconnected: Preconnected | None = None


def _read_file(name: str) -> str:
    if name == "-":
        return sys.stdin.read()
    try:
        return Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise UsageError(f"cannot read --file {name!r}: {reason}") from e


def _specs(settings: Settings) -> list[LoginSpec]:
    from runas_async.endpoints import parse_endpoints
    from runas_async.loginfile import parse_login_file
    from runas_async.partitions import load_partitions
    from runas_async.plan import LoginSpec

    partitions = load_partitions()
    specs: list[LoginSpec] = []
    if settings.file is not None:
        name = "<stdin>" if settings.file == "-" else settings.file
        specs += parse_login_file(_read_file(settings.file), name, partitions)
    specs += [LoginSpec(p, None) for p in settings.profiles]
    if not specs:
        endpoints = parse_endpoints(list(settings.endpoints), partitions)
        specs.append(LoginSpec(settings.profile, None, tuple(endpoints)))
    return specs


def _prepare(settings: Settings, env: Mapping[str, str]) -> _Prepared:
    """Everything that can fail before any request: arguments, client, profiles, files.

    The start-up connections (preconnect.py) are opened here, before the heavy imports;
    they are closed again if anything here fails.
    """
    from runas_async.login import CLIENTS, find_client
    from runas_async.partitions import load_partitions

    specs = _specs(settings)
    client = CLIENTS[settings.client]
    executable = None
    if not settings.dry_run and settings.command != "password":
        executable = find_client(client.name, env)
    preconnected = None
    if not settings.dry_run and settings.command != "logout":
        from runas_async import preconnect

        # Before the heavy imports below: the STS connection opens while they run.
        preconnected = preconnect.start(specs, env, load_partitions(), settings.region)
        log.debug("connecting at start-up to %s", preconnected.targets or "nothing")
    try:
        return _sessions_and_plan(settings, env, specs, client, executable, preconnected)
    except BaseException:
        if preconnected is not None:
            preconnected.close()
        raise


def _sessions_and_plan(
    settings: Settings,
    env: Mapping[str, str],
    specs: list[LoginSpec],
    client: Client,
    executable: str | None,
    preconnected: Preconnected | None,
) -> _Prepared:
    from dataclasses import replace

    from runas_async.aws import new_session, profile_region
    from runas_async.errors import AwsError
    from runas_async.partitions import load_partitions
    from runas_async.plan import plan_logins

    sessions: dict[str, AioSession] = {}
    regions: dict[str, str | None] = {}
    resolved = []
    for spec in specs:
        try:
            if spec.profile not in sessions:
                sessions[spec.profile] = new_session(spec.profile)
                regions[spec.profile] = profile_region(sessions[spec.profile], settings.region, env)
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
    return _Prepared(
        plan=plan,
        sessions=sessions,
        client=client,
        executable=executable,
        preconnected=preconnected,
    )


def _resolver(
    settings: Settings, env: Mapping[str, str], reporter: object = None
) -> CredentialResolver:
    """Credentials with awscli's cache and one MFA prompt per device (the live table paused)."""
    from runas_async.credentials import default_resolver

    return default_resolver(
        env,
        mfa_code=settings.mfa_code,
        refresh=settings.refresh,
        pause=getattr(reporter, "paused", None),
    )


def _runas(settings: Settings, env: Mapping[str, str], stdout: TextIO) -> int:
    """``env`` and ``exec``: resolve one profile, then print it or run the command with it."""
    import anyio

    from runas_async.aws import new_session, profile_region
    from runas_async.runas import (
        child_environ,
        credential_process_json,
        env_lines,
        exec_command,
    )

    session = new_session(settings.profile)
    region = profile_region(session, settings.region, env)
    resolver = _resolver(settings, env)

    async def go() -> int:
        creds = await resolver.resolve(session, settings.profile)
        if settings.command == "exec":
            return await exec_command(settings.argv, child_environ(env, creds, region))
        if settings.output == "json":
            stdout.write(credential_process_json(creds))
        else:
            stdout.write(env_lines(creds, region, settings.output))
        stdout.flush()
        return EXIT_OK

    status: int = anyio.run(go)
    return status


def _password(
    prepared: _Prepared, stdout: TextIO, resolver: CredentialResolver, env: Mapping[str, str]
) -> int:
    import anyio

    from runas_async.aws import AwsTokenProvider

    (target,) = prepared.plan.targets
    tokens = AwsTokenProvider(
        prepared.sessions, resolver=resolver, env=env, preconnected=prepared.preconnected
    )
    token = anyio.run(tokens.token, target.key)
    stdout.write(token.password + "\n")
    stdout.flush()
    return EXIT_OK


def _run(settings: Settings, env: Mapping[str, str], stdout: TextIO) -> int:
    if settings.command in ("env", "exec"):
        return _runas(settings, env, stdout)
    prepared = _prepare(settings, env)
    try:
        return _run_prepared(prepared, settings, env, stdout)
    finally:
        if prepared.preconnected is not None:
            prepared.preconnected.close()


def _run_prepared(
    prepared: _Prepared, settings: Settings, env: Mapping[str, str], stdout: TextIO
) -> int:
    plan = prepared.plan
    if settings.command == "password":
        if len(plan.targets) != 1:
            raise UsageError("ecr password takes at most one ENDPOINT")
        return _password(prepared, stdout, _resolver(settings, env), env)
    if settings.dry_run or prepared.executable is None:
        from runas_async.report import render_plan

        render_plan(plan, settings.output, stdout, logout=settings.command == "logout")
        return EXIT_OK

    import anyio

    from runas_async.aws import AwsTokenProvider
    from runas_async.login import ClientRunner
    from runas_async.orchestrate import run_plan

    auth = prepared.client.auth_file(env)
    seed = auth.preflight()
    reporter = _reporter(settings, stdout)
    runner = ClientRunner(prepared.client, prepared.executable, auth, seed, env)
    tokens = AwsTokenProvider(
        prepared.sessions,
        resolver=_resolver(settings, env, reporter),
        env=env,
        preconnected=prepared.preconnected,
    )
    received: list[int] = []

    stopping = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    async def watch_signals(
        stop: anyio.Event, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        try:
            with anyio.open_signal_receiver(*stopping) as signals:
                task_status.started()
                async for signum in signals:
                    log.debug("received signal %d; stopping", signum)
                    received.append(signum)
                    stop.set()
        finally:
            if received:
                # Stopping already: a second Ctrl-C must not cut the clean-up short.
                for signum in stopping:
                    signal.signal(signum, signal.SIG_IGN)

    async def go() -> list[LoginResult]:
        stop = anyio.Event()
        # The receiver outlives the runner, whose exit merges the logins done and
        # removes the temporary files: signals then cannot interrupt that.
        async with anyio.create_task_group() as tg:
            await tg.start(watch_signals, stop)
            async with runner:
                results = await run_plan(
                    plan,
                    tokens,
                    runner,
                    reporter,
                    jobs=settings.jobs,
                    login_timeout=settings.timeout,
                    deadline=settings.deadline,
                    stop=stop,
                    logout=runner if settings.command == "logout" else None,
                    # Clients start once the first AWS connection is under way:
                    # spawning them earlier would delay it.
                    prestart=tokens.on_wire,
                )
            tg.cancel_scope.cancel()
        log.debug(
            "%d login(s) merged into, %d logout(s) removed from %s",
            len(runner.logged_in),
            len(runner.logged_out),
            auth.path,
        )
        return results

    _fast_child_watcher()
    try:
        results = anyio.run(go)
    finally:
        stop_display = getattr(reporter, "stop", None)
        if stop_display is not None:
            stop_display()
    return exit_status(results, None, received[0] if received else None)


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


def run() -> NoReturn:
    """The console script: ``main()``, then exit without tearing the interpreter down.

    Everything runas-async writes is flushed and its temporary files are gone
    when ``main()`` returns; skipping interpreter shutdown (module teardown,
    garbage collection of aiobotocore's and aiohttp's objects) saves about
    0.2 s on every run.
    """
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        logging.shutdown()
        os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit status (also usable in-process)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    env = os.environ
    debug = "--debug" in argv
    if debug:
        # Our own logger only: botocore's debug log would print token responses.
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(relativeCreated)7.1fms %(name)s: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.DEBUG)
    try:
        settings = parse_settings(argv, env)
        return _run(settings, env, sys.stdout)
    except SystemExit as e:  # --help, --version
        return int(e.code or 0)
    except KeyboardInterrupt as e:
        return exit_status(None, e)
    except BaseException as raw:
        error = _first_runas_error(raw)
        if isinstance(error, RunasError):
            sys.stderr.write(f"{PROG}: error: {error}\n")
            if debug:
                log.debug("details", exc_info=error)
            return exit_status(None, error)
        if isinstance(raw, BaseExceptionGroup) and raw.subgroup(KeyboardInterrupt):
            return EXIT_INTERRUPTED
        raise
