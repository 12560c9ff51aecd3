"""docker-credential-runas-async: docker's helper protocol, the profile map, the token cache,
MFA without a terminal, and configure-docker. Against moto (tokens made to expire in the
future by a rewriting proxy: moto's expiresAt is in 2015)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from runas_async.auth.helpercache import FILE_NAME
from runas_async.core.endpoints import registry_host
from runas_async.core.errors import TokenError
from runas_async.core.models import Token
from runas_async.core.places import cache_dir
from runas_async.credhelper import (
    MISSING_URL,
    MISSING_USERNAME,
    NOT_FOUND,
    PROG,
    USAGE,
    Helper,
    main,
)
from tests.faults import ApiFaultProxy
from tests.missing import need_program
from tests.oci import write_oci_layout
from tests.sandbox import DEFAULT_ACCOUNT, STATIC_KEYS, Moto, Sandbox, ecr_host, moto_password

PROD = "210987654321"
PROFILES = {
    "dev": {"region": "us-east-1", **STATIC_KEYS},
    "prod": {
        "region": "eu-west-1",
        "role_arn": f"arn:aws:iam::{PROD}:role/x",
        "source_profile": "dev",
    },
}
MAPPING = """
[[login]]
profile = "prod"
registries = ["*.dkr.ecr.eu-west-1.amazonaws.com", "public.ecr.aws"]

[[login]]
profile = "dev"
"""
HOUR = 3600.0


@pytest.fixture
def world(moto: Moto) -> Iterator[dict[str, str]]:
    """moto behind a proxy that gives tokens 12 hours, profiles dev and prod, the mapping."""
    moto.write_aws_config(PROFILES)
    mapping = moto.workdir / "registries.toml"
    mapping.write_text(MAPPING)
    with ApiFaultProxy(moto.moto_url, expires_in=12 * HOUR) as proxy:
        yield moto.env(AWS_ENDPOINT_URL=proxy.url, RUNAS_ASYNC_REGISTRIES=str(mapping))


def _helper(verb: str, text: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runas_async.credhelper", verb],
        input=text,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# --- the protocol -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("verb", "text", "code", "out"),
    [
        pytest.param("get", "docker.io", 1, NOT_FOUND, id="get-other-registry"),
        pytest.param("get", "https://index.docker.io/v1/", 1, NOT_FOUND, id="get-docker-hub"),
        pytest.param("get", "", 1, MISSING_URL, id="get-no-url"),
        pytest.param("erase", ecr_host(PROD, "eu-west-1"), 0, "", id="erase-ecr-ignored"),
        pytest.param(
            "store",
            json.dumps(
                {"ServerURL": ecr_host(PROD, "eu-west-1"), "Username": "AWS", "Secret": "x"}
            ),
            0,
            "",
            id="store-ecr-ignored",
        ),
        pytest.param(
            "store",
            json.dumps({"ServerURL": "ghcr.io", "Username": "u", "Secret": "x"}),
            1,
            "serves Amazon ECR registries only",
            id="store-other-refused",
        ),
        pytest.param("erase", "ghcr.io", 1, "serves Amazon ECR registries only", id="erase-other"),
        pytest.param(
            "frobnicate",
            "",
            1,
            "docker-credential-runas-async: unknown action: frobnicate",
            id="verb",
        ),
    ],
)
def test_protocol(
    world: dict[str, str], verb: str, text: str, code: int, out: str, moto: Moto
) -> None:
    """Each verb's exit status and stdout, with the texts docker's client code looks for."""
    done = _helper(verb, text, world)
    assert done.returncode == code, done.stdout + done.stderr
    assert done.stdout.strip() == out or (out and out in done.stdout)
    assert moto.moto_calls() == []  # nothing here needs AWS


class _Unread(io.StringIO):
    """stdin that must not be read (docker's helpers answer these before reading it)."""

    def read(self, size: int | None = -1) -> str:
        raise AssertionError("stdin read")


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        pytest.param([], 1, id="no-action"),
        pytest.param(["-h"], 0, id="-h"),
        pytest.param(["--help"], 0, id="--help"),
        pytest.param(["get", "extra"], 1, id="two-actions"),
    ],
)
def test_usage_names_every_action(argv: list[str], code: int) -> None:
    """No action, -h, --help or too many: docker-credential-helpers' usage line on stdout,
    exit 0 for help and 1 otherwise, stdin not read."""
    out = io.StringIO()
    assert main(argv, _Unread(), out, env={}) == code
    assert out.getvalue() == USAGE + "\n"
    assert all(verb in USAGE for verb in ("get", "store", "erase", "list", "version"))


