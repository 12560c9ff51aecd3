"""The command line: parsing, exit codes, errors before any network call, README sync."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from runas_async.cli.main import exit_status, main, parse
from runas_async.core.clients import CLIENTS
from runas_async.core.errors import ConfigError, TokenError, UsageError
from runas_async.core.models import LoginResult, Status, Target, TokenKey
from runas_async.core.options import Login

README = Path(__file__).resolve().parent.parent / "README.md"


def _result(status: Status) -> LoginResult:
    return LoginResult(target=Target(key=TokenKey("p", "us-east-1"), registry=None), status=status)


@pytest.mark.parametrize(
    ("results", "error", "code"),
    [
        pytest.param([_result(Status.OK)] * 3, None, 0, id="all-ok"),
        pytest.param([_result(Status.OK), _result(Status.FAILED)], None, 1, id="one-failed"),
        pytest.param([_result(Status.FAILED)], None, 1, id="all-failed"),
        pytest.param(None, UsageError("x"), 2, id="usage"),
        pytest.param(None, ConfigError("x"), 2, id="config"),
        pytest.param(None, TokenError("x"), 1, id="password-token-failed"),
        pytest.param(None, KeyboardInterrupt(), 130, id="interrupted"),
    ],
)
def test_exit_status(
    results: list[LoginResult] | None, error: BaseException | None, code: int
) -> None:
    """The exit code table: 0 all ok, 1 any failed, 2 usage/config, 130 interrupted."""
    assert exit_status(results, error) == code


def test_exit_status_reraises_bugs() -> None:
    """An unexpected exception is a bug and is not turned into an exit code."""
    with pytest.raises(ZeroDivisionError):
        exit_status(None, ZeroDivisionError())


@pytest.mark.parametrize(
    ("argv", "env", "profile", "endpoints"),
    [
        pytest.param(["ecr", "login"], {}, None, (), id="nothing"),
        pytest.param(["ecr", "login"], {"AWS_PROFILE": "envp"}, None, (), id="aws-profile"),
        pytest.param(["ecr", "login", "p"], {"AWS_PROFILE": "envp"}, "p", (), id="positional"),
        pytest.param(
            ["ecr", "login", "p", "111111111111", "-r", "eu-west-1", "222222222222"],
            {},
            "p",
            ("111111111111", "222222222222"),
            id="intermixed",
        ),
    ],
)
def test_parse(
    argv: list[str], env: dict[str, str], profile: str | None, endpoints: tuple[str, ...]
) -> None:
    """PROFILE is the first positional; without it, None: the default credentials (botocore
    reads $AWS_PROFILE itself). Options intermix."""
    command = parse(argv, env)
    assert isinstance(command, Login)
    assert command.targets.profile == profile
    assert command.targets.endpoints == endpoints


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        pytest.param(["ecr", "login", "p", "12345"], "'12345'", id="short-account"),
        pytest.param(
            ["ecr", "login", "p", "1.dkr.ecr.us-east-1.amazonaws.com.evil.com"],
            "evil.com",
            id="look-alike",
        ),
        pytest.param(["ecr", "login", "p", "docker.io"], "'docker.io'", id="other-registry"),
        pytest.param(["ecr", "login", "--jobs", "0"], "'0' must be at least 1", id="jobs-zero"),
        pytest.param(["ecr", "login", "--timeout", "x"], "'x' is not a number", id="timeout"),
        pytest.param(["ecr", "login", "--output", "xml"], "'xml'", id="output"),
        pytest.param(["ecr", "logon"], "'logon'", id="command"),
        pytest.param(["ecs"], "'ecs'", id="service"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad input: exit 2, one stderr line naming the bad value, nothing on stdout."""
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("runas-async: error: ")
    assert needle in err


def _aws_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    path = tmp_path / "aws-config"
    path.write_text(text)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(path))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    # Anything that slipped through to the network would go here, and fail.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))


