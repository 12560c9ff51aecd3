"""files.py's rules on every file we touch (issue 19 items 4-10, issue 20's configure-docker),
with real parts: moto behind a proxy that gives tokens 12 hours, a FIFO and /dev/zero, a
tmpfs of a few KiB and a read-only bind mount in a private mount namespace, ``setpriv`` to
act as the HOME's owner (uid 65534) after a root run, 20 concurrent processes."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, example, given, settings

from runas_async import files
from runas_async.auth.authfile import AuthFile
from runas_async.auth.helpercache import TokenCache
from runas_async.auth.state import State
from runas_async.core import mapping as registries
from runas_async.core.errors import RunasError
from runas_async.core.partitions import load_partitions
from tests.faults import ApiFaultProxy
from tests.missing import need_program, need_root
from tests.sandbox import DEFAULT_ACCOUNT, STATIC_KEYS, Moto, ecr_host, moto_password

HOST = ecr_host(DEFAULT_ACCOUNT, "us-west-2")
PROFILES = {"dev": {"region": "us-west-2", **STATIC_KEYS}, "prod": {"region": "eu-west-1"}}
NOBODY = 65534
DEEP = "[" * 100000


@pytest.fixture
def world(moto: Moto) -> Iterator[dict[str, str]]:
    """moto behind a proxy that gives tokens 12 hours; profiles dev and prod; every file of
    ours under HOME (no XDG variables), registries.toml in its default place."""
    moto.write_aws_config(PROFILES)
    with ApiFaultProxy(moto.moto_url, expires_in=12 * 3600) as proxy:
        yield moto.env(AWS_ENDPOINT_URL=proxy.url, AWS_PROFILE="dev")


def _home(env: Mapping[str, str]) -> Path:
    return Path(env["HOME"])


def _mapping(env: Mapping[str, str]) -> Path:
    return _home(env) / ".config" / "runas-async" / "registries.toml"


def _run(
    env: Mapping[str, str], *argv: str, input: str = "", prefix: Sequence[str] = ()
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, *argv], env=dict(env), input=input, capture_output=True, text=True, timeout=60
    )


def _tool(env: Mapping[str, str], *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return _run(env, sys.executable, "-m", "runas_async", *args, **kw)  # type: ignore[arg-type]


def _helper(
    env: Mapping[str, str], verb: str, text: str, prefix: Sequence[str] = ()
) -> subprocess.CompletedProcess[str]:
    argv = (sys.executable, "-m", "runas_async.credhelper", verb)
    return _run(env, *argv, input=text, prefix=prefix)


def _one_line_error(done: subprocess.CompletedProcess[str], needle: str) -> None:
    """Failed with one line (on stderr, or stdout for the helper) naming ``needle``."""
    assert done.returncode != 0
    assert "Traceback" not in done.stderr + done.stdout
    said = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
    assert len(said) == 1 and needle in said[0], done.stderr + done.stdout


# --- item 4: bounded reads ----------------------------------------------------------------


@pytest.fixture(params=["fifo", "dev-zero", "directory"])
def endless(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A path that never ends (/dev/zero), blocks (a FIFO with no writer) or is no file."""
    if request.param == "dev-zero":
        return "/dev/zero"
    path = tmp_path / request.param
    os.mkfifo(path) if request.param == "fifo" else path.mkdir()
    return str(path)


def test_login_file_that_never_ends_is_a_one_line_error(
    world: dict[str, str], endless: str
) -> None:
    """`ecr login -f /dev/zero` (or a FIFO, a directory): exit 2 at once, naming the file."""
    done = _tool(world, "ecr", "login", "-f", endless, "-n")
    assert done.returncode == 2
    _one_line_error(done, endless)


