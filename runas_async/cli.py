"""Command line: argv -> Settings -> anyio.run. The only place that exits or picks exit codes."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn, TextIO

from runas_async.errors import RunasError, UsageError

if TYPE_CHECKING:
    from aiobotocore.session import AioSession

    from runas_async.models import LoginResult
    from runas_async.orchestrate import Plan, Reporter

PROG = "runas-async"
DEFAULT_JOBS = 64
DEFAULT_TIMEOUT = 30.0
DEFAULT_DEADLINE = 300.0

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM

log = logging.getLogger("runas_async")


@dataclass(frozen=True)
class Settings:
    """Everything one ``ecr login`` run needs, taken from argv and the environment."""

    profile: str
    endpoints: tuple[str, ...]
    region: str | None
    jobs: int
    timeout: float
    deadline: float
    output: str
    dry_run: bool
    debug: bool
    client: str = "docker"


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


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("runas-async")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0+unknown"


def build_parser() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The top-level parser and the ``ecr login`` parser."""
    parser = _Parser(
        prog=PROG,
        description="Log container clients into Amazon ECR registries, concurrently.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="service", metavar="COMMAND", required=True)
    ecr = commands.add_parser("ecr", help="Amazon ECR commands")
    ecr_commands = ecr.add_subparsers(dest="command", metavar="COMMAND", required=True)
    login = ecr_commands.add_parser(
        "login",
        help="log the docker CLI into ECR registries",
        description=(
            "Log the docker CLI into one or more ECR registries with the credentials "
            "of an AWS profile. Tokens are fetched once per (credentials, region), "
            "logins run concurrently, and every login ends up in docker's config.json."
        ),
        epilog=(
            "exit status: 0 all registries logged in, 1 some failed (all were tried), "
            "2 usage or configuration error (nothing tried), 130 interrupted"
        ),
    )
    login.add_argument(
        "profile",
        nargs="?",
        metavar="PROFILE",
        help="AWS profile (default: $AWS_PROFILE, then 'default')",
    )
    login.add_argument(
        "endpoints",
        nargs="*",
        metavar="ENDPOINT",
        help=(
            "registry host (ACCOUNT.dkr.ecr.REGION.amazonaws.com, any partition, FIPS, "
            "dual-stack) or 12-digit account number; default: the profile's own registry"
        ),
    )
    login.add_argument("-r", "--region", help="region for account numbers and the default registry")
    login.add_argument(
        "-j",
        "--jobs",
        type=_positive_int,
        default=DEFAULT_JOBS,
        help=f"at most this many logins at once (default: {DEFAULT_JOBS})",
    )
    login.add_argument(
        "-t",
        "--timeout",
        type=_positive_float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"kill a login that takes longer (default: {DEFAULT_TIMEOUT:g})",
    )
    login.add_argument(
        "--deadline",
        type=_positive_float,
        default=DEFAULT_DEADLINE,
        metavar="SECONDS",
        help=f"fail whatever is not done after this long in all (default: {DEFAULT_DEADLINE:g})",
    )
    login.add_argument(
        "-o",
        "--output",
        choices=("text", "json"),
        default="text",
        help="text: live table on a terminal, one line per registry otherwise; json: one document",
    )
    login.add_argument(
        "-n",
        "--dry-run",
        action="store_true",
        help="print the plan without calling AWS or docker",
    )
    login.add_argument(
        "--debug", action="store_true", help="log what runas-async does (never secrets)"
    )
    return parser, login


def parse_settings(argv: Sequence[str], env: Mapping[str, str]) -> Settings:
    parser, login = build_parser()
    if list(argv[:2]) != ["ecr", "login"]:
        parser.parse_args(argv)  # prints help or version, or raises UsageError
        raise UsageError(f"unknown command {' '.join(argv)!r} (see '{PROG} --help')")
    # Intermixed: options may come after PROFILE and between ENDPOINTs.
    args = login.parse_intermixed_args(argv[2:])
    profile = args.profile or env.get("AWS_PROFILE") or "default"
    return Settings(
        profile=profile,
        endpoints=tuple(args.endpoints),
        region=args.region,
        jobs=args.jobs,
        timeout=args.timeout,
        deadline=args.deadline,
        output=args.output,
        dry_run=args.dry_run,
        debug=args.debug,
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
    session: AioSession
    executable: str | None


def _prepare(settings: Settings, env: Mapping[str, str]) -> _Prepared:
    """Everything that can fail before any network call: arguments, client, profile, files."""
    from runas_async.endpoints import parse_endpoints
    from runas_async.partitions import load_partitions

    partitions = load_partitions()
    endpoints = parse_endpoints(list(settings.endpoints), partitions)
    executable = None
    if not settings.dry_run:
        from runas_async.login import find_client

        executable = find_client(settings.client, env)

    from runas_async.aws import new_session, profile_region
    from runas_async.orchestrate import build_plan

    session = new_session(settings.profile)
    region = profile_region(session, settings.region, env)
    plan = build_plan(settings.profile, region, endpoints, partitions)
    log.debug(
        "plan: %d registries, %d token requests, profile %r, region %s",
        len(plan.targets),
        len(plan.keys),
        settings.profile,
        region,
    )
    return _Prepared(plan=plan, session=session, executable=executable)


def _login(settings: Settings, env: Mapping[str, str], stdout: TextIO) -> int:
    prepared = _prepare(settings, env)
    plan = prepared.plan
    if settings.dry_run or prepared.executable is None:
        from runas_async.report import render_plan

        render_plan(plan, settings.output, stdout)
        return EXIT_OK

    import anyio

    from runas_async.aws import AwsTokenProvider
    from runas_async.dockerconfig import DockerConfig, config_dir
    from runas_async.login import CLIENTS, ClientRunner
    from runas_async.orchestrate import run_plan

    docker_config = DockerConfig(config_dir(env))
    seed = docker_config.preflight()
    reporter = _reporter(settings, stdout)
    runner = ClientRunner(CLIENTS["docker"], prepared.executable, docker_config, seed, env)
    tokens = AwsTokenProvider({settings.profile: prepared.session})

    received: list[int] = []

    async def watch_signals(stop: anyio.Event) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                log.debug("received signal %d; stopping", signum)
                received.append(signum)
                stop.set()

    async def go() -> list[LoginResult]:
        stop = anyio.Event()
        async with runner, anyio.create_task_group() as tg:
            tg.start_soon(watch_signals, stop)
            results = await run_plan(
                plan,
                tokens,
                runner,
                reporter,
                jobs=settings.jobs,
                login_timeout=settings.timeout,
                deadline=settings.deadline,
                stop=stop,
            )
            tg.cancel_scope.cancel()
        log.debug("merged %d login(s) into %s", len(runner.logged_in), docker_config.path)
        return results

    try:
        results = anyio.run(go)
    finally:
        stop_display = getattr(reporter, "stop", None)
        if stop_display is not None:
            stop_display()
    return exit_status(results, None, received[0] if received else None)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``runas-async`` console script."""
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
        return _login(settings, env, sys.stdout)
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
