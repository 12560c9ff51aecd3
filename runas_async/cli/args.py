"""How commands declare themselves: a :class:`Registration` each, and the argument helpers
they share.

Each module of cli/commands/ holds its command's registration (its words, help, arguments,
the output formats it offers, and how parsed arguments become its typed command). cli/main.py
builds the parser, ``--help``, the completion specs and the choice errors from them alone.
Light to import: no anyio, aiobotocore or rich.
"""

from __future__ import annotations

import argparse
import enum
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from runas_async.core.clients import CLIENT_ENV, CLIENTS, DEFAULT_CLIENT, Client
from runas_async.core.errors import UsageError
from runas_async.core.options import (
    BUILTIN_JOBS,
    DEFAULT_DEADLINE,
    DEFAULT_JOBS,
    DEFAULT_TIMEOUT,
    Command,
    CredentialOptions,
    Output,
    RunOptions,
    Targets,
)
from runas_async.core.sanitize import MAX_SHOWN, show

if TYPE_CHECKING:
    from runas_async.cli.context import Context, Needs, Outcome

PROG = "runas-async"
HELP_WIDTH = 80
"""Help is wrapped to the terminal, and never wider than this."""
HELP_MIN = 40
"""...and never narrower than this."""
NBSP = "\u00a0"
"""Joins the words of a command in help text, so that wrapping never splits it."""

E = TypeVar("E", bound=enum.Enum)


def whole(text: str) -> str:
    """``text`` (a command users copy) kept on one line in ``--help``."""
    return text.replace(" ", NBSP)


