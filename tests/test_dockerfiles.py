"""docker's config.json as users really have it, end to end with the real docker CLI.

Each test runs the real ``runas-async ecr login`` (or logout) in the sandbox's namespace
(tests/sandbox.py), against moto and real registries, with a config.json the way a user
may have it: written on Windows, pointing at credential helpers, owned by someone else,
or found through an odd ``DOCKER_CONFIG``.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.missing import need_root
from tests.sandbox import STATIC_KEYS, Sandbox, ecr_host, moto_password
from tests.test_e2e import CRED_HELPER

DEV = "123456789012"  # static keys: moto's default account
HOST = ecr_host(DEV, "us-east-2")
OTHER = ecr_host(DEV, "eu-west-1")
PROFILES: Mapping[str, Mapping[str, str]] = {"dev": {"region": "us-east-2", **STATIC_KEYS}}
ABSENT = "absent-helper"  # no docker-credential-absent-helper anywhere on PATH


def _setup(sb: Sandbox, *hosts: str) -> None:
    sb.write_aws_config(PROFILES)
    sb.add_registries([(h, moto_password(DEV)) for h in hosts])


def _basic(user: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


def _write_config(sb: Sandbox, data: bytes | Mapping[str, Any]) -> Path:
    sb.docker_config.mkdir(parents=True, exist_ok=True)
    config = sb.docker_config / "config.json"
    config.write_bytes(data if isinstance(data, bytes) else json.dumps(data).encode())
    return config


def _fake_helper(sb: Sandbox) -> dict[str, str]:
    """tests/test_e2e.py's stand-in helper as docker-credential-fake; the env finding it."""
    bin_dir = sb.workdir / "helper-bin"
    bin_dir.mkdir(exist_ok=True)
    helper = bin_dir / "docker-credential-fake"
    helper.write_text(CRED_HELPER.format(python=sys.executable))
    helper.chmod(0o755)
    store = sb.workdir / "helper-store.json"
    store.unlink(missing_ok=True)
    return sb.env(PATH=f"{bin_dir}:{os.environ['PATH']}", FAKE_HELPER_STORE=str(store))