@pytest.mark.parametrize("argv", [["version"], ["--version"], ["-v"]])
def test_version_answers_whatever_the_aws_config(argv: list[str], tmp_path: Path) -> None:
    """version (and --version, -v) print the name and version, even with an AWS config
    that does not parse."""
    broken = tmp_path / "config"
    broken.write_text("[profile x\nregion = \x00")
    out = io.StringIO()
    env = {"HOME": str(tmp_path), "AWS_CONFIG_FILE": str(broken)}
    assert main(argv, _Unread(), out, env=env) == 0
    assert re.fullmatch(rf"{PROG} \d+\.\d+\S*\n", out.getvalue()), out.getvalue()


@pytest.mark.parametrize(
    ("argv", "text"),
    [
        pytest.param(["store"], '{"ServerURL": "ghcr.io", "Username": "u"}', id="store-other"),
        pytest.param(["frobnicate"], "", id="unknown-action"),
    ],
)
def test_errors_name_the_helper_once(
    argv: list[str], text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An error on stderr starts with the helper's name, once."""
    out = io.StringIO()
    assert main(argv, io.StringIO(text), out, env={"HOME": str(tmp_path)}) == 1
    err = capsys.readouterr().err
    assert err.startswith(PROG) and err.count(PROG) == 1, err
    assert out.getvalue().count(PROG) <= 1


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        pytest.param({"ServerURL": "", "Username": "AWS", "Secret": "x"}, MISSING_URL, id="url"),
        pytest.param(
            {"ServerURL": "h", "Username": "", "Secret": "x"}, MISSING_USERNAME, id="user"
        ),
        pytest.param({"ServerURL": "h", "Secret": "x"}, MISSING_USERNAME, id="no-user-key"),
    ],
)
def test_store_needs_a_server_url_and_a_username(
    doc: dict[str, str], message: str, tmp_path: Path
) -> None:
    """store checks the credentials as docker-credential-helpers' Serve does: exit 1 with
    its texts."""
    doc = {**doc, "ServerURL": doc["ServerURL"].replace("h", ecr_host(PROD, "eu-west-1"))}
    out = io.StringIO()
    assert main(["store"], io.StringIO(json.dumps(doc)), out, env={"HOME": str(tmp_path)}) == 1
    assert out.getvalue() == message + "\n"


@pytest.mark.parametrize("text", ["{not json", "[1]", "[" * 60_000], ids=["bad", "list", "deep"])
def test_store_of_what_is_not_a_json_object_is_one_line(text: str, tmp_path: Path) -> None:
    """store given anything but a JSON object: one line saying so, exit 1, no traceback."""
    out = io.StringIO()
    assert main(["store"], io.StringIO(text), out, env={"HOME": str(tmp_path)}) == 1
    assert out.getvalue() == "store expects the credentials as JSON on stdin\n"


HOST = ecr_host(PROD, "eu-west-1")