def did_you_mean(typed: str, choices: Iterable[str]) -> str:
    """``; did you mean 'x'?`` for the nearest of ``choices``, or nothing."""
    import difflib

    near = difflib.get_close_matches(typed, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {near[0]!r}?" if near else ""


def choice_of(kind: str, members: Sequence[E]) -> Callable[[str], E]:
    """An argparse ``type`` that takes one of ``members`` by value, and otherwise says
    ``'yaml' is not a format: choose from text, json`` (the nearest too)."""
    by_value = {str(m.value): m for m in members}

    def convert(text: str) -> E:
        if text in by_value:
            return by_value[text]
        raise argparse.ArgumentTypeError(
            f"{show(text)} is not {kind}: choose from {', '.join(by_value)}"
            + did_you_mean(text, by_value)
        )

    return convert


def _rewrap(lines: list[str]) -> list[str]:
    return [line.replace(NBSP, " ") for line in lines]


def _wrap(text: str, width: int, indent: str = "") -> list[str]:
    """``text`` in lines of ``width``, never broken at a hyphen, nor between the words
    :func:`whole` joins unless they are longer than a line. A word longer than a line (a
    hostname pattern on a narrow terminal) is broken after a dot or a slash where one
    fits, else left whole to overflow the line: never cut at an arbitrary letter."""
    import textwrap

    class Wrapper(textwrap.TextWrapper):
        def _handle_long_word(
            self, reversed_chunks: list[str], cur_line: list[str], cur_len: int, width: int
        ) -> None:
            chunk, room = reversed_chunks[-1], max(width - cur_len, 1)
            if NBSP in chunk:  # a command longer than the line: broken between its words
                cut = chunk.rfind(NBSP, 0, room + 1)
                if cut > 0:
                    cur_line.append(chunk[:cut])
                    reversed_chunks[-1] = chunk[cut + 1 :]
                    return
            cut = max(chunk.rfind(".", 0, room), chunk.rfind("/", 0, room))
            if cut > 0:
                cur_line.append(chunk[: cut + 1])
                reversed_chunks[-1] = chunk[cut + 1 :]
            elif not cur_line:  # alone on its line, whole
                cur_line.append(reversed_chunks.pop())

    wrapper = Wrapper(
        width,
        initial_indent=indent,
        subsequent_indent=indent,
        break_on_hyphens=False,
        break_long_words=False,
    )
    return _rewrap(wrapper.wrap(re.sub(r"[ \t\n]+", " ", text).strip()))


class _Formatter(argparse.HelpFormatter):
    """argparse's formatter: the terminal's width (:data:`HELP_MIN` to :data:`HELP_WIDTH`),
    words never cut at an arbitrary letter (:func:`_wrap`), commands joined by :func:`whole`
    kept on one line."""

    def __init__(self, prog: str) -> None:
        import shutil

        width = min(shutil.get_terminal_size().columns, HELP_WIDTH)
        super().__init__(prog, width=max(width, HELP_MIN) - 2)

    def _split_lines(self, text: str, width: int) -> list[str]:
        return _wrap(text, width)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n".join(_wrap(text, width, indent))

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if isinstance(action, JobAction):
            return "-- CMD [ARG ...]"
        return super()._format_action_invocation(action)

    def _format_args(self, action: argparse.Action, default_metavar: str) -> str:
        if isinstance(action, JobAction):
            return str(action.shown)
        return super()._format_args(action, default_metavar)


_LONG_QUOTE = re.compile(rf"'[^'\\]{{{MAX_SHOWN + 1},}}'")


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors and help that fits the terminal (80 columns at most)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        message = message.replace("argument COMMAND: ", "")
        # argparse quotes what was typed (invalid choice: 'x...'): each quote at most
        # MAX_SHOWN characters, shortened in the middle, like every echoed value
        import ast  # only on an error: ast costs start-up for every command

        message = _LONG_QUOTE.sub(lambda m: show(ast.literal_eval(m[0])), message)
        raise UsageError(f"{message} (see '{self.prog} --help')")


class JobAction(argparse.Action):
    """``-- CMD [ARG ...]`` in the usage and the help. The words after ``--`` are taken off
    before argparse sees the rest, so a word that lands here was given without ``--``."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        self.shown = kwargs.pop("shown")
        super().__init__(option_strings, dest, nargs="?", metavar="CMD", **kwargs)

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, *args: Any
    ) -> None:
        setattr(namespace, self.dest, args[0] if args else None)


def add_job(p: argparse.ArgumentParser, *, required: bool, help: str) -> None:
    """``-- CMD [ARG ...]`` (required: always shown without brackets)."""
    shown = "-- CMD [ARG ...]" if required else "[-- CMD [ARG ...]]"
    p.add_argument("stray", action=JobAction, shown=shown, help=help)


def check_no_stray(args: argparse.Namespace, name: str) -> None:
    """A word given where ``-- CMD`` goes, without the ``--``."""
    stray = getattr(args, "stray", None)
    if stray is not None:
        raise UsageError(
            f"unexpected argument {show(stray)}: put the command after '--' "
            f"(see '{PROG} {name} --help')"
        )


# --- the registration ------------------------------------------------------------------------


Build = Callable[[argparse.Namespace, "tuple[str, ...] | None", Mapping[str, str]], Command]
"""Parsed arguments (and the words after ``--``, None without ``--``) to the typed command."""

Run = Callable[[Any, "Context"], "Outcome"]
"""A command's function: its typed command (what its ``build`` made) and its context."""


@dataclass(frozen=True)
class Registration:
    """One command as the command line knows it: everything help, completion and dispatch
    read (a new command is its module with one of these; nothing else names it). ``path``
    is its words (``("ecr", "login")``)."""

    path: tuple[str, ...]
    help: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser, Registration], None]
    build: Build
    run: Run
    """What runs it: cli/commands/__init__.py's ``run`` builds its context and calls this."""
    needs: Callable[[Any], Needs] | None = None
    """What its :class:`~runas_async.cli.context.Context` is built from, read off its typed
    command (None: only the environment and stdout)."""
    formats: tuple[Output, ...] = ()
    """The ``-o`` formats the command produces (none: no ``-o``)."""
    epilog: str | None = None
    takes_command: bool = False
    """Words after ``--`` are a command to run (``exec``, ``ecr login``)."""
    order: int = 50
    """Place in its group's list of commands."""

    @property
    def name(self) -> str:
        return " ".join(self.path)


GROUPS: Mapping[tuple[str, ...], str] = {("ecr",): "Amazon ECR commands"}
"""Words that only group commands, and their help."""


