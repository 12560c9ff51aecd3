"""Logins that know when they expire: the state file, `ecr status`, `--renew-before`,
`logout --expired`.

moto sits behind :class:`~tests.faults.ApiFaultProxy` in its rewriting mode, which gives
ECR tokens an ``expiresAt`` 12 hours from now (moto's own is in 2015); the ECR Public
stand-in already answers one. Clients are the stand-in scripts of test_profiles.py, except
in the one sandbox test that runs the real docker against a real registry. Time passes by
editing the recorded expiry, never by sleeping.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runas_async.cli import main as cli
from runas_async.core import options
from runas_async.core.errors import UsageError
from runas_async.core.options import Login, Output
from tests.ecr_public import ECR_PUBLIC_PASSWORD
from tests.faults import ApiFaultProxy
from tests.missing import need_root
from tests.sandbox import STATIC_KEYS, Moto, Sandbox, ecr_host, moto_password
from tests.test_profiles import _stand_ins

DEV = "123456789012"
EAST, WEST = ecr_host(DEV, "us-east-2"), ecr_host(DEV, "us-west-2")
PUBLIC = "public.ecr.aws"
TWELVE_HOURS = 12 * 3600
HEAVY = ("botocore", "aiobotocore", "aiohttp", "rich.live")


# --- DURATION, and what --renew-before cannot go with -------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param("30m", 1800, id="minutes"),
        pytest.param("2h", 7200, id="hours"),
        pytest.param("1h30m", 5400, id="hours-minutes"),
        pytest.param("90s", 90, id="seconds"),
        pytest.param("1h1m1s", 3661, id="all-units"),
        pytest.param("0m", 0, id="zero"),
    ],
)
def test_duration_is_parsed(text: str, seconds: float) -> None:
    """--renew-before takes <integer><unit> groups with units s, m, h."""
    command = cli.parse(["ecr", "login", "dev", "--renew-before", text], {})
    assert isinstance(command, Login)
    assert command.renew_before == seconds


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("90", id="bare-number"),
        pytest.param("1.5h", id="decimal"),
        pytest.param("2d", id="other-unit"),
        pytest.param("30 m", id="space"),
        pytest.param("-5m", id="negative"),
        pytest.param("h", id="no-number"),
        pytest.param("", id="empty"),
    ],
)
def test_bad_duration_exits_2_naming_it(text: str) -> None:
    """A bare number, a decimal or another unit is a usage error that names the value."""
    with pytest.raises(UsageError, match=f"'{text}' is not a duration"):
        cli.parse(["ecr", "login", "dev", f"--renew-before={text}"], {})
    assert cli.main(["ecr", "login", "dev", f"--renew-before={text}"]) == 2


def test_renew_before_refused_with_an_output_that_needs_every_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An output listed as needing every registry's token cannot go with --renew-before."""
    assert cli.parse(["ecr", "login", "dev", "-o", "json", "--renew-before", "1h"], {})
    monkeypatch.setattr(options, "EVERY_TOKEN_OUTPUTS", frozenset({Output.JSON}))
    with pytest.raises(UsageError, match="-o json needs them all"):
        cli.parse(["ecr", "login", "dev", "-o", "json", "--renew-before", "1h"], {})


def test_expired_takes_no_targets() -> None:
    """`logout --expired` finds its registries itself: an ENDPOINT with it is a usage error."""
    with pytest.raises(UsageError, match="--expired"):
        cli.parse(["ecr", "logout", "--expired", EAST], {})


# --- the moto world -----------------------------------------------------------------------


@pytest.fixture
def world(moto: Moto) -> Iterator[tuple[Moto, dict[str, str], Path, ApiFaultProxy]]:
    """moto behind a proxy that gives tokens a 12-hour expiry; stand-in clients; a state dir."""
    moto.write_aws_config({"dev": {"region": "us-east-2", **STATIC_KEYS}})
    env, log = _stand_ins(moto)
    state_home = moto.workdir / "state"
    if state_home.exists():
        for path in sorted(state_home.rglob("*"), reverse=True):
            path.unlink() if not path.is_dir() or path.is_symlink() else path.rmdir()
    with ApiFaultProxy(moto.moto_url, expires_in=TWELVE_HOURS) as proxy:
        env.update(AWS_ENDPOINT_URL=proxy.url, XDG_STATE_HOME=str(state_home))
        yield moto, env, log, proxy