@pytest.mark.parametrize(
    ("server_url", "host"),
    [
        pytest.param(HOST, HOST, id="host"),
        pytest.param(f"https://{HOST}", HOST, id="https"),
        pytest.param(f"https://{HOST}/v2/", HOST, id="https-path"),
        pytest.param(f"http://{HOST}", HOST, id="http"),
        pytest.param(f"{HOST}/team/app:1", HOST, id="host-path"),
        pytest.param(f"{HOST}:443", HOST, id="default-port"),
        pytest.param(f"https://{HOST}:443/v2/", HOST, id="https-default-port"),
        pytest.param(f"{HOST}.", HOST, id="trailing-dot"),
        pytest.param(f"{HOST}.:443", HOST, id="trailing-dot-and-port"),
        pytest.param(f"{HOST}:5000", f"{HOST}:5000", id="other-port-kept"),
        pytest.param("https://index.docker.io/v1/", "index.docker.io", id="docker-hub"),
        pytest.param("https://[::1", "https:", id="unparsable-url-cut-at-slash"),
    ],
)
def test_registry_host_as_dockers_convert_to_hostname(server_url: str, host: str) -> None:
    """docker/cli's ConvertToHostname, plus the default port and a trailing dot dropped."""
    assert registry_host(server_url) == host


@pytest.mark.parametrize(
    "server_url",
    [f"{HOST}:443", f"{HOST}.", f"http://{HOST}", f"https://{HOST}/v2/", f"{HOST}/team/app:1"],
)
def test_get_serves_every_spelling_of_the_registry(world: dict[str, str], server_url: str) -> None:
    """Each way docker or skopeo may name the registry gets its token (the ServerURL echoed)."""
    done = _helper("get", server_url, world)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout) == {
        "ServerURL": server_url,
        "Username": "AWS",
        "Secret": moto_password(PROD),
    }


def test_get_serves_each_registry_with_its_mapped_profile(
    world: dict[str, str], moto: Moto
) -> None:
    """A pattern sends eu-west-1 to prod (its role's token); a table with no registries
    serves dev's own registry (its account learnt once from STS)."""
    done = _helper("get", f"https://{ecr_host(PROD, 'eu-west-1')}", world)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout) == {
        "ServerURL": f"https://{ecr_host(PROD, 'eu-west-1')}",
        "Username": "AWS",
        "Secret": moto_password(PROD),
    }
    own = _helper("get", ecr_host(DEFAULT_ACCOUNT, "us-east-1"), world)
    assert json.loads(own.stdout)["Secret"] == moto_password(DEFAULT_ACCOUNT)
    assert moto.calls()["GetAuthorizationToken"] == 2


def test_list_names_the_concrete_hosts(world: dict[str, str], moto: Moto) -> None:
    """list: the hosts registries.toml names outright, each with username AWS."""
    done = _helper("list", "", world)
    assert done.returncode == 0
    assert json.loads(done.stdout) == {"public.ecr.aws": "AWS"}


# --- the cache ----------------------------------------------------------------------------


def test_warm_get_reuses_the_token_and_imports_nothing_heavy(
    world: dict[str, str], moto: Moto
) -> None:
    """A second get within half the token's life makes no request and loads neither
    botocore nor aiohttp."""
    host = ecr_host(PROD, "eu-west-1")
    assert _helper("get", host, world).returncode == 0
    moto.clear_calls()
    code = (
        "import io, sys\n"
        "from runas_async.credhelper import main\n"
        f"rc = main(['get'], io.StringIO({host!r}))\n"
        "heavy = [m for m in ('botocore', 'aiobotocore', 'aiohttp', 'rich') if m in sys.modules]\n"
        "print(rc, heavy, file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=world, capture_output=True, text=True, check=False
    )
    assert done.stderr.strip() == "0 []", done.stderr
    assert json.loads(done.stdout)["Secret"] == moto_password(PROD)
    assert moto.moto_calls() == []


