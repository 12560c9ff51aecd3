"""config.json handling: reading, validating, merging under a lock."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from runas_async.auth.authfile import AuthFile, auth_entry, helper_for
from runas_async.core.errors import DockerConfigError
from runas_async.core.places import docker_auth_file
from tests.missing import need_root

EXISTING = {
    "auths": {"ghcr.io": {"auth": "dXNlcjpwYXNz"}},
    "credHelpers": {"gcr.io": "gcloud"},
    "proxies": {"default": {"httpProxy": "http://127.0.0.1:3128"}},
    "psFormat": "table {{.ID}}",
}


def _write(path: Path, doc: object, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    path.chmod(mode)


def docker_config(directory: Path) -> AuthFile:
    """docker's auth file with ``DOCKER_CONFIG=directory``, found as the commands find it."""
    return AuthFile(docker_auth_file({"DOCKER_CONFIG": str(directory)}))


def test_merge_keeps_every_other_key_and_entry(tmp_path: Path) -> None:
    """Merging new auths keeps existing entries, other keys, and the file mode."""
    cfg = docker_config(tmp_path)
    _write(cfg.path, EXISTING, 0o640)
    cfg.merge_auths({"1.dkr.ecr.us-east-1.amazonaws.com": {"auth": "QVdTOnB3"}})
    doc = json.loads(cfg.path.read_text())
    assert doc["auths"]["ghcr.io"] == EXISTING["auths"]["ghcr.io"]  # type: ignore[index]
    assert doc["auths"]["1.dkr.ecr.us-east-1.amazonaws.com"] == {"auth": "QVdTOnB3"}
    for key in ("credHelpers", "proxies", "psFormat"):
        assert doc[key] == EXISTING[key]
    assert stat.S_IMODE(cfg.path.stat().st_mode) == 0o640


def test_merge_creates_missing_file_private(tmp_path: Path) -> None:
    """With no config.json yet, the merge creates one readable only by its owner."""
    cfg = docker_config(tmp_path / "new")
    cfg.preflight()
    cfg.merge_auths({"h": {"auth": "x"}})
    assert json.loads(cfg.path.read_text()) == {"auths": {"h": {"auth": "x"}}}
    assert stat.S_IMODE(cfg.path.stat().st_mode) == 0o600


def test_merge_writes_through_a_symlink(tmp_path: Path) -> None:
    """A symlinked config.json (dotfile managers) stays a symlink; its target is updated."""
    real = tmp_path / "dotfiles" / "docker.json"
    _write(real, EXISTING)
    cfg = docker_config(tmp_path / "docker")
    cfg.directory.mkdir()
    cfg.path.symlink_to(real)
    cfg.merge_auths({"h": {"auth": "x"}})
    assert cfg.path.is_symlink()
    assert json.loads(real.read_text())["auths"]["h"] == {"auth": "x"}


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        pytest.param(b"{not json", "not valid JSON", id="invalid-json"),
        pytest.param(b"[1, 2]", "not a JSON object", id="array"),
        pytest.param(b'{"auths": []}', "'auths' is not a JSON object", id="auths-array"),
    ],
)
def test_invalid_config_is_refused_and_untouched(
    tmp_path: Path, content: bytes, needle: str
) -> None:
    """An unusable config.json is named in a one-line error and left byte for byte."""
    cfg = docker_config(tmp_path)
    cfg.path.write_bytes(content)
    with pytest.raises(DockerConfigError) as info:
        cfg.preflight()
    assert str(cfg.path) in str(info.value)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(DockerConfigError):
        cfg.merge_auths({"h": {"auth": "x"}})
    assert cfg.path.read_bytes() == content


def test_empty_file_counts_as_empty_config(tmp_path: Path) -> None:
    """An empty config.json (as `touch` leaves it) is treated as {}."""
    cfg = docker_config(tmp_path)
    cfg.path.write_bytes(b"")
    seed = cfg.preflight()
    assert seed is not None and json.loads(seed) == {}
    cfg.merge_auths({"h": {}})
    assert json.loads(cfg.path.read_text()) == {"auths": {"h": {}}}


def test_unreadable_config_is_refused(tmp_path: Path) -> None:
    """A config.json that cannot be read (here: a directory) is an error naming it."""
    cfg = docker_config(tmp_path)
    cfg.path.mkdir()
    with pytest.raises(DockerConfigError, match="cannot read") as info:
        cfg.preflight()
    assert str(cfg.path) in str(info.value)


def test_read_only_directory_is_refused_before_anything_runs(tmp_path: Path) -> None:
    """A directory that cannot take the new file fails the preflight, file untouched."""
    cfg = docker_config(tmp_path / "ro")
    _write(cfg.path, EXISTING)
    before = cfg.path.read_bytes()
    # A read-only bind mount would need root; a path that is not a directory
    # fails the same way for root and for users.
    blocked = docker_config(cfg.path / "sub")
    with pytest.raises(DockerConfigError) as info:
        blocked.preflight()
    assert str(blocked.path) in str(info.value)
    assert cfg.path.read_bytes() == before


_MERGE = (
    "import sys; from pathlib import Path; from runas_async.auth.authfile import AuthFile; "
    "AuthFile(Path(sys.argv[1]) / 'config.json').merge_auths({sys.argv[2]: {'auth': sys.argv[2]}})"
)


def test_concurrent_merges_from_processes_lose_nothing(tmp_path: Path) -> None:
    """Twenty processes merging at once all end up in config.json, with what was there."""
    cfg = docker_config(tmp_path)
    _write(cfg.path, EXISTING)
    procs = [
        subprocess.Popen([sys.executable, "-c", _MERGE, str(tmp_path), f"h{i}"]) for i in range(20)
    ]
    for p in procs:
        assert p.wait(30) == 0
    auths = json.loads(cfg.path.read_text())["auths"]
    assert set(auths) == {"ghcr.io"} | {f"h{i}" for i in range(20)}
    assert not [p for p in tmp_path.iterdir() if p.name != "config.json"]


