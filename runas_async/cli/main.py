"""Command line: argv -> a typed command (options.py) -> commands/ -> exit status.

The only place that reads the process environment, exits, or picks exit codes
(:func:`exit_status`). Imports stay light until a command runs: ``--help`` and
``--version`` load neither aiobotocore nor rich.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import gc
import io
import json
import logging
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, NoReturn, TextIO, cast

from runas_async.core.clients import BUILTIN, CLIENT_ENV, CLIENTS, DEFAULT_CLIENT, Client, Redirect
from runas_async.core.errors import (
    CommandNotFound,
    CredentialsError,
    LoginError,
    RunasError,
    TokenError,
    UsageError,
)
from runas_async.core.options import (
    BUILTIN_JOBS,
    DEFAULT_DEADLINE,
    DEFAULT_JOBS,
    DEFAULT_TIMEOUT,
    Command,
    Completion,
    ConfigureDocker,
    CredentialOptions,
    Env,
    EnvFormat,
    Exec,
    ListLogins,
    ListProfiles,
    Login,
    Logout,
    Output,
    Password,
    RunOptions,
    Shell,
    Targets,
    needs_every_token,
)
from runas_async.core.sanitize import MAX_SHOWN, show
from runas_async.core.shells import PROFILES_FLAG, CommandSpec, OptionSpec, Value

if TYPE_CHECKING:
    from runas_async.core.models import LoginResult

PROG = "runas-async"
HELPER_CLIENTS = ("docker", "nerdctl", "podman")
"""The clients whose auth file has credHelpers for docker-credential-runas-async."""

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT; other signals give 128 + their number

log = logging.getLogger("runas_async")


HELP_WIDTH = 80
"""Help is wrapped to the terminal, and never wider than this."""


class _Formatter(argparse.HelpFormatter):
    """argparse's formatter, at most :data:`HELP_WIDTH` columns wide."""

    def __init__(self, prog: str) -> None:
        import shutil

        width = min(shutil.get_terminal_size().columns, HELP_WIDTH) - 2
        super().__init__(prog, width=max(width, 40))


_LONG_QUOTE = re.compile(rf"'[^'\\]{{{MAX_SHOWN + 1},}}'")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and help at most 80 columns wide."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        # argparse quotes what was typed (invalid choice: 'x...'): each quote at most
        # MAX_SHOWN characters, shortened in the middle, like every echoed value
        message = _LONG_QUOTE.sub(lambda m: show(ast.literal_eval(m[0])), message)
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{show(text)} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{show(text)} must be at least 1")
    return value


MAX_DURATION = 366 * 24 * 3600
"""The longest duration or number of seconds an option takes: a year and a day."""


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{show(text)} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{show(text)} must be a positive number of seconds")
    if value > MAX_DURATION:
        raise argparse.ArgumentTypeError(f"{show(text)} is longer than 366 days")
    return value


_UNITS = {"s": 1, "m": 60, "h": 3600}


def _duration(text: str) -> float:
    """``90m``, ``2h``, ``1h30m``: one or more <integer><unit> groups, in seconds; at most
    366 days."""
    if not re.fullmatch(r"(?:[0-9]+[smh])+", text):
        raise argparse.ArgumentTypeError(
            f"{show(text)} is not a duration: one or more <integer><unit> groups with units "
            "s, m, h (30m, 2h, 1h30m)"
        )
    groups = [(n.lstrip("0"), u) for n, u in re.findall(r"([0-9]+)([smh])", text)]
    # a group of more than 12 digits is past the cap whatever its unit: no huge int math
    if any(len(n) > 12 for n, _ in groups):
        raise argparse.ArgumentTypeError(f"{show(text)} is longer than 366 days")
    seconds = sum(int(n or "0") * _UNITS[u] for n, u in groups)
    if seconds > MAX_DURATION:
        raise argparse.ArgumentTypeError(f"{show(text)} is longer than 366 days")
    return float(seconds)