EXIT_EPILOG = (
    "exit status: 0 all registries done, 1 some failed (all were tried), "
    "2 usage or configuration error (nothing tried), 130 interrupted, 143 terminated, "
    "129 hung up"
)


# --- argument helpers the commands share -----------------------------------------------------


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


def _add_profile(p: argparse.ArgumentParser, help: str = _PROFILE_HELP) -> None:
    p.add_argument("profile", nargs="?", metavar="PROFILE", help=help)


def _add_targets(p: argparse.ArgumentParser, *, many: bool, verb: str = "log into") -> None:
    """PROFILE [ENDPOINT ...], and for many: --profile/--file."""
    _add_profile(p, _PROFILE_HELP + "; may be left out before an ENDPOINT")
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


def _add_client_option(
    p: argparse.ArgumentParser, names: Sequence[str] = tuple(CLIENTS), help: str | None = None
) -> None:
    p.add_argument(
        "-c",
        "--client",
        type=_client_choice(names),
        choices=tuple(names),
        metavar="CLIENT",
        help=help or f"{', '.join(names)} (default: ${CLIENT_ENV}, then {DEFAULT_CLIENT.name})",
    )


def _client_choice(names: Sequence[str]) -> Callable[[str], str]:
    kind = "a client" if set(names) == set(CLIENTS) else "a client this command serves"

    def convert(text: str) -> str:
        if text in names:
            return text
        raise argparse.ArgumentTypeError(
            f"{show(text)} is not {kind}: choose from {', '.join(names)}"
            + did_you_mean(text, names)
        )

    return convert


def _add_output(p: argparse.ArgumentParser, reg: Registration) -> None:
    """``-o FORMAT``: the formats ``reg`` offers, each described by its own module."""
    from runas_async.cli.formats import describe

    p.add_argument(
        "-o",
        "--output",
        type=choice_of("a format", reg.formats),
        choices=reg.formats,
        default=reg.formats[0],
        metavar="FORMAT",
        help="; ".join(f"{f.value}: {describe(f)}" for f in reg.formats),
    )


def _add_run_options(p: argparse.ArgumentParser, reg: Registration, *, what: str) -> None:
    """-c, -j, -t, --deadline, -o, -n; ``what`` is what runs at once (logins, logouts)."""
    _add_client_option(p)
    p.add_argument(
        "-j",
        "--jobs",
        type=_positive_int,
        default=None,
        help=f"at most this many {what} at once (default: {DEFAULT_JOBS}; "
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
    _add_output(p, reg)
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


def credentials_of(args: argparse.Namespace) -> CredentialOptions:
    """What :func:`_add_credential_options` parsed."""
    return CredentialOptions(mfa_code=args.mfa_code, refresh=args.refresh)


def _add_debug(p: argparse.ArgumentParser) -> None:
    p.add_argument("--debug", action="store_true", help="log what runas-async does (never secrets)")


# --- parsed arguments to typed options -------------------------------------------------------


def targets_of(args: argparse.Namespace, name: str) -> Targets:
    """PROFILE [ENDPOINT ...], or --profile/--file: never both."""
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


def jobs_for(given: int | None, client: Client) -> int:
    """``--jobs``, else the default for the client: processes cost CPU, requests do not."""
    if given is not None:
        return given
    return DEFAULT_JOBS if client.program else BUILTIN_JOBS


def client_of(given: str | None, env: Mapping[str, str]) -> Client:
    """``--client``, else ``$RUNAS_ASYNC_CLIENT``, else the default client."""
    name = given or env.get(CLIENT_ENV) or DEFAULT_CLIENT.name
    if name not in CLIENTS:
        raise UsageError(
            f"unknown client {show(name)} (from ${CLIENT_ENV}); choose from {', '.join(CLIENTS)}"
        )
    return CLIENTS[name]


def run_options(args: argparse.Namespace, env: Mapping[str, str]) -> RunOptions:
    """What :func:`_add_run_options` declared, as :class:`RunOptions`."""
    client = client_of(args.client, env)
    return RunOptions(
        client=client,
        jobs=jobs_for(args.jobs, client),
        timeout=args.timeout,
        deadline=args.deadline,
        output=args.output,
        dry_run=args.dry_run,
    )
