"""Command line: argv -> a typed command (options.py) -> commands/ -> exit status.

The parser, ``--help``, the completion specs and the errors for unknown commands and options
are built from the commands' registrations (cli/args.py, one in each module of commands/):
nothing here names a command. The only place that reads the process environment, exits, or
picks exit codes (:func:`exit_status`). Imports stay light until a command runs: ``--help``
and ``--version`` load neither aiobotocore nor rich.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TextIO, cast

from runas_async.cli.args import GROUPS, PROG, Parser, Registration, _Version, did_you_mean
from runas_async.core.errors import (
    CommandNotFound,
    CredentialsError,
    LoginError,
    RunasError,
    TokenError,
    UsageError,
)
from runas_async.core.options import Command, Output
from runas_async.core.sanitize import show

if TYPE_CHECKING:
    from runas_async import _recache
    from runas_async.core.models import LoginResult
    from runas_async.core.shells import CommandSpec, Value

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT; other signals give 128 + their number

LEADING = ("--debug",)
"""Options that may also come before the command's words (``runas-async --debug ecr login
prod``), as awscli takes its global ones: parsed as if given after them."""

log = logging.getLogger("runas_async")

Tree = dict[tuple[str, ...], argparse.ArgumentParser]
"""Every parser by its words: () the top, ("ecr",) a group, ("ecr", "login") a command."""


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The top-level parser and each command's parser (by its last word), built from the
    commands' registrations (cli/commands/)."""
    parser, tree = _build_tree()
    return parser, {path[-1]: p for path, p in tree.items() if _registration(p)}


def _build_tree(
    only: Registration | None = None,
) -> tuple[argparse.ArgumentParser, Tree]:
    """The parsers of every command, or of ``only`` (with its groups and the top)."""
    from runas_async.cli.commands import registrations

    parser = Parser(
        prog=PROG, description="Log container clients into Amazon ECR registries, concurrently."
    )
    parser.add_argument("--version", action=_Version)
    tree: Tree = {(): parser}
    subparsers: dict[tuple[str, ...], Any] = {}

    def children(path: tuple[str, ...]) -> Any:
        if path not in subparsers:
            if path not in tree:
                tree[path] = children(path[:-1]).add_parser(path[-1], help=GROUPS[path])
            subparsers[path] = tree[path].add_subparsers(metavar="COMMAND", required=True)
        return subparsers[path]

    for reg in registrations() if only is None else (only,):
        sub = children(reg.path[:-1]).add_parser(
            reg.path[-1], help=reg.help, description=reg.description, epilog=reg.epilog
        )
        sub.set_defaults(_registration=reg)
        reg.add_arguments(sub, reg)
        tree[reg.path] = sub
    return parser, tree


def _registration(parser: argparse.ArgumentParser) -> Registration | None:
    return cast("Registration | None", parser.get_default("_registration"))


def _value_of(action: argparse.Action) -> Value | None:
    """What an option's value completes to; None for a flag."""
    from runas_async.core.shells import Value

    if action.nargs == 0:
        return None
    if action.dest in ("profile", "profiles"):
        return Value.PROFILE
    if action.dest == "file":
        return Value.FILE
    if action.choices is not None:
        return Value.CHOICE
    return Value.NONE


def _spec(path: tuple[str, ...], parser: argparse.ArgumentParser) -> CommandSpec:
    from runas_async.core.shells import CommandSpec, OptionSpec, Value

    options: list[OptionSpec] = []
    subcommands: tuple[str, ...] = ()
    positional, choices = Value.NONE, cast("tuple[str, ...]", ())
    for action in parser._actions:
        if action.help == argparse.SUPPRESS:
            continue
        if isinstance(action, argparse._SubParsersAction):
            subcommands = tuple(action.choices)
        elif action.option_strings:
            value = _value_of(action)
            listed = tuple(str(c) for c in action.choices or ()) if value else ()
            options.append(OptionSpec(tuple(action.option_strings), value, listed))
        elif positional is Value.NONE and action.dest == "profile":
            positional = Value.PROFILE
        elif positional is Value.NONE and action.choices is not None:
            positional, choices = Value.CHOICE, tuple(str(c) for c in action.choices)
    return CommandSpec(path, subcommands, tuple(options), positional, choices)


def completion_specs() -> tuple[CommandSpec, ...]:
    """Every command and group as the completion scripts see it, read from the parsers."""
    _, tree = _build_tree()
    return tuple(_spec(path, parser) for path, parser in tree.items())


def parse(argv: Sequence[str], env: Mapping[str, str]) -> Command:
    """argv (without the program name) as a typed command; UsageError when it is not one."""
    return parse_command(argv, env)[1]