_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def _k8s_secret_name(text: str) -> str:
    """A Secret's name as the API server takes it: a DNS-1123 subdomain (lowercase labels
    of letters, digits and ``-``, joined by dots), at most 253 characters."""
    if len(text) > 253 or not all(_DNS_LABEL.fullmatch(p) for p in text.split(".")):
        raise argparse.ArgumentTypeError(
            f"{show(text)} is not a Kubernetes Secret name: lowercase letters, digits, '-' "
            "and '.', starting and ending with a letter or digit, at most 253 characters"
        )
    return text


def _k8s_namespace(text: str) -> str:
    """A namespace as the API server takes it: a DNS-1123 label, at most 63 characters."""
    if len(text) > 63 or not _DNS_LABEL.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{show(text)} is not a Kubernetes namespace: lowercase letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters"
        )
    return text


class _Version(argparse.Action):
    """--version that reads package metadata only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> NoReturn:
        from runas_async._version import __version__

        sys.stdout.write(f"{PROG} {__version__}\n")
        parser.exit()


_PROFILE_HELP = (
    "AWS profile (default: the default credentials, as awscli finds them: "
    "environment keys, $AWS_PROFILE, web identity, container, instance role)"
)
_ENDPOINT_HELP = (
    "registry host (ACCOUNT.dkr.ecr.REGION.amazonaws.com, any partition, FIPS, "
    "dual-stack, public.ecr.aws) or 12-digit account number; "
    "default: the profile's own registry"
)


def _add_targets(p: argparse.ArgumentParser, *, many: bool, verb: str = "log into") -> None:
    """PROFILE [ENDPOINT ...], and for many: --profile/--file."""
    p.add_argument(
        "profile",
        nargs="?",
        metavar="PROFILE",
        help=_PROFILE_HELP + "; may be left out before an ENDPOINT",
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
        help=f"also {verb} this profile's own registry (repeatable; not with PROFILE)",
    )
    p.add_argument(
        "-f",
        "--file",
        metavar="FILE",
        help="TOML file of [[login]] tables (profile, registries, region); - for stdin",
    )


def _add_client_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-c",
        "--client",
        choices=tuple(CLIENTS),
        metavar="CLIENT",
        help=f"{', '.join(CLIENTS)} (default: ${CLIENT_ENV}, then {DEFAULT_CLIENT.name})",
    )


def _add_run_options(p: argparse.ArgumentParser) -> None:
    _add_client_option(p)
    p.add_argument(
        "-j",
        "--jobs",
        type=_positive_int,
        default=None,
        help=f"at most this many logins at once (default: {DEFAULT_JOBS}; "
        f"{BUILTIN_JOBS} with --client builtin, which starts no processes)",
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
        type=Output,
        choices=tuple(Output),
        default=Output.TEXT,
        metavar="FORMAT",
        help="text: live table on a terminal, one line per registry otherwise; json: one "
        'document; dockerconfigjson (login): the logins\' {"auths": ...} with secrets',
    )
    p.add_argument(
        "-n",
        "--dry-run",
        action="store_true",
        help="check what a real run checks, then print the plan without calling AWS or the client",
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
    login.add_argument(
        "--k8s-secret",
        metavar="NAME",
        type=_k8s_secret_name,
        help="print a kubernetes.io/dockerconfigjson Secret NAME (JSON, for kubectl apply -f -)",
    )
    login.add_argument(
        "--namespace",
        dest="namespaces",
        action="append",
        type=_k8s_namespace,
        default=[],
        metavar="NS",
        help="namespace of the --k8s-secret (repeatable: one Secret each)",
    )
    login.add_argument(
        "--renew-before",
        type=_duration,
        metavar="DURATION",
        help="skip registries whose recorded login stays valid longer than DURATION "
        "(30m, 2h, 1h30m); no token is requested for them",
    )
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
    _add_targets(logout, many=True, verb="log out of")
    _add_run_options(logout)
    logout.add_argument(
        "--expired",
        action="store_true",
        help="log out of every registry whose recorded login has expired (no ENDPOINT)",
    )
    _add_credential_options(logout)
    _add_debug(logout)
    status = ecr_commands.add_parser(
        "status",
        help="list the ECR registries of the client's auth file and when their logins end",
        description=(
            "List every ECR registry in the client's auth file, its credential store or its "
            "credHelpers: where the credentials live, whether runas-async logged it in and "
            "with which profile, and the time left. No AWS call. Exit status 1 when one has "
            "expired."
        ),
    )
    _add_client_option(status)
    status.add_argument(
        "-o",
        "--output",
        type=Output,
        choices=tuple(Output),
        default=Output.TEXT,
        help="text: one line per registry; json: one document",
    )
    _add_debug(status)
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
        type=EnvFormat,
        choices=tuple(EnvFormat),
        default=EnvFormat.SH,
        help="sh (bash, zsh) or fish lines for eval; json: credential_process format",
    )
    _add_credential_options(env_cmd)
    _add_debug(env_cmd)
    exec_cmd = commands.add_parser(
        "exec",
        usage=f"{PROG} exec [-h] [-r REGION] [--mfa-code CODE] [--refresh] [--debug]\n"
        f"{' ' * len(f'usage: {PROG} exec ')}[PROFILE] -- CMD [ARG ...]",
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
    configure = ecr_commands.add_parser(
        "configure-docker",
        help="send ECR registries to runas-async's docker credential helper",
        description=(
            "Write credHelpers entries that send these registries to "
            "docker-credential-runas-async, and record in registries.toml which profile "
            "serves each (as gcloud auth configure-docker). Everything else stays."
        ),
    )
    _add_targets(configure, many=True, verb="send")
    configure.add_argument(
        "-c",
        "--client",
        choices=HELPER_CLIENTS,
        metavar="CLIENT",
        help="docker (and nerdctl: config.json) or podman (containers auth.json); default docker",
    )
    configure.add_argument(
        "--remove", action="store_true", help="take the entries out again (and the mapping)"
    )
    _add_debug(configure)
    completion = commands.add_parser(
        "completion",
        help="print a shell's completion script",
        description=(
            "Print a completion script for bash, zsh or fish: it completes commands, "
            "options, client names, and profile names from the AWS config files. "
            f"bash: source <({PROG} completion bash); zsh (after compinit): "
            f"source <({PROG} completion zsh); fish: {PROG} completion fish | source"
        ),
    )
    completion.add_argument(
        "shell",
        nargs="?",
        type=Shell,
        choices=tuple(Shell),
        metavar="SHELL",
        help="bash, zsh or fish",
    )
    completion.add_argument(PROFILES_FLAG, action="store_true", help=argparse.SUPPRESS)
    return parser, {
        "configure-docker": configure,
        "login": login,
        "logout": logout,
        "password": password,
        "status": status,
        "env": env_cmd,
        "exec": exec_cmd,
        "completion": completion,
    }


def _value_of(action: argparse.Action) -> Value | None:
    """What an option's value completes to; None for a flag."""
    if action.nargs == 0:
        return None
    if action.dest in ("profile", "profiles"):
        return Value.PROFILE
    if action.dest == "file":
        return Value.FILE
    if action.choices is not None:
        return Value.CHOICE
    return Value.NONE