World = tuple[Moto, dict[str, str], Path, ApiFaultProxy]


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runas_async", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _state_path(env: dict[str, str]) -> Path:
    return Path(env["XDG_STATE_HOME"]) / "runas-async" / "logins.json"


def _edit_records(env: dict[str, str], change: Callable[[dict[str, Any]], None]) -> None:
    """Change the records of the docker config's logins (as time passing would)."""
    path = _state_path(env)
    doc = json.loads(path.read_text())
    change(doc["logins"][os.path.realpath(Path(env["DOCKER_CONFIG"]) / "config.json")])
    path.write_text(json.dumps(doc))


def _expire(*hosts: str, at: float | None = None) -> Callable[[dict[str, Any]], None]:
    def change(records: dict[str, Any]) -> None:
        for host in hosts:
            records[host]["expires_at"] = time.time() - 60 if at is None else at

    return change


def _all_three(moto: Moto) -> list[str]:
    """--file for dev's own registry (EAST), WEST and ECR Public, in one run."""
    file = moto.workdir / "logins.toml"
    file.write_text(
        f'[[login]]\nprofile = "dev"\n\n[[login]]\nprofile = "dev"\n'
        f'registries = ["{WEST}", "{PUBLIC}"]\n'
    )
    return ["--file", str(file)]


def _logged_in(env: dict[str, str], *args: str) -> None:
    done = _run(env, "ecr", "login", *args)
    assert done.returncode == 0, done.stdout + done.stderr


def _results(done: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    return {r["registry"]: r for r in json.loads(done.stdout)["results"]}


# --- recording ----------------------------------------------------------------------------


def test_login_records_the_api_expiry_and_no_secret(world: World) -> None:
    """Each login's expiresAt is recorded as the API gave it, with profile and client; 0600."""
    moto, env, _, _ = world
    before = time.time()
    _logged_in(env, *_all_three(moto))
    path = _state_path(env)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    for secret in (moto_password(DEV), ECR_PUBLIC_PASSWORD, "AWS:"):
        assert secret not in text
        assert base64.b64encode(f"AWS:{moto_password(DEV)}".encode()).decode() not in text
    records = json.loads(text)["logins"][os.path.realpath(moto.docker_config / "config.json")]
    assert set(records) == {EAST, WEST, PUBLIC}
    for host in (EAST, WEST):
        assert records[host]["profile"] == "dev"
        assert records[host]["account"] == DEV
        assert records[host]["client"] == "docker"
        assert before + TWELVE_HOURS - 5 < records[host]["expires_at"] < time.time() + TWELVE_HOURS
    assert records[PUBLIC]["account"] is None
    assert records[EAST]["store"] == "auths"
    assert records[EAST]["auth_hmac"]


def test_logout_removes_its_records(world: World) -> None:
    """`ecr logout` takes the registries' records out with their entries."""
    moto, env, _, _ = world
    _logged_in(env, *_all_three(moto))
    done = _run(env, "ecr", "logout", "dev", WEST)
    assert done.returncode == 0, done.stderr
    records = json.loads(_state_path(env).read_text())["logins"]
    assert [set(r) for r in records.values()] == [{EAST, PUBLIC}]


# --- ecr status ---------------------------------------------------------------------------


def test_status_with_nothing_logged_in_says_so_and_names_the_file(world: World) -> None:
    """No ECR registry in the auth file (none there at all, or only other registries): one
    line saying none is logged in, naming the auth file read; exit 0."""
    moto, env, _, _ = world
    config = moto.docker_config / "config.json"
    config.unlink(missing_ok=True)
    done = _run(env, "ecr", "status")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"No ECR registry is logged in: {config} does not exist.\n"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps({"auths": {"docker.io": {"auth": "bWU6cHc="}}}))
    done = _run(env, "ecr", "status")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"No ECR registry is logged in (read {config}).\n"
    listed = json.loads(_run(env, "ecr", "status", "-o", "json").stdout)
    assert listed == {"auth_file": str(config), "registries": []}


