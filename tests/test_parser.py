"""The command line as the commands register it: every path parsed, helped and completed, and
choice errors that list the choices or say "did you mean"."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from runas_async.cli.main import build_parser, completion_specs, main
from runas_async.core.clients import CLIENTS
from runas_async.core.errors import RunasError


def _paths() -> dict[tuple[str, ...], argparse.ArgumentParser]:
    """Every parser of the tree, by its words, walked from the top-level parser itself."""
    parser, _ = build_parser()
    found: dict[tuple[str, ...], argparse.ArgumentParser] = {}

    def walk(path: tuple[str, ...], p: argparse.ArgumentParser) -> None:
        found[path] = p
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk((*path, name), sub)

    walk((), parser)
    return found


PATHS = sorted(_paths())


def _help(capsys: pytest.CaptureFixture[str], *words: str) -> str:
    assert main([*words, "--help"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    return out


def test_completion_offers_every_subcommand_and_option_of_every_path() -> None:
    """Each parser path has a completion spec offering all its subcommands and options."""
    specs = {spec.path: spec for spec in completion_specs()}
    assert ("ecr", "status") in specs
    assert ("ecr", "configure-docker") in specs
    for path, parser in _paths().items():
        spec = specs[path]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                assert set(spec.subcommands) == set(action.choices), path
            elif action.option_strings and action.help != argparse.SUPPRESS:
                offered = {name for option in spec.options for name in option.names}
                assert set(action.option_strings) <= offered, (path, action.option_strings)


WHOLE = ("runas-async", "docker-credential-runas-async", "--password-stdin", "-- CMD")


@pytest.mark.parametrize("columns", ["60", "80"])
@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "top")
def test_help_fits_the_terminal_and_keeps_commands_whole(
    path: tuple[str, ...],
    columns: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every --help fits min(COLUMNS, 80), and never splits a command a user
    copies: no `runas-\\nasync`, and `source <(runas-async completion zsh)` on one line."""
    monkeypatch.setenv("COLUMNS", columns)
    out = _help(capsys, *path)
    assert max(len(line) for line in out.splitlines()) <= min(int(columns), 80), out
    flat = " ".join(out.split())
    for phrase in (*WHOLE, *re.findall(r"source <\([^)]*\)", flat), "| source"):
        assert flat.count(phrase) == out.count(phrase), (phrase, out)
    assert not re.search(r"-\n\s*(async|runas|stdin)", out), out


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "top")
def test_help_at_40_columns_keeps_every_word_whole(
    path: tuple[str, ...], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """At COLUMNS=40 (below what help fits) --help still prints everything it prints at 80,
    in the same order; a word longer than the line (a hostname pattern) is broken only after
    a dot or a slash, never at an arbitrary letter. (Usage lines may run past 40 columns.)"""
    monkeypatch.setenv("COLUMNS", "80")
    wide = _help(capsys, *path)
    monkeypatch.setenv("COLUMNS", "40")
    narrow = _help(capsys, *path)
    assert "".join(narrow.split()) == "".join(wide.split()), narrow
    words, pieces = set(wide.split()), narrow.split()
    while pieces:  # each word whole, or its pieces each ending in a dot or a slash
        word = pieces.pop(0)
        while word not in words and pieces and word.endswith((".", "/")):
            word += pieces.pop(0)
        assert word in words, (word, narrow)


def test_login_help_names_the_job_command(capsys: pytest.CaptureFixture[str]) -> None:
    """`ecr login --help` shows `-- CMD` in its usage and says what it does."""
    out = _help(capsys, "ecr", "login")
    usage = out.split("\n\n")[0]
    assert "[-- CMD [ARG ...]]" in " ".join(usage.split())
    assert "-- CMD" in out.split("\n\n", 1)[1]


def test_logout_help_speaks_of_logouts(capsys: pytest.CaptureFixture[str]) -> None:
    """`ecr logout --help`: -j counts logouts, and no dockerconfigjson is offered."""
    out = " ".join(_help(capsys, "ecr", "logout").split())
    jobs = out[out.index("-j JOBS, --jobs") : out.index("-t SECONDS,")]
    assert "logouts" in jobs
    assert "login" not in jobs
    assert "dockerconfigjson" not in out


@pytest.mark.parametrize(
    ("words", "offered", "not_offered"),
    [
        pytest.param(("ecr", "login"), {"text", "json", "dockerconfigjson"}, set(), id="login"),
        pytest.param(("ecr", "logout"), {"text", "json"}, {"dockerconfigjson"}, id="logout"),
        pytest.param(("ecr", "status"), {"text", "json"}, {"dockerconfigjson"}, id="status"),
    ],
)
def test_each_command_offers_the_formats_it_produces(
    words: tuple[str, ...],
    offered: set[str],
    not_offered: set[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`-o` lists a command's own formats in its errors; another command's is refused."""
    assert main([*words, "-o", "yaml"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert "'yaml'" in err
    assert "Output" not in err
    for name in offered:
        assert name in err
    for name in not_offered:
        assert name not in err
        assert main([*words, "-o", name]) == 2
        _, err = capsys.readouterr()
        assert err.count("\n") == 1
        assert f"{name!r}" in err


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        pytest.param(["completion", "tcsh"], ("'tcsh'", "bash", "zsh", "fish"), id="shell"),
        pytest.param(["env", "-o", "csh"], ("'csh'", "sh", "fish", "json"), id="env-format"),
        pytest.param(["ecr", "login", "-c", "dockr"], ("'dockr'", "'docker'?"), id="client"),
        pytest.param(["--versoin"], ("'--versoin'", "did you mean '--version'?"), id="option"),
        pytest.param(["ecr", "logn"], ("'logn'", "did you mean 'login'?"), id="ecr-command"),
        pytest.param(["ecrr", "login"], ("'ecrr'", "did you mean 'ecr'?"), id="command"),
        pytest.param(
            ["ecr", "login", "p", "--dyr-run"],
            ("'--dyr-run'", "did you mean '--dry-run'?"),
            id="command-option",
        ),
        pytest.param(["ecr", "--jobs", "3"], ("'--jobs'",), id="option-of-a-group"),
    ],
)
def test_choice_errors_list_the_choices_or_the_nearest(
    argv: list[str], needles: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad choice, command or option: exit 2, one line naming it, with the choices or the
    nearest; never an internal name (Output, Shell) or 'arguments are required'."""
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith("runas-async: error: ")
    for needle in needles:
        assert needle in err
    for internal in ("Output", "Shell", "EnvFormat", "are required"):
        assert internal not in err


def test_configure_docker_offers_the_clients_that_run_credential_helpers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """configure-docker's -c choices are the clients marked as reading credHelpers."""
    helpers = [name for name, client in CLIENTS.items() if client.credential_helpers]
    assert helpers == ["docker", "podman", "nerdctl"]
    assert main(["ecr", "configure-docker", "p", "1", "-c", "helm"]) == 2
    _, err = capsys.readouterr()
    assert err.count("\n") == 1
    assert all(name in err for name in helpers)
    assert "finch" not in err


def test_job_variables_point_every_redirectable_client_at_the_job_file(
    tmp_path: object,
) -> None:
    """The job's environment names its auth file in every variable a client reads."""
    from pathlib import Path

    from runas_async.core.clients import Redirect, job_variables

    config = Path("/job/config.json")
    variables = job_variables(config)
    assert variables == {
        "DOCKER_CONFIG": "/job",
        "REGISTRY_AUTH_FILE": "/job/config.json",
        "HELM_REGISTRY_CONFIG": "/job/config.json",
    }
    for client in CLIENTS.values():
        if client.redirect is not Redirect.NONE:
            assert client.redirect.variable in variables


ARGVS = [
    ["ecr", "login", "prod"],
    ["ecr", "login", "prod", "123456789012", "-c", "builtin", "-j", "4", "--", "make"],
    ["ecr", "login", "-o", "json", "prod", "public.ecr.aws", "--renew-before", "2h"],
    ["ecr", "login", "--bogus", "prod"],
    ["ecr", "login", "-c", "nope", "prod"],
    ["ecr", "login"],
    ["ecr", "login", "--help"],
    ["ecr", "logout", "prod", "--expired"],
    ["ecr", "status", "-o", "json"],
    ["ecr", "password", "prod"],
    ["ecr", "configure-docker", "prod", "123456789012"],
    ["env", "prod"],
    ["env", "login"],  # a profile named as another command
    ["exec", "prod", "--", "true"],
    ["completion", "bash"],
    ["ecr", "logni", "prod"],
    ["ecr"],
    ["--version"],
    [],
    ["--debug", "ecr", "login", "prod"],
]


def _outcome(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    """What parsing ``argv`` gives: the typed command, or the error, or what --help printed."""
    from runas_async.cli.main import parse

    try:
        result = repr(parse(argv, {}))
    except RunasError as e:
        result = f"{type(e).__name__}: {e}"
    except SystemExit as e:
        result = f"exit {e.code}"
    return result, capsys.readouterr().out


@pytest.mark.parametrize("argv", ARGVS, ids=" ".join)
def test_a_command_line_parses_as_with_every_parser_built(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the named command's parser is built (commands.registration_of); what argv
    becomes, or the error or help it gives, is what the whole tree gives."""
    from runas_async.cli import commands

    quick = _outcome(argv, capsys)
    monkeypatch.setattr(commands, "registration_of", lambda words: None)
    assert quick == _outcome(argv, capsys)


def test_a_command_line_imports_its_command_alone() -> None:
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from runas_async.cli import main\n"
        "main.parse(['ecr', 'login', 'prod', '-c', 'builtin'], {})\n"
        "print(sorted(m for m in sys.modules if m.startswith('runas_async.cli.commands.')))\n"
        "print('runas_async.core.shells' in sys.modules)\n"  # completion's, not a login's
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.split("\n")[:2] == ["['runas_async.cli.commands.login']", "False"]


def test_registration_of_finds_each_command_by_its_words_or_none() -> None:
    """Never another command than the words name: each registration found by its own
    words, or None (the whole tree then), and None for words that name no command."""
    from runas_async.cli.commands import registration_of, registrations

    found = {reg.path: registration_of([*reg.path, "prod"]) for reg in registrations()}
    assert all(got is None or got.path == path for path, got in found.items())
    assert [path for path, got in found.items() if got is None] == []
    for words in (["ecr"], ["ecr", "..login"], ["ecr", "_private"], ["prod", "login"], []):
        assert registration_of(words) is None


@pytest.mark.parametrize(
    "words",
    [
        ["ecr", "login", "prod", "-c", "builtin"],
        ["ecr", "status", "-o", "json"],
        ["env", "prod"],
        ["exec", "prod", "--", "true", "--debug"],
    ],
    ids=" ".join,
)
def test_debug_may_come_before_the_command(words: list[str]) -> None:
    """``runas-async --debug ecr login prod``, as awscli takes its global options: the same
    command as with ``--debug`` among the command's own options."""
    from runas_async.cli.main import parse

    at = words.index("--") if "--" in words else len(words)
    after = [*words[:at], "--debug", *words[at:]]
    assert parse(["--debug", *words], {}) == parse(after, {})


def test_a_leading_debug_still_gives_the_json_error_document(tmp_path: Path) -> None:
    """The run's -o json is found past a leading --debug: its one document on stdout, the
    error line and the debug log (with the details) on stderr."""
    import json
    import os
    import subprocess
    import sys

    (tmp_path / "config").write_text("[profile a]\nregion = us-east-1\n")
    env = {
        **os.environ,
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "HOME": str(tmp_path),
    }
    argv = ["--debug", "ecr", "login", "nope", "-o", "json"]
    done = subprocess.run(
        [sys.executable, "-m", "runas_async", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    line = "runas-async: error: profile 'nope' is not in the AWS config files"
    assert json.loads(done.stdout)["error"].startswith(line)
    errors = [e for e in done.stderr.splitlines() if e.startswith("runas-async: error:")]
    assert len(errors) == 1 and errors[0].startswith(line)
    assert "Traceback" in done.stderr  # the details --debug asked for