def completion_specs() -> tuple[CommandSpec, ...]:
    """Every command as the completion scripts see it, read from the parsers themselves."""
    parser, subs = build_parser()
    specs = [
        CommandSpec(
            (),
            subcommands=("ecr", "env", "exec", "completion"),
            options=(OptionSpec(("-h", "--help")), OptionSpec(("--version",))),
        )
    ]
    specs.append(
        CommandSpec(
            ("ecr",),
            subcommands=("login", "logout", "password"),
            options=(OptionSpec(("-h", "--help")),),
        )
    )
    paths = {
        "login": ("ecr", "login"),
        "logout": ("ecr", "logout"),
        "password": ("ecr", "password"),
    }
    for name, sub in subs.items():
        options = []
        positional = Value.NONE
        choices: tuple[str, ...] = ()
        for action in sub._actions:
            if action.help == argparse.SUPPRESS:
                continue
            if action.option_strings:
                value = _value_of(action)
                listed = tuple(str(c) for c in action.choices or ()) if value else ()
                options.append(OptionSpec(tuple(action.option_strings), value, listed))
            elif positional is Value.NONE:
                if action.dest == "profile":
                    positional = Value.PROFILE
                elif action.choices is not None:
                    positional, choices = Value.CHOICE, tuple(str(c) for c in action.choices)
        specs.append(
            CommandSpec(
                paths.get(name, (name,)),
                options=tuple(options),
                positional=positional,
                positional_choices=choices,
            )
        )
    return tuple(specs)