def test_status_over_a_mixed_auth_file(world: World) -> None:
    """Our logins, docker's own, a credsStore placeholder, credHelpers and public.ecr.aws."""
    moto, env, _, proxy = world
    _logged_in(env, *_all_three(moto))
    config = moto.docker_config / "config.json"
    doc = json.loads(config.read_text())
    docker_own = ecr_host("999999999999", "eu-west-1")
    in_store = ecr_host("888888888888", "eu-west-1")
    helped = ecr_host("777777777777", "eu-west-1")
    doc["auths"][docker_own] = {"auth": base64.b64encode(b"AWS:other").decode()}
    doc["auths"][f"https://{in_store}"] = {}
    doc["auths"]["docker.io"] = {"auth": base64.b64encode(b"me:pw").decode()}
    doc["credsStore"] = "desktop"
    doc["credHelpers"] = {helped: "ecr-login", "gcr.io": "gcloud"}
    config.write_text(json.dumps(doc))
    moto.clear_calls()
    seen = len(proxy.seen())
    done = _run(env, "ecr", "status", "-o", "json")
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert listed["auth_file"] == str(config)
    rows = {r["registry"]: r for r in listed["registries"]}
    assert set(rows) == {EAST, WEST, PUBLIC, docker_own, in_store, helped}
    for host in (EAST, WEST, PUBLIC):
        assert rows[host]["ours"] and rows[host]["profile"] == "dev"
        assert rows[host]["state"] == "valid"
        assert TWELVE_HOURS - 120 < rows[host]["expires_in"] <= TWELVE_HOURS
        assert rows[host]["where"] == "auths"
    assert (rows[in_store]["where"], rows[in_store]["helper"]) == ("credsStore", "desktop")
    assert (rows[helped]["where"], rows[helped]["helper"]) == ("credHelpers", "ecr-login")
    for host in (docker_own, in_store, helped):
        assert (rows[host]["ours"], rows[host]["state"]) == (False, "unknown")
    assert moto.moto_calls() == [] and len(proxy.seen()) == seen
    text = _run(env, "ecr", "status")
    assert text.returncode == 0
    assert "runas-async (dev)" in text.stdout and "(not runas-async)" in text.stdout
    _edit_records(env, _expire(WEST))
    done = _run(env, "ecr", "status", "-o", "json")
    assert done.returncode == 1
    states = {r["registry"]: r["state"] for r in json.loads(done.stdout)["registries"]}
    assert states[WEST] == "expired" and states[EAST] == "valid"


# --- --renew-before -----------------------------------------------------------------------


_CHILD = textwrap.dedent(
    """\
    import json, sys
    from runas_async.cli import main as cli
    code = cli.main(sys.argv[1:])
    heavy = [m for m in {heavy!r} if m in sys.modules]
    sys.stderr.write(json.dumps({{"code": code, "heavy": heavy}}) + "\\n")
    """
)