@pytest.mark.parametrize(
    ("config", "argv", "needle"),
    [
        pytest.param(
            "[profile a]\nregion = us-east-1\n",
            ["ecr", "login", "nope"],
            "'nope'",
            id="unknown-profile",
        ),
        pytest.param(
            "[profile a]\n", ["ecr", "login", "a"], "profile 'a' has no region", id="no-region"
        ),
        pytest.param(
            "[profile a]\n",
            ["ecr", "login", "a", "111111111111"],
            "account 111111111111",
            id="no-region-for-account",
        ),
        pytest.param(
            "[profile a\nregion=", ["ecr", "login", "a"], "cannot parse", id="broken-config"
        ),
        pytest.param(
            "[profile a]\nregion = us-east-1\nrole_arn = arn:aws:iam::111111111111:role/x\n"
            "source_profile = bsae\n[profile base]\naws_access_key_id = A\n",
            ["ecr", "login", "a"],
            "source_profile 'bsae', which is not in the AWS config files; did you mean 'base'?",
            id="misspelt-source-profile",
        ),
    ],
)
def test_configuration_errors_exit_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    config: str,
    argv: list[str],
    needle: str,
) -> None:
    """Unknown profile, missing region, broken config: exit 2 naming the problem."""
    _aws_config(tmp_path, monkeypatch, config)
    assert main(argv) == 2
    _, err = capsys.readouterr()
    assert needle in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("typed", "hint"),
    [
        pytest.param("prd", "did you mean 'prod'?", id="one-letter-missing"),
        pytest.param("porduction", "did you mean 'production'?", id="transposed"),
        pytest.param("stagingg", "did you mean 'staging' or 'staging-eu'?", id="two-close"),
        pytest.param("zzz", "AWS config files (", id="nothing-close"),
    ],
)
def test_misspelt_profile_gets_the_nearest_names(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    typed: str,
    hint: str,
) -> None:
    """A profile that is not in the config files: exit 2, the closest names offered."""
    config = "".join(
        f"[profile {name}]\nregion = us-east-1\n"
        for name in ("prod", "production", "staging", "staging-eu", "dev")
    )
    _aws_config(tmp_path, monkeypatch, config)
    _fake_clients(tmp_path, monkeypatch, "docker")
    assert main(["ecr", "login", typed]) == 2
    _, err = capsys.readouterr()
    assert err.count("\n") == 1
    assert f"profile {typed!r} is not in the AWS config files" in err
    assert hint in err
    if typed == "zzz":
        assert "did you mean" not in err


def test_missing_docker_exits_2_before_aws(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No docker on PATH: exit 2 naming it; AWS is never called (the endpoint is dead)."""
    _aws_config(tmp_path, monkeypatch, "[profile a]\nregion = us-east-1\n")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main(["ecr", "login", "a"]) == 2
    _, err = capsys.readouterr()
    assert "'docker' was not found on PATH" in err


def test_invalid_docker_config_exits_2_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A corrupt config.json stops the run before any AWS call and is left as it was."""
    _aws_config(
        tmp_path,
        monkeypatch,
        "[profile a]\nregion = us-east-1\naws_access_key_id = AKIDEXAMPLE\n"
        "aws_secret_access_key = x\n",
    )
    cfg = tmp_path / "docker" / "config.json"
    cfg.parent.mkdir()
    cfg.write_bytes(b'{"auths": {')
    assert main(["ecr", "login", "a"]) == 2
    _, err = capsys.readouterr()
    assert str(cfg) in err
    assert cfg.read_bytes() == b'{"auths": {'


def _fake_clients(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """PATH holds only these clients, each a program that fails if it is ever run."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in names:
        (bin_dir / name).write_text("#!/bin/sh\nexit 99\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))


def test_dry_run_needs_no_aws(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--dry-run prints the plan with the AWS endpoint dead; docker is found, never run."""
    _aws_config(tmp_path, monkeypatch, "[profile a]\nregion = us-east-2\n")
    _fake_clients(tmp_path, monkeypatch, "docker")
    argv = [
        "ecr",
        "login",
        "a",
        "--dry-run",
        "111111111111",
        "111111111111.dkr.ecr.us-east-2.amazonaws.com",
    ]
    assert main(argv) == 0
    out, _ = capsys.readouterr()
    assert out.count("planned 111111111111.dkr.ecr.us-east-2.amazonaws.com") == 1
    assert "1 registry, 1 token request" in out


@pytest.mark.parametrize("dry_run", [False, True], ids=["real", "dry-run"])
@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        pytest.param(["-c", "nerdctl"], "'nerdctl' was not found on PATH", id="client-missing"),
        pytest.param(["--output", "json"], "config.json", id="auth-file-corrupt"),
    ],
)
def test_dry_run_checks_what_the_real_run_checks(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    needle: str,
    dry_run: bool,
) -> None:
    """A client missing or an auth file unreadable: exit 2 with the same line, -n or not."""
    _aws_config(tmp_path, monkeypatch, "[profile dev]\nregion = us-east-2\n")
    _fake_clients(tmp_path, monkeypatch, "docker")
    if "json" in argv:
        cfg = tmp_path / "docker" / "config.json"
        cfg.parent.mkdir()
        cfg.write_bytes(b'{"auths": {')
    assert main(["ecr", "login", "dev", *argv, *(["-n"] if dry_run else [])]) == 2
    _, err = capsys.readouterr()
    assert err.count("\n") == 1
    assert needle in err