def parse(argv: Sequence[str], env: Mapping[str, str]) -> Command:  # noqa: C901 - reg splits it
    """argv (without the program name) as a typed command; UsageError when it is not one."""
    parser, subs = build_parser()
    argv = list(argv)
    if argv and argv[0] in ("env", "exec"):
        return _parse_runas(argv, env, subs[argv[0]])
    if argv and argv[0] == "completion":
        return _parse_completion(argv[1:], subs["completion"])
    if len(argv) < 2 or argv[0] != "ecr" or argv[1] not in subs:
        parser.parse_args(argv)  # prints help or version, or raises UsageError
        raise UsageError(f"unknown command {show(' '.join(argv))} (see '{PROG} --help')")
    name, rest = argv[1], argv[2:]
    job: list[str] = []
    if name == "login" and "--" in rest:
        at = rest.index("--")
        rest, job = rest[:at], rest[at + 1 :]
        if not job:
            raise UsageError(f"give a command after '--' (see '{PROG} ecr login --help')")
    # Intermixed: options may come after PROFILE and between ENDPOINTs.
    args = subs[name].parse_intermixed_args(rest)
    if name == "status":
        return ListLogins(_client(args.client, env), args.output)
    targets = _targets(args, env, name)
    if name == "configure-docker":
        client = CLIENTS[args.client or DEFAULT_CLIENT.name]
        return ConfigureDocker(targets, client, args.remove)
    credentials = CredentialOptions(mfa_code=args.mfa_code, refresh=args.refresh)
    if name == "password":
        return Password(targets, credentials)
    client = _client(args.client, env)
    run = RunOptions(
        client=client,
        jobs=_jobs(args.jobs, client),
        timeout=args.timeout,
        deadline=args.deadline,
        output=args.output,
        dry_run=args.dry_run,
    )
    if name == "logout":
        if run.output is Output.DOCKERCONFIGJSON:
            raise UsageError("-o dockerconfigjson is for ecr login only")
        if args.expired and targets != Targets(None, region=targets.region):
            raise UsageError("--expired finds the registries itself: give no PROFILE or ENDPOINT")
        return Logout(targets, run, credentials, expired=args.expired)
    return _login(args, targets, run, credentials, tuple(job))