def test_a_plan_the_files_cannot_make_is_not_everything_fresh(
    moto: Moto, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--renew-before with a profile that has no region: the check from the files finds
    nothing (fresh or not), so the full path runs and says what is wrong (exit 2); an
    empty check is not "every registry is fresh" (exit 0, nothing done)."""
    moto.write_aws_config({"dev": dict(STATIC_KEYS)})
    for name, value in moto.env().items():
        monkeypatch.setenv(name, value)
    assert cli.main(["ecr", "login", "dev", "--renew-before", "1h"]) == 2
    assert "profile 'dev' has no region" in capsys.readouterr().err


def test_everything_fresh_makes_no_request_and_imports_nothing_heavy(world: World) -> None:
    """All fresh (own registry included): no request reaches moto, no heavy module loads."""
    moto, env, log, proxy = world
    _logged_in(env, *_all_three(moto))  # the own registry's account comes from STS once
    assert moto.calls("sts") == {"GetCallerIdentity": 1}
    moto.clear_calls()
    assert moto.ecr_public is not None
    moto.ecr_public.calls.clear()
    seen, logins = len(proxy.seen()), len(log.read_text().splitlines())
    argv = ["ecr", "login", *_all_three(moto), "--renew-before", "1h", "-o", "json"]
    summary, output = _ci_files(env, moto.workdir)  # written, still with nothing heavy
    child = subprocess.run(
        [sys.executable, "-c", _CHILD.format(heavy=HEAVY), *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    report = json.loads(child.stderr.strip().splitlines()[-1])
    assert report == {"code": 0, "heavy": []}, child.stderr
    results = _results(child)
    assert set(results) == {EAST, WEST, PUBLIC}
    assert {r["status"] for r in results.values()} == {"fresh"}
    assert all(TWELVE_HOURS - 120 < r["expires_in"] for r in results.values())
    assert moto.moto_calls() == []
    assert moto.ecr_public.calls == []
    assert len(proxy.seen()) == seen
    assert len(log.read_text().splitlines()) == logins  # no client ran either
    assert _outputs(output)["registries"] == sorted([EAST, WEST, PUBLIC])
    assert "3 of 3" in summary.read_text()
    text = _run(env, "ecr", "login", "dev", WEST, "--renew-before", "30m")
    assert text.returncode == 0
    assert f"fresh   {WEST} (profile dev, 11h5" in text.stdout


def test_some_stale_only_those_renewed(world: World) -> None:
    """A login ending within DURATION is renewed; the rest are shown fresh, untouched."""
    moto, env, log, _ = world
    _logged_in(env, "dev", EAST, WEST)
    _edit_records(env, _expire(WEST, at=time.time() + 600))  # 10 minutes left
    moto.clear_calls()
    log.write_text("")
    done = _run(env, "ecr", "login", "dev", EAST, WEST, "--renew-before", "1h", "-o", "json")
    assert done.returncode == 0, done.stderr
    results = _results(done)
    assert (results[EAST]["status"], results[WEST]["status"]) == ("fresh", "ok")
    assert [(c.operation, c.region) for c in moto.moto_calls()] == [
        ("GetAuthorizationToken", "us-west-2")
    ]
    assert [json.loads(line)["argv"][-1] for line in log.read_text().splitlines()] == [WEST]
    records = json.loads(_state_path(env).read_text())["logins"]
    (ours,) = records.values()
    assert ours[WEST]["expires_at"] > time.time() + TWELVE_HOURS - 120


def _ci_files(env: dict[str, str], tmp: Path) -> tuple[Path, Path]:
    summary, output = tmp / "summary.md", tmp / "github-output"
    for path in (summary, output):
        path.unlink(missing_ok=True)
    env.update(GITHUB_STEP_SUMMARY=str(summary), GITHUB_OUTPUT=str(output))
    return summary, output


def _outputs(path: Path) -> dict[str, list[str]]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines())
    return {name: sorted(filter(None, value.split(","))) for name, value in pairs}


def test_ci_outputs_list_every_registry_in_force_and_are_written_every_run(world: World) -> None:
    """--renew-before: GITHUB_OUTPUT's `registries` lists the fresh registries too, `renewed`
    only those logged in by this run; both files are written even when all are fresh."""
    moto, env, _, _ = world
    _logged_in(env, "dev", EAST, WEST)
    summary, output = _ci_files(env, moto.workdir)
    fresh = _run(env, "ecr", "login", "dev", EAST, WEST, "--renew-before", "1h")
    assert fresh.returncode == 0, fresh.stderr
    assert _outputs(output) == {"registries": sorted([EAST, WEST]), "renewed": []}
    table = summary.read_text()
    assert f"| `{EAST}` | dev | fresh |" in table and f"| `{WEST}` | dev | fresh |" in table
    assert "2 of 2" in table
    _edit_records(env, _expire(WEST, at=time.time() + 600))
    summary, output = _ci_files(env, moto.workdir)
    some = _run(env, "ecr", "login", "dev", EAST, WEST, "--renew-before", "1h")
    assert some.returncode == 0, some.stderr
    assert _outputs(output) == {"registries": sorted([EAST, WEST]), "renewed": [WEST]}
    table = summary.read_text()
    assert f"| `{EAST}` | dev | fresh |" in table and f"| `{WEST}` | dev | ok |" in table


def test_entry_replaced_by_a_plain_docker_login_is_not_trusted(world: World) -> None:
    """An entry whose auth no longer matches the record's hash is logged in again."""
    moto, env, _, _ = world
    _logged_in(env, "dev", EAST, WEST)
    docker = Path(env["PATH"].split(":")[0]) / "docker"
    plain = subprocess.run(
        [str(docker), "login", "--username", "AWS", "--password-stdin", WEST],
        env=env,
        input="someone-elses-token",
        text=True,
        check=True,
    )
    assert plain.returncode == 0
    moto.clear_calls()
    done = _run(env, "ecr", "login", "dev", EAST, WEST, "--renew-before", "1h", "-o", "json")
    assert done.returncode == 0, done.stderr
    results = _results(done)
    assert (results[EAST]["status"], results[WEST]["status"]) == ("fresh", "ok")
    assert moto.calls("ecr") == {"GetAuthorizationToken": 1}
    assert moto.docker_auths()[WEST] == f"AWS:{moto_password(DEV)}"


def test_entry_gone_is_not_trusted(world: World) -> None:
    """A recorded registry whose entry was removed by hand is logged in again."""
    moto, env, _, _ = world
    _logged_in(env, "dev", EAST, WEST)
    config = moto.docker_config / "config.json"
    doc = json.loads(config.read_text())
    del doc["auths"][EAST]
    config.write_text(json.dumps(doc))
    moto.clear_calls()
    done = _run(env, "ecr", "login", "dev", EAST, WEST, "--renew-before", "1h", "-o", "json")
    assert done.returncode == 0, done.stderr
    assert _results(done)[EAST]["status"] == "ok"
    assert EAST in moto.docker_auths()


def test_ci_files_that_cannot_be_written_are_one_line_each_and_exit_1(world: World) -> None:
    """$GITHUB_STEP_SUMMARY in a missing directory and $GITHUB_OUTPUT at a directory: one
    line each on stderr naming the variable and the path, no traceback, exit 1; the logins
    themselves are kept."""
    moto, env, _, _ = world
    summary = moto.workdir / "no-such-dir" / "summary.md"
    output = moto.workdir / "output-dir"
    output.mkdir(exist_ok=True)
    env.update(GITHUB_STEP_SUMMARY=str(summary), GITHUB_OUTPUT=str(output))
    done = _run(env, "ecr", "login", "dev", EAST, WEST)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        f"runas-async: error: cannot write $GITHUB_STEP_SUMMARY {summary}: "
        "No such file or directory",
        f"runas-async: error: cannot write $GITHUB_OUTPUT {output}: it is a directory",
    ]
    assert set(moto.docker_auths()) == {EAST, WEST}