def test_auth_entry_reads_one_host() -> None:
    """auth_entry picks the host's entry and tolerates junk."""
    doc = json.dumps({"auths": {"a": {"auth": "x"}, "b": "junk"}}).encode()
    assert auth_entry(doc, "a") == {"auth": "x"}
    assert auth_entry(doc, "b") is None
    assert auth_entry(b"nope", "a") is None
    assert auth_entry(b"[]", "a") is None


def test_merge_keeps_owner_group_and_mode(tmp_path: Path) -> None:
    """After a root (sudo) run, the user's config.json is still the user's, mode unchanged."""
    need_root("to own a file as another user")
    cfg = docker_config(tmp_path)
    _write(cfg.path, EXISTING, 0o644)
    os.chown(cfg.path, 4321, 8765)
    cfg.merge_auths({"1.dkr.ecr.us-east-1.amazonaws.com": {"auth": "QVdTOnB3"}})
    st = cfg.path.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (4321, 8765, 0o644)
    assert "1.dkr.ecr.us-east-1.amazonaws.com" in json.loads(cfg.path.read_text())["auths"]


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"\xef\xbb\xbf" + json.dumps(EXISTING).encode(), id="utf8-bom"),
        pytest.param(json.dumps(EXISTING, indent=2).replace("\n", "\r\n").encode(), id="crlf"),
        pytest.param(
            b"\xef\xbb\xbf" + json.dumps(EXISTING, indent=2).replace("\n", "\r\n").encode(),
            id="bom-and-crlf",
        ),
    ],
)
def test_seed_is_plain_json_docker_can_read(tmp_path: Path, raw: bytes) -> None:
    """A BOM or CRLF file seeds each login with plain JSON holding the same settings, so
    docker (whose JSON decoder rejects a BOM) still sees credsStore and credHelpers."""
    cfg = docker_config(tmp_path)
    cfg.path.write_bytes(raw)
    seed = cfg.preflight()
    assert seed is not None
    assert not seed.startswith(b"\xef\xbb\xbf")
    assert b"\r" not in seed
    assert json.loads(seed.decode("ascii")) == EXISTING
    assert cfg.path.read_bytes() == raw  # the user's file is not touched by reading it


def test_remove_takes_every_spelling_docker_logout_removes(tmp_path: Path) -> None:
    """HOST, https://HOST and http://HOST all go; other hosts and keys stay."""
    host = "1.dkr.ecr.us-east-1.amazonaws.com"
    doc = {
        "auths": {
            host: {"auth": "QVdTOmE="},
            f"https://{host}": {"auth": "QVdTOmI="},
            f"http://{host}": {"auth": "QVdTOmM="},
            "ghcr.io": {"auth": "dXNlcjpwYXNz"},
        },
        "psFormat": "x",
    }
    cfg = docker_config(tmp_path)
    _write(cfg.path, doc)
    cfg.remove_auths([host])
    assert json.loads(cfg.path.read_text()) == {
        "auths": {"ghcr.io": {"auth": "dXNlcjpwYXNz"}},
        "psFormat": "x",
    }


@pytest.mark.parametrize(
    ("doc", "host", "helper"),
    [
        pytest.param({}, "h.example", None, id="none"),
        pytest.param({"credsStore": "pass"}, "h.example", "pass", id="store"),
        pytest.param({"credsStore": "pass"}, None, "pass", id="store-unknown-host"),
        pytest.param(
            {"credsStore": "pass", "credHelpers": {"h.example": "ecr-login"}},
            "h.example",
            "ecr-login",
            id="helper-wins",
        ),
        pytest.param(
            {"credHelpers": {"https://h.example": "ecr-login"}},
            "h.example",
            None,
            id="helper-exact-host-only",
        ),
        pytest.param({"credHelpers": {"h.example": "x"}}, None, None, id="helper-unknown-host"),
    ],
)
def test_helper_for(doc: dict[str, object], host: str | None, helper: str | None) -> None:
    """credHelpers by exact host, then credsStore: the helper docker would store with."""
    assert helper_for(doc, host) == helper


def test_a_docker_login_landing_during_the_merge_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plain `docker login` (no lock) that replaces config.json while our merge writes
    its new file is seen: the merge reads again and keeps both entries."""
    from runas_async.files import atomic_write as real

    cfg = docker_config(tmp_path)
    _write(cfg.path, EXISTING)
    calls: list[bytes] = []

    def racing(path: Path, data: bytes, *args: object, **kwargs: object) -> bool:
        if not calls:  # docker login rewrites the file meanwhile (write + rename)
            doc = json.loads(cfg.path.read_text())
            doc["auths"]["docker.example"] = {"auth": "ZDpk"}
            (tmp_path / "docker-tmp").write_text(json.dumps(doc))
            os.replace(tmp_path / "docker-tmp", cfg.path)
        calls.append(data)
        return real(path, data, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("runas_async.auth.authfile.atomic_write", racing)
    cfg.merge_auths({"1.dkr.ecr.us-east-1.amazonaws.com": {"auth": "QVdTOnB3"}})
    auths = json.loads(cfg.path.read_text())["auths"]
    assert set(auths) == {"ghcr.io", "docker.example", "1.dkr.ecr.us-east-1.amazonaws.com"}
    assert len(calls) == 2
    assert list(tmp_path.glob(".config.json.*")) == []