def test_helper_registries_file_that_never_ends_is_a_one_line_error(
    world: dict[str, str], endless: str
) -> None:
    """RUNAS_ASYNC_REGISTRIES=/dev/zero (or a FIFO): the helper's get answers at once."""
    done = _helper({**world, "RUNAS_ASYNC_REGISTRIES": endless}, "get", HOST)
    assert done.returncode == 1
    _one_line_error(done, endless)


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    """Past the cap: an error naming the size, not a read of everything."""
    path = tmp_path / "big"
    path.write_bytes(b" " * 2048)
    with pytest.raises(RunasError, match="larger than 1024 bytes"):
        files.read_user(path, what="x", limit=1024)


# --- item 5: nesting, numbers, symlink loops -----------------------------------------------


def _seed_config(env: Mapping[str, str], text: str) -> Path:
    config = Path(env["DOCKER_CONFIG"]) / "config.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(text)
    return config


@pytest.mark.parametrize("command", [["ecr", "status"], ["ecr", "configure-docker", "dev", HOST]])
@pytest.mark.parametrize("damage", ["deep", "infinity", "symlink-loop"])
def test_hostile_config_json_is_a_one_line_error(
    world: dict[str, str], command: list[str], damage: str
) -> None:
    """config.json of '[' * 100000, an Infinity, or a symlink to itself: exit 2, one line."""
    if damage == "symlink-loop":
        config = Path(world["DOCKER_CONFIG"]) / "config.json"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.symlink_to(config)
    else:
        _seed_config(world, DEEP if damage == "deep" else '{"auths": {}, "x": Infinity}')
    done = _tool(world, *command)
    assert done.returncode == 2
    _one_line_error(done, "config.json")


def _state_file(env: Mapping[str, str]) -> Path:
    return _home(env) / ".local" / "state" / "runas-async" / "logins.json"


def _configured(env: Mapping[str, str]) -> None:
    done = _tool(env, "ecr", "configure-docker", "dev", HOST)
    assert done.returncode == 0, done.stderr
    got = _helper(env, "get", HOST)
    assert got.returncode == 0, got.stdout + got.stderr


@pytest.mark.parametrize("damage", ["deep", "infinity", "huge-int"])
def test_hostile_state_file_is_never_fatal(world: dict[str, str], damage: str) -> None:
    """A state file of '[' * 100000, or a record expiring at Infinity or 10**400: ecr status
    still answers, the record unused (the helper's row takes its time left from the helper's
    own token cache)."""
    _configured(world)  # the helper's get records the login
    path = _state_file(world)
    if damage == "deep":
        path.write_text(DEEP)
    else:
        doc = json.loads(path.read_text())
        (record,) = [r for hosts in doc["logins"].values() for r in hosts.values()]
        record["expires_at"] = "INF" if damage == "infinity" else "BIG"
        text = json.dumps(doc).replace('"INF"', "Infinity").replace('"BIG"', "1" + "0" * 400)
        path.write_text(text)
    done = _tool(world, "ecr", "status", "-o", "json")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    (row,) = json.loads(done.stdout)["registries"]
    assert (row["state"], row["client"]) == ("valid", "docker-credential-runas-async")
    assert 0 < row["expires_in"] <= 12 * 3600  # the token's, not the damaged record's


@pytest.mark.parametrize("damage", ["deep", "infinity"])
def test_hostile_token_cache_is_never_fatal(world: dict[str, str], damage: str) -> None:
    """A token cache of '[' * 100000, or a token expiring at Infinity: get fetches anew."""
    _configured(world)
    cache = _home(world) / ".cache" / "runas-async" / "helper-tokens.json"
    if damage == "deep":
        cache.write_text(DEEP)
    else:
        text = cache.read_text()
        doc = json.loads(text)
        for token in doc["tokens"].values():
            token["expires_at"] = "INF"
        cache.write_text(json.dumps(doc).replace('"INF"', "Infinity"))
    done = _helper(world, "get", HOST)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["Secret"] == moto_password(DEFAULT_ACCOUNT)
    assert "Infinity" not in cache.read_text()


def test_deep_registries_file_is_a_one_line_error(world: dict[str, str]) -> None:
    """registries.toml of '[' * 100000: the helper's get fails with one line."""
    mapping = _mapping(world)
    mapping.parent.mkdir(parents=True)
    mapping.write_text("a = " + DEEP)
    done = _helper(world, "get", HOST)
    assert done.returncode == 1
    _one_line_error(done, "registries.toml")