def _rows(done: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    return {str(r["registry"]): r for r in json.loads(done.stdout)["results"]}


# What real docker (28.2) does with a config.json that starts with a UTF-8 BOM, seen by
# experiment and checked by test_docker_itself_ignores_a_config_with_a_bom below: it warns
# "WARNING: Error parsing config file (.../config.json): invalid character 'ï' looking for
# beginning of value" and carries on as if the file were empty. credsStore, credHelpers and
# the other auths are ignored, the token is stored as plaintext "auth", and the file is
# rewritten with that one entry: everything else in it is lost. A `docker logout` does not
# touch it. CRLF line ends are JSON whitespace: docker reads such a file fine.
BOM = b"\xef\xbb\xbf"
WINDOWS_AUTHS = {"ghcr.io": _basic("user", "pass")}
WINDOWS_CONFIG = {"credsStore": "fake", "psFormat": "table {{.ID}}", "auths": WINDOWS_AUTHS}


def _encoded(kind: str) -> bytes:
    text = json.dumps(WINDOWS_CONFIG, indent=2)
    if "crlf" in kind:
        text = text.replace("\n", "\r\n") + "\r\n"
    return (BOM if "bom" in kind else b"") + text.encode()


def test_docker_itself_ignores_a_config_with_a_bom(sb: Sandbox) -> None:
    """Real docker ignores a BOM config.json: plaintext auth, credsStore and the rest lost."""
    _setup(sb, HOST)
    config = _write_config(sb, _encoded("bom"))
    done = sb.docker_login(HOST, moto_password(DEV), env=_fake_helper(sb))
    assert done.returncode == 0, done.stderr
    assert "Error parsing config file" in done.stderr
    assert json.loads(config.read_bytes()) == {"auths": {HOST: _basic("AWS", moto_password(DEV))}}
    assert not (sb.workdir / "helper-store.json").exists()


@pytest.mark.parametrize("kind", ["bom", "crlf", "bom-crlf"])
def test_windows_written_config_keeps_its_creds_store(sb: Sandbox, kind: str) -> None:
    """A config.json with a BOM and/or CRLF: the token goes to credsStore, other keys stay."""
    _setup(sb, HOST)
    config = _write_config(sb, _encoded(kind))
    env = _fake_helper(sb)
    done = sb.run_tool(["ecr", "login", "dev", HOST], env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    doc = json.loads(config.read_bytes())
    assert doc["auths"] == {**WINDOWS_AUTHS, HOST: {}}  # no plaintext secret
    assert {k: v for k, v in doc.items() if k != "auths"} == {
        "credsStore": "fake",
        "psFormat": "table {{.ID}}",
    }
    store = json.loads(Path(env["FAKE_HELPER_STORE"]).read_text())
    assert store == {HOST: {"Username": "AWS", "Secret": moto_password(DEV)}}


@pytest.mark.parametrize("endpoints", [[HOST], []], ids=["host", "profiles-own-registry"])
def test_creds_store_not_on_path_exits_2_before_any_request(
    sb: Sandbox, endpoints: list[str]
) -> None:
    """credsStore naming a missing helper: exit 2, one line naming it, nothing asked of AWS."""
    _setup(sb, HOST)
    config = _write_config(sb, {"credsStore": ABSENT, "auths": {}})
    done = sb.run_tool(["ecr", "login", "dev", *endpoints])
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert f"docker-credential-{ABSENT}" in done.stderr
    assert sb.moto_calls() == []
    assert json.loads(config.read_bytes()) == {"credsStore": ABSENT, "auths": {}}


def test_missing_helper_of_an_unrelated_host_does_not_matter(sb: Sandbox) -> None:
    """credHelpers sending gcr.io to a missing helper: the ECR login succeeds anyway."""
    _setup(sb, HOST)
    _write_config(sb, {"credHelpers": {"gcr.io": ABSENT}})
    done = sb.run_tool(["ecr", "login", "dev", HOST])
    assert done.returncode == 0, done.stdout + done.stderr
    assert sb.docker_auths() == {HOST: f"AWS:{moto_password(DEV)}"}


def test_host_served_by_ecr_login_helper_is_left_to_it(sb: Sandbox) -> None:
    """credHelpers sending a host to ecr-login: that row fails saying so; the others log in."""
    _setup(sb, HOST, OTHER)
    config = _write_config(sb, {"credHelpers": {HOST: "ecr-login"}})
    done = sb.run_tool(["ecr", "login", "dev", HOST, OTHER, "-o", "json"])
    assert done.returncode == 1, done.stdout + done.stderr
    rows = _rows(done)
    assert rows[OTHER]["status"] == "ok"
    assert rows[HOST]["status"] == "failed"
    error = str(rows[HOST]["error"])
    assert "docker-credential-ecr-login already serves" in error
    assert "remove that entry" in error
    assert sb.docker_auths() == {OTHER: f"AWS:{moto_password(DEV)}"}
    assert json.loads(config.read_bytes())["credHelpers"] == {HOST: "ecr-login"}


SCHEMES = ("", "https://", "http://")


def test_logout_removes_every_spelling_of_the_host(sb: Sandbox) -> None:
    """`ecr logout HOST` drops HOST, https://HOST and http://HOST, as docker logout does."""
    _setup(sb, HOST)
    spelled = {f"{scheme}{HOST}": _basic("AWS", scheme or "bare") for scheme in SCHEMES}
    kept = {"ghcr.io": _basic("u", "p"), f"https://{OTHER}": _basic("AWS", "other")}
    seed = {"auths": {**spelled, **kept}, "psFormat": "x"}
    config = _write_config(sb, seed)
    done = sb.run_tool(["ecr", "logout", HOST])
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(config.read_bytes()) == {"auths": kept, "psFormat": "x"}
    # The same file, logged out by docker itself, ends up the same.
    sb.docker_config.rename(sb.workdir / "docker-runas")
    _write_config(sb, seed)
    done = sb.run(["docker", "logout", HOST])
    assert done.returncode == 0, done.stderr
    assert json.loads(config.read_bytes())["auths"] == kept


def test_login_keeps_owner_group_and_mode(sb: Sandbox) -> None:
    """As root, another's config.json (4321:4321, 0644) keeps owner and mode, as docker does."""
    need_root("chown to another user")
    _setup(sb, HOST, OTHER)
    config = _write_config(sb, {"auths": {"ghcr.io": _basic("u", "p")}})
    os.chown(config, 4321, 4321)
    config.chmod(0o644)

    def owner_and_mode() -> tuple[int, int, int]:
        st = config.stat()
        return st.st_uid, st.st_gid, st.st_mode & 0o7777

    done = sb.run_tool(["ecr", "login", "dev", HOST])
    assert done.returncode == 0, done.stdout + done.stderr
    assert owner_and_mode() == (4321, 4321, 0o644)
    assert sb.docker_auths() == {"ghcr.io": "u:p", HOST: f"AWS:{moto_password(DEV)}"}
    # docker's own writer does the same (checked with docker 28.2).
    done = sb.docker_login(OTHER, moto_password(DEV))
    assert done.returncode == 0, done.stderr
    assert owner_and_mode() == (4321, 4321, 0o644)


def _written(*roots: Path) -> list[Path]:
    """Every config.json under ``roots``."""
    return sorted(p for root in roots for p in root.rglob("config.json"))


def test_literal_tilde_in_docker_config_lands_where_docker_writes(sb: Sandbox) -> None:
    """DOCKER_CONFIG="~/dc": runas-async writes where docker does, ./~/dc, not $HOME/dc."""
    _setup(sb, HOST)
    cwd = sb.workdir / "tilde-cwd"
    shutil.rmtree(cwd, ignore_errors=True)
    cwd.mkdir()
    env = sb.env(DOCKER_CONFIG="~/dc")
    password = moto_password(DEV)

    def run(argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            sb.wrap(argv),
            cwd=cwd,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
        )

    done = run(["docker", "login", HOST, "-u", "AWS", "--password-stdin"], password + "\n")
    assert done.returncode == 0, done.stderr
    by_docker = _written(cwd, sb.home)
    assert by_docker == [cwd / "~" / "dc" / "config.json"]
    by_docker[0].unlink()
    done = run([sys.executable, "-m", "runas_async", "ecr", "login", "dev", HOST])
    assert done.returncode == 0, done.stdout + done.stderr
    assert _written(cwd, sb.home) == by_docker
    assert not (sb.home / "dc").exists()