# --- logout --expired ---------------------------------------------------------------------


def test_logout_expired_removes_those_and_only_those(world: World) -> None:
    """Entries, store secrets (through the client's logout) and records of expired logins go."""
    moto, env, log, _ = world
    third = ecr_host(DEV, "eu-west-1")
    _logged_in(env, "dev", EAST, WEST, third)
    config = moto.docker_config / "config.json"
    doc = json.loads(config.read_text())
    doc["auths"]["docker.io"] = {"auth": base64.b64encode(b"me:pw").decode()}
    config.write_text(json.dumps(doc))
    _edit_records(env, _expire(WEST, third))
    moto.clear_calls()
    log.write_text("")
    done = _run(env, "ecr", "logout", "--expired", "-o", "json")
    assert done.returncode == 0, done.stderr
    assert {r["registry"] for r in json.loads(done.stdout)["results"]} == {WEST, third}
    assert set(moto.docker_auths()) == {EAST, "docker.io"}
    logouts = [json.loads(line)["argv"] for line in log.read_text().splitlines()]
    assert sorted(a[-1] for a in logouts) == sorted([WEST, third])
    assert all(a[0] == "logout" for a in logouts)
    (records,) = json.loads(_state_path(env).read_text())["logins"].values()
    assert set(records) == {EAST}
    assert moto.moto_calls() == []
    again = _run(env, "ecr", "logout", "--expired")
    assert again.returncode == 0 and log.read_text().count("logout") == 2