def test_deep_login_file_is_a_one_line_error(world: dict[str, str], tmp_path: Path) -> None:
    """--file of '[' * 100000 (and on stdin): exit 2, one line."""
    path = tmp_path / "logins.toml"
    path.write_text("a = " + DEEP)
    _one_line_error(_tool(world, "ecr", "login", "-f", str(path), "-n"), "logins.toml")
    _one_line_error(_tool(world, "ecr", "login", "-f", "-", "-n", input="a = " + DEEP), "stdin")


def test_deep_store_input_is_a_one_line_error(world: dict[str, str]) -> None:
    """The helper's store with '[' * 100000 on stdin: exit 1, one line."""
    done = _helper(world, "store", "[" * 60000)  # under stdin's cap: the parser's depth
    assert done.returncode == 1
    _one_line_error(done, "JSON")


# --- fuzzing every parser of outside bytes -------------------------------------------------

HOSTILE = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(str.encode),
    st.builds(
        lambda opener, n, tail: opener * n + tail,
        st.sampled_from([b"[", b'{"a":', b'{"auths":{"h":', b"a = [", b"a = {b = ", b"[a.b"]),
        st.integers(0, 3000),
        st.sampled_from([b"", b"1", b"Infinity", b"NaN", b"-1e999", b"]" * 10, b"\x00", b"\xff"]),
    ),
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=10),
        lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=5), kids),
        max_leaves=30,
    ).map(lambda v: json.dumps(v).encode()),
)
FUZZ = settings(
    derandomize=True,
    deadline=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _parses_or_one_line(parse: object, data: bytes) -> None:
    try:
        parse(data)  # type: ignore[operator]
    except RunasError as e:
        assert "\n" not in str(e) and len(str(e)) < 400


@FUZZ
@given(HOSTILE)
@example(DEEP.encode())
def test_fuzz_json(data: bytes) -> None:
    """Any bytes: parsed (finite, at most MAX_DEPTH deep) or one line, never a traceback."""
    _parses_or_one_line(lambda d: files.parse_json(d, what="x"), data)


@FUZZ
@given(HOSTILE)
@example(DEEP.encode())
def test_fuzz_config_json(data: bytes) -> None:
    """config.json's own checks on top of JSON: a document or a one-line error."""
    _parses_or_one_line(AuthFile(Path("/nonexistent/config.json"))._parse, data)


@FUZZ
@given(HOSTILE)
@example(DEEP.encode())
def test_fuzz_state_file(data: bytes) -> None:
    """The state file reads as a state (empty when not ours), whatever its bytes."""
    state = State.parse(data)
    state.dump()  # and writes back


@FUZZ
@given(HOSTILE)
def test_fuzz_token_cache(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    """The token cache's file: any bytes read as a miss or a well-formed token."""
    directory = tmp_path_factory.mktemp("cache")
    (directory / "helper-tokens.json").write_bytes(data)
    (directory / "helper-tokens.json").chmod(0o600)
    cache = TokenCache(directory)
    for name in ("x", "|us-east-1|private"):
        token = cache.get(name, "f")
        assert token is None or token.valid(0) in (True, False)
    cache.route("h", "s")  # the warm path's read of the same file


@FUZZ
@given(HOSTILE)
@example(DEEP.encode())
def test_fuzz_registries_toml(data: bytes) -> None:
    """registries.toml: rules or a one-line error; an edit of a valid file parses back."""
    text = data.decode("utf-8", "replace")
    partitions = load_partitions()
    try:
        registries.parse_mapping(text, "r.toml", partitions)
    except RunasError as e:
        assert "\n" not in str(e)
        return
    edited = registries.edit_mapping(text, [("dev", [HOST])], False, "r.toml", partitions)
    assert registries.parse_mapping(edited, "r.toml", partitions)[0].profile == "dev"


def test_depth_limit_is_exact() -> None:
    """MAX_DEPTH levels parse; one more is refused."""
    depth = files.MAX_DEPTH
    assert files.parse_json("[" * depth + "]" * depth, what="x") is not None
    with pytest.raises(RunasError, match="nested deeper"):
        files.parse_json("[" * (depth + 1) + "]" * (depth + 1), what="x")


# --- item 6: concurrent configure-docker ---------------------------------------------------


@pytest.mark.long
def test_twenty_configure_docker_runs_at_once_keep_every_table(world: dict[str, str]) -> None:
    """20 configure-docker runs at once, each for its own registry, with 20 helper gets
    beside them: registries.toml and credHelpers keep all 20, every get answers."""
    hosts = [ecr_host(f"1000000000{i:02d}", "us-west-2") for i in range(20)]
    _configured(world)
    argv = [sys.executable, "-m", "runas_async", "ecr", "configure-docker", "dev"]
    helper = [sys.executable, "-m", "runas_async.credhelper", "get"]
    quiet = subprocess.DEVNULL
    runs = [subprocess.Popen([*argv, h], env=world, stdout=quiet, stderr=quiet) for h in hosts]
    gets = [
        subprocess.Popen(
            helper, env=world, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=quiet
        )
        for _ in hosts
    ]
    answers = [g.communicate(HOST.encode(), timeout=120)[0] for g in gets]
    assert [r.wait(timeout=120) for r in runs] == [0] * 20
    assert all(json.loads(a)["Secret"] == moto_password(DEFAULT_ACCOUNT) for a in answers)
    doc = tomllib.loads(_mapping(world).read_text())
    mapped = {r for table in doc["login"] for r in table.get("registries", [])}
    assert set(hosts) <= mapped
    helpers = json.loads((Path(world["DOCKER_CONFIG"]) / "config.json").read_text())
    assert set(hosts) <= set(helpers["credHelpers"])


# --- item 7 and issue 20: configure-docker all or nothing, symlinks, comments, profiles ------


@pytest.mark.parametrize("damage", ["invalid", "directory"])
def test_configure_docker_writes_nothing_when_registries_toml_is_unusable(
    world: dict[str, str], damage: str
) -> None:
    """An invalid registries.toml, or a directory at its path: exit 2, config.json untouched."""
    config = _seed_config(world, '{"auths": {}}')
    mapping = _mapping(world)
    if damage == "directory":
        mapping.mkdir(parents=True)
    else:
        mapping.parent.mkdir(parents=True)
        mapping.write_text("[[login]]\nprofile = 3\n")
    done = _tool(world, "ecr", "configure-docker", "dev", HOST)
    assert done.returncode == 2
    _one_line_error(done, "registries.toml")
    assert config.read_text() == '{"auths": {}}'


def test_configure_docker_writes_nothing_when_registries_toml_cannot_be_written(
    world: dict[str, str],
) -> None:
    """registries.toml's directory on a read-only mount: exit 2, config.json untouched."""
    config = _seed_config(world, '{"auths": {}}')
    directory = _mapping(world).parent
    directory.mkdir(parents=True)
    setup = f"mount --bind -o ro {directory} {directory}"
    done = _tool(world, "ecr", "configure-docker", "dev", HOST, prefix=_in_namespace(setup))
    assert done.returncode == 2
    _one_line_error(done, "registries.toml")
    assert config.read_text() == '{"auths": {}}'


def test_configure_docker_checks_the_profile_before_writing(world: dict[str, str]) -> None:
    """A misspelt profile: exit 2 with "did you mean", and neither file is written."""
    config = _seed_config(world, '{"auths": {}}')
    done = _tool(world, "ecr", "configure-docker", "prdo", DEFAULT_ACCOUNT, "-r", "us-east-1")
    assert done.returncode == 2
    _one_line_error(done, "did you mean 'prod'?")
    assert config.read_text() == '{"auths": {}}'
    assert not _mapping(world).exists()


def test_registries_toml_symlink_is_written_through(world: dict[str, str]) -> None:
    """A registries.toml linked into a dotfiles directory stays a link; the target changes."""
    dotfiles = _home(world) / "dotfiles" / "registries.toml"
    dotfiles.parent.mkdir(parents=True)
    dotfiles.write_text("# mine\n")
    _mapping(world).parent.mkdir(parents=True)
    _mapping(world).symlink_to(dotfiles)
    done = _tool(world, "ecr", "configure-docker", "dev", HOST)
    assert done.returncode == 0, done.stderr
    assert _mapping(world).is_symlink()
    assert HOST in dotfiles.read_text() and dotfiles.read_text().startswith("# mine\n")


USER_MAPPING = """\
# my registries: prod first
[[login]]
profile = "prod"   # the production account
registries = ["210987654321.dkr.ecr.eu-west-1.amazonaws.com"]

# dev's own registry
[[login]]
profile = "dev"
"""


def test_comments_and_order_survive_configure_docker_and_remove(world: dict[str, str]) -> None:
    """The user's comments, order and layout stay through configure-docker and --remove."""
    mapping = _mapping(world)
    mapping.parent.mkdir(parents=True)
    mapping.write_text(USER_MAPPING)
    assert _tool(world, "ecr", "configure-docker", "dev", HOST).returncode == 0
    added = mapping.read_text()
    assert (
        USER_MAPPING.splitlines()[1:] == added.splitlines()[-len(USER_MAPPING.splitlines()) + 1 :]
    )
    assert "# my registries: prod first" in added and HOST in added
    done = _tool(world, "ecr", "configure-docker", "dev", HOST, "--remove")
    assert done.returncode == 0, done.stderr
    assert mapping.read_text() == USER_MAPPING


# --- item 8: a root run in another user's HOME --------------------------------------------


@pytest.fixture
def nobodys_home(world: dict[str, str]) -> Iterator[dict[str, str]]:
    """A HOME that belongs to uid 65534, with its AWS config, reachable by that user."""
    need_root("to act as the HOME's owner after a root run")
    need_program("setpriv", "util-linux")
    base = Path(tempfile.mkdtemp(prefix="runas-files-"))
    try:
        base.chmod(0o755)
        home = base / "home"
        (home / ".aws").mkdir(parents=True)
        shutil.copy(world["AWS_CONFIG_FILE"], home / ".aws" / "config")
        for path in [home, *home.rglob("*")]:
            os.chown(path, NOBODY, NOBODY)
        yield {
            **world,
            "HOME": str(home),
            "DOCKER_CONFIG": str(home / ".docker"),
            "AWS_CONFIG_FILE": str(home / ".aws" / "config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / ".aws" / "credentials"),
        }
    finally:
        shutil.rmtree(base, ignore_errors=True)


AS_NOBODY = ("setpriv", "--reuid", str(NOBODY), "--regid", str(NOBODY), "--clear-groups")


def test_root_run_leaves_the_users_files_the_users(
    nobodys_home: dict[str, str], moto: Moto
) -> None:
    """ecr login, configure-docker and the helper's get as root (sudo -E) in uid 65534's
    HOME: every file and directory made there is 65534's, and 65534's own ecr status, get
    and configure-docker work, with no warning."""
    from tests.test_profiles import _stand_ins

    env = nobodys_home
    stand_ins, _ = _stand_ins(moto)
    clients = {name: stand_ins[name] for name in ("PATH", "STAND_IN_LOG")}
    login = _tool({**env, **clients}, "ecr", "login", "dev", "-o", "json")
    assert login.returncode == 0, login.stdout + login.stderr
    _configured(env)
    home = _home(env)
    made = sorted(home.rglob("*"))
    assert _mapping(env) in made and _state_file(env) in made
    assert [str(p) for p in made if p.lstat().st_uid != NOBODY] == []
    other = ecr_host("100000000099", "us-west-2")
    done = _run(
        env,
        sys.executable,
        "-m",
        "runas_async",
        "ecr",
        "configure-docker",
        "dev",
        other,
        prefix=AS_NOBODY,
    )
    assert done.returncode == 0, done.stderr
    status = _tool(env, "ecr", "status", "-o", "json", prefix=AS_NOBODY)
    assert status.returncode == 0 and status.stderr == "", status.stderr
    rows = json.loads(status.stdout)["registries"]
    assert {r["registry"] for r in rows} == {HOST, other}, rows
    got = _helper(env, "get", HOST, prefix=AS_NOBODY)
    assert got.returncode == 0, got.stdout + got.stderr
    assert json.loads(got.stdout)["Secret"] == moto_password(DEFAULT_ACCOUNT)


# --- item 9: a foreign directory ------------------------------------------------------------


def test_foreign_cache_directory_is_refused(world: dict[str, str], tmp_path: Path) -> None:
    """Another user's world-writable cache directory with a planted .lock symlink: a root
    get still answers, creates nothing through the link and writes no cache there."""
    need_root("to plant another user's directory")
    cache = tmp_path / "cache" / "runas-async"
    cache.mkdir(parents=True)
    os.chown(cache, NOBODY, NOBODY)
    cache.chmod(0o777)
    planted = tmp_path / "planted"
    (cache / ".lock").symlink_to(planted)
    done = _helper({**world, "XDG_CACHE_HOME": str(cache.parent)}, "get", HOST)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["Secret"] == moto_password(DEFAULT_ACCOUNT)
    assert not planted.exists()
    assert sorted(p.name for p in cache.iterdir()) == [".lock"]


# --- item 10: a read-only or full HOME ------------------------------------------------------


def _in_namespace(setup: str) -> list[str]:
    """A private mount namespace where ``setup`` (sh) runs before the command."""
    need_root("to mount in a private namespace")
    need_program("unshare", "util-linux")
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        f'{setup} && exec "$@"',
        "sh",
    ]


def _full(directory: Path, first: str = "true") -> str:
    """sh: a 16 KiB tmpfs on ``directory``, ``first`` run there, then filled to the last byte."""
    fill = f"dd if=/dev/zero of={directory}/fill bs=64 2>/dev/null"
    return f"mount -t tmpfs -o size=16k tmpfs {directory} && {first} && ({fill}; true)"


@pytest.mark.parametrize("disk", ["read-only", "full"])
def test_helper_get_answers_when_its_cache_cannot_be_written(
    world: dict[str, str], tmp_path: Path, disk: str
) -> None:
    """The cache and state directories on a read-only mount or a full disk: get prints the
    token all the same (warnings on stderr, exit 0)."""
    xdg = tmp_path / "xdg"
    (xdg / "runas-async").mkdir(parents=True)
    setup = f"mount --bind -o ro {xdg} {xdg}" if disk == "read-only" else _full(xdg)
    env = {**world, "XDG_CACHE_HOME": str(xdg), "XDG_STATE_HOME": str(xdg)}
    done = _helper(env, "get", HOST, prefix=_in_namespace(setup))
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["Secret"] == moto_password(DEFAULT_ACCOUNT)
    assert "Traceback" not in done.stderr


def test_login_not_saved_on_a_full_disk_is_not_ok(world: dict[str, str], moto: Moto) -> None:
    """`ecr login` with config.json on a full disk: the login is failed with the reason,
    exit 1, never an "ok" row followed by exit 2."""
    from tests.test_profiles import _stand_ins

    stand_ins, _ = _stand_ins(moto)
    env = {**world, "PATH": stand_ins["PATH"], "STAND_IN_LOG": stand_ins["STAND_IN_LOG"]}
    docker = Path(world["DOCKER_CONFIG"])
    docker.mkdir(parents=True, exist_ok=True)
    setup = _full(docker, first=f"echo '{{}}' > {docker}/config.json")
    done = _tool(env, "ecr", "login", "dev", "-o", "json", prefix=_in_namespace(setup))
    assert done.returncode == 1, done.stdout + done.stderr
    (result,) = json.loads(done.stdout)["results"]
    assert result["status"] != "ok" and "not saved" in result["error"], result


# --- the rules themselves -------------------------------------------------------------------


def test_new_file_in_a_foreign_directory_takes_its_owner(tmp_path: Path) -> None:
    """atomic_write as root into a directory of uid 65534: the new file is 65534's."""
    need_root("to write into another user's directory")
    from runas_async.files import atomic_write

    tmp_path.chmod(0o755)
    os.chown(tmp_path, NOBODY, NOBODY)
    atomic_write(tmp_path / "f", b"x")
    assert (tmp_path / "f").stat().st_uid == NOBODY
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o600


@FUZZ
@given(HOSTILE, st.sampled_from(["store", "erase"]))
@example(b"[" * 60000, "store")
def test_fuzz_helper_stdin(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, verb: str
) -> None:
    """The helper's store and erase: any stdin gives an answer or one line, exit 0 or 1."""
    import io

    from runas_async import credhelper

    home = tmp_path_factory.mktemp("home")
    env = {"HOME": str(home), "AWS_CONFIG_FILE": str(home / "none")}
    out = io.StringIO()
    text = data.decode("utf-8", "replace")
    code = credhelper.main([verb], stdin=io.StringIO(text), stdout=out, env=env)
    assert code in (0, 1)
    assert len(out.getvalue().splitlines()) <= 1


# --- append_user: GitHub Actions' output files ------------------------------------------------


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _loop(path: Path) -> Path:
    path.symlink_to(path.name)
    return path


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        pytest.param(lambda p: p / "missing" / "out", "No such file or directory", id="no-dir"),
        pytest.param(lambda p: p, "it is a directory", id="directory"),
        pytest.param(lambda p: _fifo(p / "fifo"), "not a regular file", id="fifo-no-reader"),
        pytest.param(lambda p: _loop(p / "loop"), "a symlink loop", id="symlink-loop"),
    ],
)
def test_append_user_refuses_with_one_line_naming_the_path(
    tmp_path: Path, make: object, reason: str
) -> None:
    """Appending to a missing directory, a directory, a FIFO nobody reads (never a hang) or a
    symlink loop is one ConfigError line naming what and where."""
    path = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(RunasError) as caught:
        files.append_user(path, b"x=1\n", what="$GITHUB_OUTPUT")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"cannot write $GITHUB_OUTPUT {path}: ") and reason in message