def _login(
    args: argparse.Namespace,
    targets: Targets,
    run: RunOptions,
    credentials: CredentialOptions,
    job: tuple[str, ...],
) -> Login:
    """``ecr login``: outputs that print secrets imply the built-in client."""
    command = Login(
        targets,
        run,
        credentials,
        args.k8s_secret,
        tuple(args.namespaces),
        job,
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
        if args.client not in (None, BUILTIN):
            raise UsageError(
                f"-o dockerconfigjson and --k8s-secret use the built-in client, not "
                f"{show(args.client)}: leave out --client"
            )
        if job:
            raise UsageError("-o dockerconfigjson and --k8s-secret print the logins: no '-- CMD'")
        builtin = CLIENTS[BUILTIN]
        command = replace(command, run=replace(run, client=builtin, jobs=_jobs(args.jobs, builtin)))
    if job and command.run.client.redirect is Redirect.NONE and command.run.client.program:
        raise UsageError(
            f"--client {command.run.client.name} cannot be pointed at a private auth file, "
            "which '-- CMD' needs: use docker, podman, nerdctl, helm or builtin"
        )
    return command


def _targets(args: argparse.Namespace, env: Mapping[str, str], name: str) -> Targets:
    endpoints = args.endpoints if isinstance(args.endpoints, list) else [args.endpoints]
    profiles = tuple(getattr(args, "profiles", ()))
    file = getattr(args, "file", None)
    if args.profile is not None and (profiles or file):
        raise UsageError(
            f"give either PROFILE [ENDPOINT ...] or --profile/--file, not both "
            f"(got PROFILE {show(args.profile)}; see '{PROG} ecr {name} --help')"
        )
    return Targets(
        profile=args.profile,
        endpoints=tuple(e for e in endpoints if e is not None),
        profiles=profiles,
        file=file,
        region=args.region,
    )


def _jobs(given: int | None, client: Client) -> int:
    """``--jobs``, else the default for the client: processes cost CPU, requests do not."""
    if given is not None:
        return given
    return DEFAULT_JOBS if client.program else BUILTIN_JOBS


def _client(given: str | None, env: Mapping[str, str]) -> Client:
    name = given or env.get(CLIENT_ENV) or DEFAULT_CLIENT.name
    if name not in CLIENTS:
        raise UsageError(
            f"unknown client {show(name)} (from ${CLIENT_ENV}); choose from {', '.join(CLIENTS)}"
        )
    return CLIENTS[name]


def _parse_runas(argv: list[str], env: Mapping[str, str], sub: argparse.ArgumentParser) -> Command:
    """``env [options] [PROFILE]`` and ``exec [options] [PROFILE] -- CMD [ARG ...]``."""
    name, rest = argv[0], argv[1:]
    run: list[str] = []
    if name == "exec" and "--" in rest:
        at = rest.index("--")
        rest, run = rest[:at], rest[at + 1 :]
    args = sub.parse_intermixed_args(rest)  # --help prints the command's help and exits
    credentials = CredentialOptions(mfa_code=args.mfa_code, refresh=args.refresh)
    if name == "env":
        return Env(args.profile, args.region, args.output, credentials)
    if not run:
        raise UsageError(f"exec needs a command after '--' (see '{PROG} exec --help')")
    return Exec(args.profile, tuple(run), args.region, credentials)


def _parse_completion(argv: list[str], sub: argparse.ArgumentParser) -> Command:
    """``completion SHELL``, or the scripts' hidden ``completion --profiles``."""
    args = sub.parse_args(argv)
    if args.profiles:
        return ListProfiles()
    if args.shell is None:
        raise UsageError(
            f"completion needs a SHELL: bash, zsh or fish (see '{PROG} completion --help')"
        )
    return Completion(args.shell, PROG, completion_specs())


def exit_status(
    results: Sequence[LoginResult] | None,
    error: BaseException | None,
    signum: int | None = None,
    status: int | None = None,
) -> int:
    """The exit code of a run: the one place that decides it.

    ``status`` is a command's own (exec passes its child's through; a dry run's 0).
    """
    if signum is not None:
        return 128 + signum
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(error, CommandNotFound):
        return error.status  # as a shell: 127 not found, 126 not runnable
    if isinstance(error, TokenError | LoginError | CredentialsError):
        # known only at run time: `ecr password`'s token, `env`'s credentials
        return EXIT_FAILED
    if isinstance(error, RunasError):
        return EXIT_USAGE
    if error is not None:
        raise error
    if status is not None:
        return status

    if results is not None and all(r.status.succeeded for r in results):
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


def run() -> NoReturn:
    """The console script: ``main()``, then exit without tearing the interpreter down.

    Everything runas-async writes is flushed and its temporary files are gone
    when ``main()`` returns; skipping interpreter shutdown (module teardown,
    garbage collection of aiobotocore's and aiohttp's objects) saves about
    0.2 s on every run. The garbage collector is off until the heavy imports are
    done (:func:`pause_gc`).
    """
    pause_gc()
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        logging.shutdown()
        os._exit(code)


_gc = {"paused": False}
"""Whether :func:`pause_gc` turned the collector off and :func:`resume_gc` has not yet."""


def pause_gc() -> None:
    """Turn the garbage collector off, for start-up (the console script only).

    Importing aiobotocore and aiohttp makes hundreds of thousands of objects, none of them
    garbage: the collections they trigger (one full pass of about 25 ms, on the way to the
    first request) find nothing. :func:`resume_gc` turns it back on once they are made;
    a command that never gets there (``--help``, ``password``, ``env``) is short and ends
    with the collector still off.
    """
    if gc.isenabled():
        gc.disable()
        _gc["paused"] = True


def resume_gc() -> None:
    """After the heavy imports and before the event loop: freeze every object made so far
    (the collector never looks at them again) and collect from here on, as usual.

    A no-op unless :func:`pause_gc` paused it (so a command run in-process, as in the
    tests, leaves the caller's collector alone).
    """
    if not _gc["paused"]:
        return
    _gc["paused"] = False
    gc.freeze()
    gc.enable()
    log.debug("garbage collector on again; %d objects frozen", gc.get_freeze_count())


def _debug_log() -> None:
    """Our own logger only: botocore's debug log would print token responses."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(relativeCreated)7.1fms %(name)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit status (also usable in-process)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    _quiet_libraries(debug)
    if debug:
        _debug_log()
    real = sys.stdout
    sys.stdout = stdout = Stdout(real)
    try:
        return _main(argv, os.environ, stdout, debug)
    finally:
        sys.stdout = real


def _main(argv: list[str], env: Mapping[str, str], stdout: Stdout, debug: bool) -> int:
    try:
        command = parse(argv, env)
        from runas_async.cli import commands

        outcome = commands.run(command, env, cast(TextIO, stdout))
    except SystemExit as e:  # --help, --version
        return int(e.code or 0)
    except KeyboardInterrupt as e:
        return exit_status(None, e)
    except BaseException as raw:
        error = _first_runas_error(raw)
        if isinstance(error, RunasError):
            _report_error(error, argv, stdout, debug)
            return exit_status(None, error)
        if isinstance(raw, BaseExceptionGroup) and raw.subgroup(KeyboardInterrupt):
            return EXIT_INTERRUPTED
        raise
    return exit_status(outcome.results, None, outcome.signum, outcome.status)


def _report_error(error: RunasError, argv: list[str], stdout: Stdout, debug: bool) -> None:
    """One line on stderr; with ``ecr ... -o json``, also the run's one JSON document."""
    line = f"{PROG}: error: {error}"
    sys.stderr.write(line + "\n")
    if debug:
        log.debug("details", exc_info=error)
    if _wants_json(argv) and not stdout.written:
        stdout.write(json.dumps({"error": line, "results": []}, indent=2) + "\n")
        stdout.flush()


def _wants_json(argv: list[str]) -> bool:
    """Whether an ``ecr`` command was asked for ``-o json`` (argv may not even parse)."""
    if argv[:1] != ["ecr"]:
        return False
    for i, arg in enumerate(argv):
        if arg in ("-o", "--output") and argv[i + 1 : i + 2] == ["json"]:
            return True
        if arg in ("-ojson", "--output=json"):
            return True
    return False


LIBRARY_LOGGERS = ("botocore", "aiobotocore", "aiohttp", "urllib3")
"""Their records never reach stderr: botocore's DEBUG records carry response bodies (tokens),
and its warnings come with tracebacks. Under ``--debug`` their WARNING and above are shown."""


def _quiet_libraries(debug: bool) -> None:
    """Give the libraries' loggers a handler of ours, so Python's last resort never prints."""
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        logger.propagate = False
        if not logger.handlers:
            logger.addHandler(logging.NullHandler())
        if debug:
            handler = logging.StreamHandler(sys.stderr)
            handler.setLevel(logging.WARNING)
            handler.setFormatter(logging.Formatter("%(name)s: %(levelname)s: %(message)s"))
            logger.addHandler(handler)


class Stdout(io.TextIOBase):
    """Our stdout, where a closed pipe (``| head``) stops the output, not the work.

    The first BrokenPipeError turns every later write into nothing (and points file
    descriptor 1 at /dev/null, so the interpreter's last flush is quiet too): logins in
    flight still finish and are merged, and the exit status is what it would have been.
    """

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self._stream = stream
        self.broken = False
        self.written = False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", None) or "utf-8"

    def isatty(self) -> bool:
        return not self.broken and self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    def write(self, text: str) -> int:
        if not self.broken:
            self.written = True
            try:
                self._stream.write(text)
            except BrokenPipeError:
                self._broke()
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._broke()

    def _broke(self) -> None:
        self.broken = True
        with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, self._stream.fileno())
            finally:
                os.close(devnull)