HELP_COMMANDS = [
    [],
    ["ecr"],
    ["ecr", "login"],
    ["ecr", "logout"],
    ["ecr", "password"],
    ["env"],
    ["exec"],
    ["completion"],
]


@pytest.mark.parametrize("columns", ["60", "80", "200"])
@pytest.mark.parametrize("words", HELP_COMMANDS, ids=lambda w: " ".join(w) or "top")
def test_every_help_fits_80_columns(words: list[str], columns: str) -> None:
    """Every --help fits 80 columns (and a narrower terminal) whatever $COLUMNS says."""
    done = subprocess.run(
        [sys.executable, "-m", "runas_async", *words, "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": columns},
        check=True,
    )
    widest = max(len(line) for line in done.stdout.splitlines())
    assert widest <= min(80, int(columns)) or words == ["exec"] and widest <= 80, done.stdout


def test_help_is_true() -> None:
    """What --help promises: every client named, logout's -p logs out, dry runs check first."""
    from runas_async.cli.main import build_parser

    parser, commands = build_parser()
    login = commands["login"].format_help()
    logout = commands["logout"].format_help()
    assert all(name in login for name in CLIENTS)
    assert "also log out of this profile's own registry" in logout
    assert "log into" not in logout
    assert "check what a real run checks" in " ".join(login.split())
    assert "completion" in parser.format_help()