def test_append_user_appends_through_a_symlink_and_bounds_what_it_adds(tmp_path: Path) -> None:
    """A new file is made, an existing one kept and added to, a symlink followed (the link
    stays); more than the limit is refused before anything is written."""
    real, link = tmp_path / "real", tmp_path / "link"
    link.symlink_to(real.name)
    files.append_user(link, b"a=1\n", what="$GITHUB_OUTPUT")
    files.append_user(link, b"b=2\n", what="$GITHUB_OUTPUT")
    assert link.is_symlink() and real.read_bytes() == b"a=1\nb=2\n"
    with pytest.raises(RunasError, match="more than 4 bytes"):
        files.append_user(real, b"c=33\n", what="$GITHUB_OUTPUT", limit=4)
    assert real.read_bytes() == b"a=1\nb=2\n"


def test_append_user_new_file_in_a_foreign_directory_takes_its_owner(tmp_path: Path) -> None:
    """As root into a directory of uid 65534 (a sudo run): the new file is 65534's."""
    need_root("to write into another user's directory")
    tmp_path.chmod(0o755)
    os.chown(tmp_path, NOBODY, NOBODY)
    files.append_user(tmp_path / "summary.md", b"# x\n", what="$GITHUB_STEP_SUMMARY")
    assert (tmp_path / "summary.md").stat().st_uid == NOBODY


@pytest.mark.parametrize("durable", [True, False])
def test_atomic_write_syncs_unless_told_the_file_may_be_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, durable: bool
) -> None:
    """Every file is fsynced before its rename; only a cache whose loss costs nothing (the
    regex cache) asks not to be."""
    synced: list[int] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    assert files.atomic_write(tmp_path / "f", b"data", durable=durable)
    assert (tmp_path / "f").read_bytes() == b"data"
    assert bool(synced) is durable