def parse_command(argv: Sequence[str], env: Mapping[str, str]) -> tuple[Registration, Command]:
    """argv as a typed command, with the registration that built it (and runs it).

    Only the parsers of the command argv names are built when its words name one
    (commands.registration_of); the whole tree otherwise (a group, help, a misspelling).
    """
    from runas_async.cli.commands import registration_of

    leading, argv = _leading(argv)
    _, tree = _build_tree(registration_of(argv))
    path: tuple[str, ...] = ()
    while (*path, *argv[len(path) : len(path) + 1]) in tree and len(path) < len(argv):
        path = (*path, argv[len(path)])
    parser, rest = tree[path], argv[len(path) :]
    reg = _registration(parser)
    if reg is None:
        _not_a_command(parser, path, rest, tree)
    rest = [*leading, *rest]
    job: tuple[str, ...] | None = None
    if reg.takes_command and "--" in rest:
        at = rest.index("--")
        rest, job = rest[:at], tuple(rest[at + 1 :])
    # Intermixed: options may come after PROFILE and between ENDPOINTs.
    args, extra = parser.parse_known_intermixed_args(rest)
    if extra:
        _unknown(parser, extra[0])
    return reg, reg.build(args, job, env)


def _leading(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """The :data:`LEADING` options argv begins with, and the rest of it."""
    at = 0
    while at < len(argv) and argv[at] in LEADING:
        at += 1
    return list(argv[:at]), list(argv[at:])


def _not_a_command(
    parser: argparse.ArgumentParser, path: tuple[str, ...], rest: list[str], tree: Tree
) -> NoReturn:
    """At a group (or the top): help, the version, or an error naming what was typed."""
    names = [p[-1] for p in tree if len(p) == len(path) + 1 and p[: len(path)] == path]
    see = f"(see '{parser.prog} --help')"
    if not rest:
        raise UsageError(f"give a COMMAND: {', '.join(names)} {see}")
    word = rest[0]
    if not word.startswith("-"):
        raise UsageError(f"unknown command {show(word)}{did_you_mean(word, names)} {see}")
    options = [o for a in parser._actions for o in a.option_strings]
    if word in options or len([o for o in options if o.startswith(word)]) == 1:
        parser.parse_args(rest)  # prints help or version and exits
    raise UsageError(f"unknown option {show(word)}{did_you_mean(word, options)} {see}")


def _unknown(parser: argparse.ArgumentParser, word: str) -> NoReturn:
    see = f"(see '{parser.prog} --help')"
    if word.startswith("-"):
        options = [o for a in parser._actions for o in a.option_strings]
        raise UsageError(f"unknown option {show(word)}{did_you_mean(word, options)} {see}")
    raise UsageError(f"unexpected argument {show(word)} {see}")


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


def run(patterns: _recache.Cache | None = None) -> NoReturn:
    """The console script's second half (:func:`runas_async.cli.run` is its first):
    ``main()``, then exit without tearing the interpreter down.

    Everything runas-async writes is flushed and its temporary files are gone
    when ``main()`` returns; skipping interpreter shutdown (module teardown,
    garbage collection of aiobotocore's and aiohttp's objects) saves about
    0.2 s on every run. The regex cache (``patterns``) is written last, when
    this run compiled patterns it lacked.
    """
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        if patterns is not None:
            patterns.save()
    finally:
        logging.shutdown()
        os._exit(code)


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
        reg, command = parse_command(argv, env)
        from runas_async.cli import commands

        outcome = commands.run(reg, command, env, cast(TextIO, stdout))
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
    """One line on stderr; and what the run's format adds (``-o json``: its one document)."""
    line = f"{PROG}: error: {error}"
    sys.stderr.write(line + "\n")
    if debug:
        log.debug("details", exc_info=error)
    output = _output_asked(argv)
    if output is not None and not stdout.written:
        from runas_async.cli.formats import report_error

        report_error(line, output, cast(TextIO, stdout))


def _output_asked(argv: list[str]) -> Output | None:
    """The ``-o`` an ``ecr`` command was given (argv may not even parse)."""
    if _leading(argv)[1][:1] != ["ecr"]:
        return None
    given = None
    for i, arg in enumerate(argv):
        if arg in ("-o", "--output"):
            given = argv[i + 1] if i + 1 < len(argv) else None
        elif arg.startswith("--output="):
            given = arg.partition("=")[2]
        elif arg.startswith("-o") and len(arg) > 2:
            given = arg[2:]
    try:
        return None if given is None else Output(given)
    except ValueError:
        return None


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