def test_readme_help_matches_real_output() -> None:
    """The README's --help excerpt is what `runas-async ecr login --help` prints."""
    env = {**os.environ, "COLUMNS": "80"}
    real = subprocess.run(
        [sys.executable, "-m", "runas_async", "ecr", "login", "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.rstrip("\n")
    m = re.search(
        r"<!-- help:start -->\n```\n(.*?)\n```\n<!-- help:end -->", README.read_text(), re.S
    )
    assert m is not None, "README has no help excerpt"
    assert m.group(1) == real


def test_readme_first_screen_is_the_first_five_minutes() -> None:
    """README's first 24 lines say what the tool is, then install from a clone, `make demo`
    and a first real `ecr login`, in that order; the benchmark comes after the usage."""
    readme = README.read_text()
    screen = "\n".join(readme.splitlines()[:24])
    assert "ECR" in screen.split("```")[0]  # what it is, before any command
    install = screen.index("pip install .")
    assert "uv tool install ." in screen
    assert "clone" in screen[:install]
    demo = screen.index("make demo", install)
    login = re.search(r"^runas-async ecr login \w+", screen[demo:], re.M)
    assert login is not None, screen
    assert readme.index("## How fast") > readme.index("### Exit status") > readme.index("## Usage")
    fast = readme[readme.index("## How fast") : readme.index("## Retries and deadlines")]
    floors = [s for s in re.split(r"(?<=\.)\s", " ".join(fast.split())) if "floor" in s]
    assert len(floors) == 1, floors  # the floor is explained, in one sentence


def test_readme_lists_every_flag() -> None:
    """Every long option of every `ecr` command appears in the README."""
    from runas_async.cli.main import build_parser

    _, commands = build_parser()
    readme = README.read_text()
    text = readme[readme.index("### Options") : readme.index("## `--help`")]
    flags = {
        o
        for parser in commands.values()
        for a in parser._actions
        for o in a.option_strings
        if o.startswith("--") and a.help != argparse.SUPPRESS
    }
    assert "--client" in flags
    for flag in flags:
        assert f"`{flag}" in text or f", {flag} " in text or f", {flag}`" in text, flag


def test_readme_options_table_names_every_command_of_a_listed_option() -> None:
    """An option row that lists its commands, as `(login, logout)` at the start or the end
    of its meaning, lists every command that takes the option (-p and -f: configure-docker)."""
    from runas_async.cli.main import build_parser

    _, commands = build_parser()
    readme = README.read_text()
    table = readme[readme.index("### Options") : readme.index("### JSON output")]
    checked = 0
    for flags, meaning in re.findall(r"^\| `([^`]+)` \| (.*) \|$", table, re.M):
        names = {f.strip().split(" ")[0] for f in flags.split(",")}
        lists = re.findall(r"^\(([a-z, -]+)\)|\(([a-z, -]+)\)$", meaning)
        listed = {n.strip() for pair in lists for part in pair for n in part.split(",") if n}
        if not listed or not listed <= set(commands):
            continue
        taking = {
            name
            for name, parser in commands.items()
            if any(names & set(a.option_strings) for a in parser._actions)
        }
        if not taking:
            continue  # `-- CMD`: not an option
        assert listed == taking, (flags, listed, taking)
        checked += 1
    assert checked >= 5


def _ci_packages() -> set[str]:
    """Every package CI installs: .ci/run's apt-get line and .ci/system-packages' list."""
    root = README.parent
    run = (root / ".ci" / "run").read_text()
    line = re.search(r"apt-get install[^\n]*\\\n([^\n]*)", run)
    assert line is not None
    packages = {w for w in line.group(1).split() if re.fullmatch(r"[a-z0-9.+-]+", w)}
    script = (root / ".ci" / "system-packages").read_text()
    return packages | set(re.findall(r"missing\+=\(([a-z0-9.+-]+)\)", script))


def test_readme_says_what_make_test_installs() -> None:
    """README's Development section says `make test` installs system packages as root with
    apt, naming each package CI installs, and awscli with `uv tool`."""
    readme = README.read_text()
    development = readme[readme.index("## Development") : readme.index("## License")]
    flat = " ".join(development.split())
    assert "as root" in flat and "apt" in flat and "uv tool install" in flat
    assert "awscli" in flat and "awscrt" in flat
    packages = _ci_packages()
    assert {"docker-registry", "podman", "skopeo", "zsh"} <= packages
    for package in packages:
        assert f"`{package}`" in development, package


def _benchmarks() -> str:
    return (README.parent / "BENCHMARKS.md").read_text()


def test_readme_renew_before_time_is_the_measured_one() -> None:
    """The time README gives for `--renew-before` with every login fresh is the median
    BENCHMARKS.md measured, not a rounder claim."""
    row = re.search(
        r"^\| every registry fresh[^|]*\| \*\*(\d\.\d+) s\*\* \|(.*)$", _benchmarks(), re.M
    )
    assert row is not None
    readme = README.read_text()
    section = readme[readme.index("`ecr login --renew-before DURATION`") :]
    paragraph = section[: section.index("\n\n")]
    assert "well under" not in paragraph
    figures = re.findall(r"(\d\.\d+) s\b", paragraph)
    assert figures[0] == row.group(1), paragraph  # the median first
    for figure in figures[1:]:
        assert figure in row.group(2), figure  # then only the same row's range


def test_readme_how_fast_says_which_numbers_are_the_full_run() -> None:
    """ "How fast" names the full `make bench` run the chart comes from (its date and commit,
    as BENCHMARKS.md's results say) and says the later sections are reduced re-runs."""
    run = re.search(r"Run (\d{4}-\d\d-\d\d) .*?\(commit (\w+),", _benchmarks(), re.S)
    assert run is not None
    readme = README.read_text()
    fast = " ".join(readme[readme.index("## How fast") : readme.index("## Retries")].split())
    assert run.group(1) in fast and run.group(2) in fast
    assert "reduced" in fast


def test_version_is_fast_path() -> None:
    """--version prints the version without importing aiobotocore or rich."""
    code = (
        "import sys, runas_async.cli.main as c\n"
        "try:\n    c.main(['--version'])\nexcept SystemExit:\n    pass\n"
        "heavy = ('aiobotocore', 'rich', 'botocore', 'aiohttp')\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("[]")
    assert re.match(r"runas-async \d+\.\d+", out.stdout)


@pytest.mark.parametrize(
    ("argv", "jobs"),
    [
        pytest.param(["ecr", "login", "p"], 64, id="docker"),
        pytest.param(["ecr", "login", "p", "-c", "builtin"], 256, id="builtin"),
        pytest.param(["ecr", "login", "p", "-o", "dockerconfigjson"], 256, id="secrets-imply-it"),
        pytest.param(["ecr", "login", "p", "-c", "builtin", "-j", "5"], 5, id="given"),
    ],
)
def test_jobs_default_follows_the_client(argv: list[str], jobs: int) -> None:
    """--jobs defaults to 64 clients, or 256 logins for the built-in one (no processes)."""
    command = parse(argv, {})
    assert isinstance(command, Login)
    assert command.run.jobs == jobs
