"""Input is checked before any request (issue 19, items 12-14): Kubernetes names, durations,
echoed values at most 200 characters, the helper's closed stdin."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from runas_async.cli.main import main
from runas_async.core.options import Login


def _usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Exit 2 and one stderr line, no traceback, nothing on stdout: that line."""
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith("runas-async: error: ")
    return err


LOGIN = ["ecr", "login", "dev", "123456789012", "-n"]


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("Bad_Name", id="underscore-upper"),
        pytest.param("", id="empty"),
        pytest.param("a" * 254, id="254-chars"),
        pytest.param("../../etc", id="path"),
        pytest.param("-lead", id="leading-dash"),
        pytest.param("a..b", id="empty-label"),
        pytest.param("x\x1b[2J", id="escape"),
    ],
)
def test_k8s_secret_name_must_be_a_dns_subdomain(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--k8s-secret NAME: a DNS-1123 subdomain of at most 253 characters, else exit 2 naming
    the value (escaped, at most 200 characters)."""
    err = _usage_error([*LOGIN, f"--k8s-secret={name}"], capsys)
    assert "is not a Kubernetes Secret name" in err
    assert repr(name[:20])[:-1] in err
    assert len(err) < 500 and "\x1b" not in err


@pytest.mark.parametrize(
    "namespace",
    [
        pytest.param("NS_UP", id="upper-underscore"),
        pytest.param("", id="empty"),
        pytest.param("a" * 64, id="64-chars"),
        pytest.param("a.b", id="dot"),
        pytest.param("../../etc", id="path"),
    ],
)
def test_namespace_must_be_a_dns_label(namespace: str, capsys: pytest.CaptureFixture[str]) -> None:
    """--namespace NS: a DNS-1123 label of at most 63 characters, else exit 2 naming it."""
    err = _usage_error([*LOGIN, "--k8s-secret", "ok", f"--namespace={namespace}"], capsys)
    assert "is not a Kubernetes namespace" in err
    assert repr(namespace[:20])[:-1] in err


@pytest.mark.parametrize(
    ("name", "namespace"),
    [("ecr-pull", "default"), ("a" * 253, "b" * 63), ("ecr.pull-1", "team-2")],
)
def test_valid_kubernetes_names_are_taken(name: str, namespace: str) -> None:
    """The longest and dotted names the API server takes are taken."""
    from runas_async.cli.main import parse

    command = parse(["ecr", "login", "dev", "--k8s-secret", name, "--namespace", namespace], {})
    assert isinstance(command, Login)
    assert (command.k8s_secret, command.namespaces) == (name, (namespace,))


def test_k8s_secret_with_json_output_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """--k8s-secret prints JSON of its own: ``-o json`` with it is exit 2, not ignored."""
    assert main([*LOGIN, "--k8s-secret", "ecr-pull", "-o", "json"]) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and "-o json" in err
    assert json.loads(out)["results"] == []


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        pytest.param("9" * 400 + "h", "longer than 366 days", id="400-nines"),
        pytest.param("1" * 5000 + "s", "longer than 366 days", id="5000-digits"),
        pytest.param("8785h", "longer than 366 days", id="just-past-a-year"),
        pytest.param("1" * 5000, "is not a duration", id="5000-digits-no-unit"),
    ],
)
def test_durations_are_capped_and_echoed_short(
    value: str, needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Item 12: a huge --renew-before is one line (no OverflowError), the value echoed in at
    most 200 characters, shortened in the middle."""
    err = _usage_error(["ecr", "login", "dev", "--renew-before", value], capsys)
    assert needle in err
    assert len(err) < 400
    assert f"'{value[:50]}" in err and f"{value[-20:]}'" in err


def test_a_year_and_a_day_is_the_longest_duration() -> None:
    """366 days is taken, in any spelling."""
    from runas_async.cli.main import parse

    for text, seconds in (("8784h", 366 * 86400), ("0000000000000000001h", 3600)):
        command = parse(["ecr", "login", "dev", "--renew-before", text], {})
        assert isinstance(command, Login)
        assert command.renew_before == seconds


@pytest.mark.parametrize("option", ["--timeout", "--deadline"])
def test_seconds_options_are_capped(option: str, capsys: pytest.CaptureFixture[str]) -> None:
    """--timeout and --deadline past 366 days: one line, the value shortened."""
    err = _usage_error(["ecr", "login", "dev", option, "1e300"], capsys)
    assert "'1e300' is longer than 366 days" in err


def test_helper_get_with_a_closed_stdin_is_one_line() -> None:
    """Item 13: ``get`` with stdin closed (``<&-``): exit 1 and one line, no traceback."""
    script = '"$0" -c "from runas_async.credhelper import run; run()" get <&-'
    done = subprocess.run(
        ["sh", "-c", script, sys.executable],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout.strip() == "no credentials server URL"


# --- issue 20: regions, and nothing to log in with ------------------------------------------


@pytest.fixture
def prod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A profile ``prod`` in eu-west-1, HOME in tmp_path."""
    config = tmp_path / "config"
    config.write_text("[profile prod]\nregion = eu-west-1\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    return config


@pytest.mark.parametrize(
    ("args", "meant"),
    [
        pytest.param(
            ["210987654321.dkr.ecr.eu-wset-1.amazonaws.com"],
            "did you mean 210987654321.dkr.ecr.eu-west-1.amazonaws.com?",
            id="host",
        ),
        pytest.param(["-r", "eu-wset-1"], "did you mean eu-west-1?", id="region-own-registry"),
        pytest.param(["210987654321", "-r", "us-esat-1"], "did you mean us-east-1?", id="account"),
        pytest.param(["-r", "ap-sotheast-2"], "did you mean ap-southeast-2?", id="letter-missing"),
    ],
)
def test_misspelt_region_is_exit_2_with_did_you_mean(
    prod: Path, args: list[str], meant: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A region its partition does not list, within 2 edits of one it does: exit 2."""
    err = _usage_error(["ecr", "login", "prod", *args, "-n"], capsys)
    assert err.rstrip().endswith(meant), err


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["-r", "us-nowhere-1"], id="far-from-any"),
        pytest.param(["210987654321.dkr.ecr.eu-west-4.amazonaws.com"], id="new-number"),
    ],
)
def test_unknown_region_far_from_any_is_taken_with_a_note(
    prod: Path,
    args: list[str],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """AWS adds regions: an unknown one close to none (or a new number of a known name) is
    planned, with one note (a warning: on stderr, Python's last resort prints it alone)."""
    from runas_async.core import partitions

    partitions._note_unknown.cache_clear()
    assert main(["ecr", "login", "prod", *args, "-n"]) == 0
    out, err = capsys.readouterr()
    assert "1 registry, 1 token request" in out and err == ""
    notes = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(notes) == 1 and "note: region" in notes[0] and "using it as given" in notes[0]


def test_no_profiles_and_no_credentials_says_so_and_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``ecr login -n`` with empty AWS files and no credential variables: not "profile
    'default' has no region" but that nothing was found, naming the files read."""
    monkeypatch.setenv("HOME", str(tmp_path))
    err = _usage_error(["ecr", "login", "-n"], capsys)
    assert "no AWS credentials or profiles found" in err
    assert f"{tmp_path}/.aws/config" in err and f"{tmp_path}/.aws/credentials" in err
    assert "has no region" not in err


def test_the_region_note_is_one_line_on_stderr(prod: Path) -> None:
    """Run as a user runs it: the note is one line on stderr, the plan on stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "runas_async", "ecr", "login", "prod", "-r", "us-nowhere-1", "-n"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == (
        "runas-async: note: region 'us-nowhere-1' is not among the aws partition's known "
        "regions; using it as given\n"
    )


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["ecr", "x" * 5000], id="command"),
        pytest.param(["ecr", "login", "-o", "y" * 5000], id="choice"),
        pytest.param(["ecr", "login", "--jobs", "9" * 5000], id="number"),
        pytest.param(["ecr", "login", "p" * 5000, "--profile", "q"], id="profile"),
        pytest.param(["ecr", "login", "z" * 5000 + ".dkr.ecr.eu-west-1.amazonaws.com"], id="host"),
    ],
)
def test_echoed_input_is_at_most_200_characters(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Whatever was typed, the error quotes at most 200 characters of it (start…end)."""
    err = _usage_error(argv, capsys)
    assert len(err) < 500, len(err)
    assert "…" in err