def test_warm_get_reads_the_token_cache_once(world: dict[str, str], moto: Moto) -> None:
    """A warm get opens the cache file once (an audit hook counts every open of it)."""
    host = ecr_host(PROD, "eu-west-1")
    assert _helper("get", host, world).returncode == 0
    code = (
        "import io, os, sys\n"
        "opens = []\n"
        "def hook(event, args):\n"
        "    if event == 'open' and os.fsdecode(str(args[0])).endswith(sys.argv[1]):\n"
        "        opens.append(args[0])\n"
        "sys.addaudithook(hook)\n"
        "from runas_async.credhelper import main\n"
        f"rc = main(['get'], io.StringIO({host!r}))\n"
        "print(rc, len(opens), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, FILE_NAME],
        env=world,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.stderr.strip() == "0 1", done.stderr
    assert json.loads(done.stdout)["Secret"] == moto_password(PROD)


def test_warm_get_follows_a_changed_aws_profile(world: dict[str, str], moto: Moto) -> None:
    """No table in registries.toml: the default credentials answer, so AWS_PROFILE chooses
    them; set to another profile, the next get is that profile's token, not the last one's."""
    env = {**world, "RUNAS_ASYNC_REGISTRIES": str(moto.workdir / "none.toml")}
    host = ecr_host(PROD, "eu-west-1")
    for profile, account in (("dev", DEFAULT_ACCOUNT), ("prod", PROD), ("dev", DEFAULT_ACCOUNT)):
        done = _helper("get", host, {**env, "AWS_PROFILE": profile})
        assert done.returncode == 0, done.stdout + done.stderr
        assert json.loads(done.stdout)["Secret"] == moto_password(account), profile


def test_twenty_gets_at_once_make_one_token_request(world: dict[str, str], moto: Moto) -> None:
    """20 helpers started together for one registry: one AssumeRole, one token request."""
    host = ecr_host(PROD, "eu-west-1")
    with contextlib.ExitStack() as stack:
        procs = [
            stack.enter_context(
                subprocess.Popen(
                    [sys.executable, "-m", "runas_async.credhelper", "get"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env=world,
                    text=True,
                )
            )
            for _ in range(20)
        ]
        for p in procs:  # every helper has its request before any answers
            assert p.stdin is not None
            p.stdin.write(host)
            p.stdin.close()
        outs = []
        for p in procs:  # small outputs: reading one pipe after the other cannot block
            assert p.stdout is not None and p.stderr is not None
            outs.append((p.stdout.read(), p.stderr.read()))
            p.wait(timeout=120)
    assert all(p.returncode == 0 for p in procs), outs
    assert {json.loads(out)["Secret"] for out, _ in outs} == {moto_password(PROD)}
    assert moto.calls()["GetAuthorizationToken"] == 1, moto.calls()
    assert moto.calls()["AssumeRole"] == 1


class _Fetches:
    """A token source for the cache tests: counts calls, fails when told to."""

    def __init__(self, clock: list[float]) -> None:
        self.clock = clock
        self.calls = 0
        self.fail = False

    def __call__(self, profile: str | None, region: str, public: bool, env: object) -> Token:
        self.calls += 1
        if self.fail:
            raise TokenError("ecr GetAuthorizationToken: ServiceUnavailable")
        return Token("AWS", f"pw-{self.calls}", expires_at=self.clock[0] + 12 * HOUR)


def _cache_helper(moto: Moto, clock: list[float]) -> tuple[Helper, _Fetches]:
    moto.write_aws_config(PROFILES)
    fetches = _Fetches(clock)
    helper = Helper(moto.env(), clock=lambda: clock[0], fetch=fetches)
    return helper, fetches


def _get(helper: Helper) -> tuple[int, str]:
    out = io.StringIO()
    code = helper.serve("get", ecr_host(DEFAULT_ACCOUNT, "us-west-2"), out)
    return code, out.getvalue()


def test_half_life_then_refresh(moto: Moto) -> None:
    """Reused until half its 12 hours are gone, then fetched anew."""
    clock = [1_000_000.0]
    helper, fetches = _cache_helper(moto, clock)
    assert _get(helper)[0] == 0
    clock[0] += 5.9 * HOUR
    assert json.loads(_get(helper)[1])["Secret"] == "pw-1"
    clock[0] += 0.2 * HOUR
    assert json.loads(_get(helper)[1])["Secret"] == "pw-2"
    assert fetches.calls == 2


def test_failed_refresh_keeps_a_valid_token_but_never_an_expired_one(moto: Moto) -> None:
    """Past half-life a failed refresh still answers with the valid token; once it has
    expired, a failed refresh fails (amazon-ecr-credential-helper #679 returned it)."""
    clock = [1_000_000.0]
    helper, fetches = _cache_helper(moto, clock)
    assert _get(helper)[0] == 0
    fetches.fail = True
    clock[0] += 8 * HOUR
    assert json.loads(_get(helper)[1])["Secret"] == "pw-1"
    clock[0] += 4.5 * HOUR
    code, out = _get(helper)
    assert code == 1
    assert "pw-1" not in out
    assert "ServiceUnavailable" in out


def test_a_changed_profile_misses_the_cache(moto: Moto) -> None:
    """The token is keyed by a fingerprint of the profile's settings."""
    clock = [1_000_000.0]
    helper, fetches = _cache_helper(moto, clock)
    _get(helper)
    moto.write_aws_config({**PROFILES, "default": {"region": "us-west-2"}})
    helper2 = Helper(moto.env(), clock=lambda: clock[0], fetch=fetches)
    _get(helper2)
    assert fetches.calls == 2


@pytest.mark.parametrize("damage", ["corrupt", "mode-0644", "symlink", "foreign-owner"])
def test_untrusted_cache_files_are_ignored(moto: Moto, damage: str) -> None:
    """A corrupt, group-readable, symlinked or foreign-owned cache is a miss, never fatal,
    and a fresh token replaces it."""
    clock = [1_000_000.0]
    helper, fetches = _cache_helper(moto, clock)
    _get(helper)
    path = helper.cache.path
    if damage == "corrupt":
        path.write_text("{not json")
    elif damage == "mode-0644":
        path.chmod(0o644)
    elif damage == "symlink":
        target = path.with_name("elsewhere.json")
        path.rename(target)
        path.symlink_to(target)
    else:
        if os.geteuid() != 0:
            from tests.missing import need_root

            need_root("to give the cache file another owner")
        os.chown(path, 4321, 4321)
    code, out = _get(helper)
    assert code == 0, out
    assert json.loads(out)["Secret"] == "pw-2"
    assert not path.is_symlink()
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_cache_file_is_private(world: dict[str, str], moto: Moto) -> None:
    """The cache holds tokens: 0600 in a 0700 directory."""
    assert _helper("get", ecr_host(PROD, "eu-west-1"), world).returncode == 0
    path = Path(world["HOME"]) / ".cache" / "runas-async" / FILE_NAME
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"


# --- MFA ----------------------------------------------------------------------------------

MFA = "arn:aws:iam::123456789012:mfa/me"


def test_mfa_profile_without_a_session_fails_fast_and_then_works_after_ecr_login(
    world: dict[str, str], moto: Moto
) -> None:
    """No terminal, no cached session: one line saying to run `runas-async ecr login` (no
    hang). After `ecr login --mfa-code` seeded the session, get needs no prompt."""
    moto.write_aws_config(
        {
            **PROFILES,
            "mfa": {
                "region": "eu-west-1",
                "role_arn": f"arn:aws:iam::{PROD}:role/x",
                "source_profile": "dev",
                "mfa_serial": MFA,
            },
        }
    )
    Path(world["RUNAS_ASYNC_REGISTRIES"]).write_text(
        '[[login]]\nprofile = "mfa"\nregistries = ["*.dkr.ecr.eu-west-1.amazonaws.com"]\n'
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "runas_async.credhelper", "get"],
        input=ecr_host(PROD, "eu-west-1"),
        env=world,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        start_new_session=True,  # no controlling terminal, as under docker
    )
    assert done.returncode == 1
    assert "runas-async ecr login mfa" in done.stdout
    assert time.monotonic() - started < 20
    seeded = subprocess.run(
        [sys.executable, "-m", "runas_async", "ecr", "password", "mfa", "--mfa-code", "123456"],
        env=world,
        capture_output=True,
        text=True,
        check=False,
        start_new_session=True,
    )
    assert seeded.returncode == 0, seeded.stderr
    again = _helper("get", ecr_host(PROD, "eu-west-1"), world)
    assert again.returncode == 0, again.stdout
    assert json.loads(again.stdout)["Secret"] == moto_password(PROD)


# --- configure-docker ---------------------------------------------------------------------


def test_configure_docker_round_trip(world: dict[str, str], moto: Moto) -> None:
    """configure-docker writes credHelpers and the mapping, keeping every other entry;
    --remove takes exactly its own entries out again; get then uses the named profile."""
    config = moto.docker_config / "config.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    before = {"auths": {"ghcr.io": {"auth": "dTpw"}}, "credHelpers": {"gcr.io": "gcloud"}}
    config.write_text(json.dumps(before))
    host = ecr_host(DEFAULT_ACCOUNT, "us-west-2")
    run = [sys.executable, "-m", "runas_async", "ecr", "configure-docker"]
    done = subprocess.run([*run, "dev", host], env=world, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    doc = json.loads(config.read_text())
    assert doc["credHelpers"] == {"gcr.io": "gcloud", host: "runas-async"}
    assert doc["auths"] == before["auths"]
    got = _helper("get", host, world)
    assert json.loads(got.stdout)["Secret"] == moto_password(DEFAULT_ACCOUNT)
    done = subprocess.run(
        [*run, "dev", host, "--remove"], env=world, capture_output=True, text=True
    )
    assert done.returncode == 0
    assert json.loads(config.read_text()) == before
    assert host not in Path(world["RUNAS_ASYNC_REGISTRIES"]).read_text()


# --- a real docker-less client ------------------------------------------------------------


def test_skopeo_uses_the_helper_with_a_profile_per_registry(sb: Sandbox, tmp_path: Path) -> None:
    """skopeo (no docker) copies an image to two registries through credHelpers: each
    registry accepts only its own account's token, so each needs its mapped profile."""
    skopeo = need_program("skopeo", "apt-get install skopeo")
    prod_host, dev_host = ecr_host(PROD, "eu-west-1"), ecr_host(DEFAULT_ACCOUNT, "us-west-2")
    sb.write_aws_config(PROFILES)
    sb.add_registries(
        [(prod_host, moto_password(PROD)), (dev_host, moto_password(DEFAULT_ACCOUNT))]
    )
    mapping = tmp_path / "registries.toml"
    mapping.write_text(
        f'[[login]]\nprofile = "prod"\nregistries = ["{prod_host}"]\n\n'
        f'[[login]]\nprofile = "dev"\nregistries = ["{dev_host}"]\n'
    )
    sb.docker_config.mkdir(parents=True, exist_ok=True)
    (sb.docker_config / "config.json").write_text(
        json.dumps({"credHelpers": {prod_host: "runas-async", dev_host: "runas-async"}})
    )
    image = write_oci_layout(tmp_path / "image")
    with ApiFaultProxy(sb.moto_url, expires_in=12 * HOUR) as proxy:
        env = sb.env(
            AWS_ENDPOINT_URL=proxy.url,
            RUNAS_ASYNC_REGISTRIES=str(mapping),
            PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            REGISTRY_AUTH_FILE=str(sb.docker_config / "config.json"),
        )
        for host in (prod_host, dev_host):
            done = sb.run(
                [
                    skopeo,
                    "copy",
                    "--dest-tls-verify=false",
                    f"oci:{image}:latest",
                    f"docker://{host}/team/app:1",
                ],
                env=env,
            )
            assert done.returncode == 0, done.stdout + done.stderr
        back = sb.run(
            [
                skopeo,
                "copy",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
                f"docker://{prod_host}/team/app:1",
                f"docker://{dev_host}/team/copy:1",
            ],
            env=env,
        )
        assert back.returncode == 0, back.stdout + back.stderr
    assert "auths" not in json.loads((sb.docker_config / "config.json").read_text())


def test_helper_tokens_show_in_ecr_status(world: dict[str, str], moto: Moto) -> None:
    """A token the helper fetched is a login record: `ecr status` lists its registry with
    the helper, the profile and the time left."""
    host = ecr_host(PROD, "eu-west-1")
    run = [sys.executable, "-m", "runas_async", "ecr"]
    configured = subprocess.run(
        [*run, "configure-docker", "prod", PROD], env=world, capture_output=True, text=True
    )
    assert configured.returncode == 0, configured.stderr
    assert _helper("get", host, world).returncode == 0
    done = subprocess.run([*run, "status", "-o", "json"], env=world, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)["registries"]
    assert (row["registry"], row["helper"], row["profile"]) == (host, "runas-async", "prod")
    assert row["ours"] is True
    assert 11 * HOUR < row["expires_in"] <= 12 * HOUR


def test_ecr_status_labels_the_helpers_rows_with_its_tokens_time_left(
    world: dict[str, str], moto: Moto
) -> None:
    """credHelpers entries that send a registry to runas-async are the helper's rows: before
    any pull "no token yet"; after, the time left of the token the helper answered with, also
    for a registry served from a token the helper had cached for another one."""
    other = "111111111111"
    hosts = sorted([ecr_host(PROD, "eu-west-1"), ecr_host(other, "eu-west-1")])
    run = [sys.executable, "-m", "runas_async", "ecr"]
    configured = subprocess.run(
        [*run, "configure-docker", "prod", PROD, other], env=world, capture_output=True, text=True
    )
    assert configured.returncode == 0, configured.stderr
    before = subprocess.run([*run, "status"], env=world, capture_output=True, text=True)
    assert before.returncode == 0, before.stderr
    rows = [line.split() for line in before.stdout.splitlines()[1:]]
    assert [row[0] for row in rows] == hosts
    for row in rows:
        assert " ".join(row[1:]) == "credHelpers (runas-async) runas-async helper no token yet"
    for host in hosts:
        assert _helper("get", host, world).returncode == 0
    done = subprocess.run([*run, "status", "-o", "json"], env=world, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    got = {row["registry"]: row for row in json.loads(done.stdout)["registries"]}
    assert sorted(got) == hosts
    for row in got.values():
        assert (row["helper"], row["profile"], row["ours"]) == ("runas-async", "prod", True)
        assert row["client"] == "docker-credential-runas-async"
        assert (row["state"], 11 * HOUR < row["expires_in"] <= 12 * HOUR) == ("valid", True)
    text = subprocess.run([*run, "status"], env=world, capture_output=True, text=True).stdout
    for line in text.splitlines()[1:]:
        assert "runas-async helper (prod)" in line and re.search(r"1[01]h\d\dm left$", line)
    cache = cache_dir(world) / FILE_NAME
    doc = json.loads(cache.read_text())
    for token in doc["tokens"].values():
        token["expires_at"] = time.time() - 60
    cache.write_text(json.dumps(doc))
    ended = subprocess.run([*run, "status"], env=world, capture_output=True, text=True)
    assert ended.returncode == 0, ended.stdout  # nothing to do: the next pull renews it
    assert ended.stdout.count("expired, renewed at next pull") == 2, ended.stdout


def test_configure_docker_for_podman_writes_containers_auth_json(
    world: dict[str, str], moto: Moto
) -> None:
    """--client podman: the credHelpers entry goes into containers' auth.json (as podman,
    buildah and skopeo read it), not docker's config.json."""
    auth = moto.workdir / "containers-auth.json"
    env = {**world, "REGISTRY_AUTH_FILE": str(auth)}
    host = ecr_host(PROD, "eu-west-1")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "runas_async",
            "ecr",
            "configure-docker",
            "prod",
            PROD,
            "-c",
            "podman",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(auth.read_text()) == {"credHelpers": {host: "runas-async"}}
    assert not (moto.docker_config / "config.json").exists()
    assert _helper("get", host, env).returncode == 0  # as skopeo asks it
    status = [sys.executable, "-m", "runas_async", "ecr", "status", "-c", "podman", "-o", "json"]
    listed = subprocess.run(status, env=env, capture_output=True, text=True)
    (row,) = json.loads(listed.stdout)["registries"]
    assert (row["registry"], row["ours"], row["profile"]) == (host, True, "prod")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        pytest.param(
            '[[login]]\nprofile = "p"\nregistries = ["a*b.dkr.ecr.x"]',
            "registries[1]",
            id="pattern",
        ),
        pytest.param('[[login]]\nprofile = "p"\nroles = []', "unknown key 'roles'", id="key"),
        pytest.param(
            '[[login]]\nprofile = "p"\nregion = "xx-nowhere-1"', "'xx-nowhere-1'", id="region"
        ),
    ],
)
def test_mapping_is_checked_as_login_files_are(text: str, needle: str) -> None:
    """registries.toml gets --file's checks (loginfile.py), with patterns allowed."""
    from runas_async.core.errors import UsageError
    from runas_async.core.mapping import parse_mapping
    from runas_async.core.partitions import load_partitions

    with pytest.raises(UsageError, match=re.escape(needle)):
        parse_mapping(text, "registries.toml", load_partitions())
    assert parse_mapping("", "registries.toml", load_partitions()) == []


_RECORDER = """#!{python}
import json, subprocess, sys
text = sys.stdin.read()
done = subprocess.run([{python!r}, "-m", "runas_async.credhelper", *sys.argv[1:]],
                      input=text, capture_output=True, text=True)
with open({log!r}, "a") as log:
    log.write(json.dumps([sys.argv[1:], text, done.returncode]) + "\\n")
sys.stdout.write(done.stdout)
sys.stderr.write(done.stderr)
sys.exit(done.returncode)
"""


def test_docker_and_skopeo_spellings_of_a_registry_are_served(sb: Sandbox, tmp_path: Path) -> None:
    """The real docker CLI and skopeo, sent to the registry as HOST, HOST:443, HOST. and
    https://HOST: every server URL they hand the helper (recorded on the way) is answered."""
    docker = need_program("docker", "the docker CLI")
    skopeo = need_program("skopeo", "apt-get install skopeo")
    sb.write_aws_config(PROFILES)
    sb.add_registries([(HOST, moto_password(PROD))])
    mapping = tmp_path / "registries.toml"
    mapping.write_text(MAPPING)
    log = tmp_path / "helper.log"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    recorder = bin_dir / "docker-credential-runas-async"
    recorder.write_text(_RECORDER.format(python=sys.executable, log=str(log)))
    recorder.chmod(0o755)
    spellings = [HOST, f"{HOST}:443", f"{HOST}."]
    sb.docker_config.mkdir(parents=True, exist_ok=True)
    (sb.docker_config / "config.json").write_text(
        json.dumps({"credHelpers": dict.fromkeys(spellings, "runas-async")})
    )
    sent: dict[tuple[str, str], list[tuple[str, str, int]]] = {}
    with ApiFaultProxy(sb.moto_url, expires_in=12 * HOUR) as proxy:
        env = sb.env(
            AWS_ENDPOINT_URL=proxy.url,
            RUNAS_ASYNC_REGISTRIES=str(mapping),
            PATH=f"{bin_dir}:{os.environ['PATH']}",
            REGISTRY_AUTH_FILE=str(sb.docker_config / "config.json"),
        )
        for name in spellings:
            for client, argv in (
                ("docker", [docker, "login", name]),
                ("skopeo", [skopeo, "inspect", "--tls-verify=false", f"docker://{name}/a:1"]),
            ):
                log.unlink(missing_ok=True)
                sb.run(argv, env=env)
                lines = log.read_text().splitlines() if log.exists() else []
                sent[client, name] = [
                    (verb[0], text.strip(), code) for verb, text, code in map(json.loads, lines)
                ]
    for name in spellings:  # docker asks for the spelling it was given, and stores it
        assert ("get", name, 0) in sent["docker", name], sent
        assert any(
            v == "store" and json.loads(t)["ServerURL"] == name for v, t, _ in sent["docker", name]
        )
    for name in (HOST, f"{HOST}:443"):  # skopeo asks the same way (a trailing dot: not at all)
        assert ("get", name, 0) in sent["skopeo", name], sent
    assert all(code == 0 for calls in sent.values() for _, _, code in calls), sent