def test_logout_expired_leaves_the_helpers_registries_alone(world: World) -> None:
    """A registry credHelpers sends to runas-async's own helper holds no login to remove:
    the helper's expired record (it fetches a new token at the next pull, as
    docker-credential-ecr-login would) is neither logged out nor counted, and does not
    make the run fail; the expired login beside it is logged out. As a docker user
    expects: `logout --expired` names only what it logged out."""
    moto, env, log, _ = world
    helped = ecr_host(DEV, "eu-west-1")
    _logged_in(env, "dev", EAST, WEST)
    config = moto.docker_config / "config.json"
    doc = json.loads(config.read_text())
    doc["credHelpers"] = {helped: "runas-async"}
    config.write_text(json.dumps(doc))
    helper_record = {
        "expires_at": time.time() - 60,
        "profile": "dev",
        "account": DEV,
        "region": "eu-west-1",
        "client": "docker-credential-runas-async",
        "store": "credHelpers",
        "helper": "runas-async",
    }
    _edit_records(env, lambda records: records.__setitem__(helped, helper_record))
    _edit_records(env, _expire(WEST))
    log.write_text("")
    done = _run(env, "ecr", "logout", "--expired", "-o", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert [r["registry"] for r in json.loads(done.stdout)["results"]] == [WEST]
    assert [json.loads(line)["argv"][-1] for line in log.read_text().splitlines()] == [WEST]
    assert json.loads(config.read_text())["credHelpers"] == {helped: "runas-async"}
    text = _run(env, "ecr", "logout", "--expired")
    assert text.returncode == 0 and helped not in text.stdout + text.stderr


# --- a state file not to be trusted -------------------------------------------------------


def _symlinked(path: Path) -> None:
    real = path.with_name("elsewhere.json")
    path.rename(real)
    path.symlink_to(real)


def _foreign(path: Path) -> None:
    os.chown(path, 65534, 65534)


TAMPERINGS: dict[str, Callable[[Path], object]] = {
    "not-json": lambda p: p.write_text("{not json"),
    "wrong-shape": lambda p: p.write_text('{"version": 1, "salt": 3, "logins": []}'),
    "group-readable": lambda p: p.chmod(0o644),
    "symlink": _symlinked,
    "other-owner": _foreign,
    "huge": lambda p: p.write_text(" " * (5 * 1024 * 1024)),
}


@pytest.mark.parametrize("tampering", list(TAMPERINGS))
def test_untrusted_state_file_is_ignored_never_fatal(world: World, tampering: str) -> None:
    """Corrupt, symlinked, loose or foreign: read as empty, so every login is renewed and
    the file replaced by a regular one of ours (a symlink's target left alone)."""
    if tampering == "other-owner":
        need_root("chown to another user needs root")
    moto, env, _, _ = world
    _logged_in(env, "dev", EAST)
    path = _state_path(env)
    TAMPERINGS[tampering](path)
    status = _run(env, "ecr", "status", "-o", "json")
    assert status.returncode == 0, status.stderr
    assert [r["state"] for r in json.loads(status.stdout)["registries"]] == ["unknown"]
    moto.clear_calls()
    done = _run(env, "ecr", "login", "dev", EAST, "--renew-before", "1h", "-o", "json")
    assert done.returncode == 0, done.stderr
    assert _results(done)[EAST]["status"] == "ok"
    assert moto.calls("ecr") == {"GetAuthorizationToken": 1}
    st = os.lstat(path)
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_uid == os.geteuid()
    assert EAST in next(iter(json.loads(path.read_text())["logins"].values()))
    if tampering == "symlink":
        assert path.with_name("elsewhere.json").read_text().startswith("{")


# --- end to end: real docker, real registry -----------------------------------------------


def test_end_to_end_with_real_docker(sb: Sandbox) -> None:
    """Real docker and registry: login records, status reads, --renew-before skips, logout."""
    sb.write_aws_config({"dev": {"region": "us-east-2", **STATIC_KEYS}})
    sb.add_registries([(EAST, moto_password(DEV)), (WEST, moto_password(DEV))])
    with ApiFaultProxy(sb.moto_url, expires_in=TWELVE_HOURS) as proxy:
        env = sb.env(AWS_ENDPOINT_URL=proxy.url, XDG_STATE_HOME=str(sb.workdir / "e2e-state"))
        done = sb.run_tool(["ecr", "login", "dev", EAST, WEST], env=env)
        assert done.returncode == 0, done.stderr
        assert sb.docker_auths() == {h: f"AWS:{moto_password(DEV)}" for h in (EAST, WEST)}
        status = sb.run_tool(["ecr", "status", "-o", "json"], env=env)
        assert status.returncode == 0, status.stderr
        rows = json.loads(status.stdout)["registries"]
        assert {(r["registry"], r["state"], r["profile"]) for r in rows} == {
            (EAST, "valid", "dev"),
            (WEST, "valid", "dev"),
        }
        sb.clear_calls()
        seen = len(proxy.seen())
        again = sb.run_tool(["ecr", "login", "dev", EAST, WEST, "--renew-before", "2h"], env=env)
        assert again.returncode == 0, again.stderr
        assert again.stdout.count("fresh ") == 2
        assert sb.moto_calls() == [] and len(proxy.seen()) == seen
        out = sb.run_tool(["ecr", "logout", "dev", WEST], env=env)
        assert out.returncode == 0, out.stderr
        status = sb.run_tool(["ecr", "status", "-o", "json"], env=env)
        assert [r["registry"] for r in json.loads(status.stdout)["registries"]] == [EAST]
