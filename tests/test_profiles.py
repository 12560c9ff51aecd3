"""Several profiles, --file, ECR Public, other login clients, `ecr password` and `ecr logout`.

Real moto, real registries and the real docker CLI where the user meets them;
stand-in scripts for the clients this machine does not have (podman, nerdctl,
finch, helm), which check the argv and stdin they are given.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.ecr_public import ECR_PUBLIC_PASSWORD, TARGET
from tests.missing import need_program
from tests.sandbox import STATIC_KEYS, Moto, Sandbox, docker_auths, ecr_host, moto_password

DEV, PROD = "123456789012", "210987654321"

PROFILES: Mapping[str, Mapping[str, str]] = {
    "dev": {"region": "us-east-2", **STATIC_KEYS},
    "dev-copy": {"region": "us-east-2", **STATIC_KEYS},  # same credentials as dev
    "prod": {
        "role_arn": f"arn:aws:iam::{PROD}:role/deploy",
        "source_profile": "dev",
        "region": "us-west-2",
    },
}


def _setup(sb: Moto, registries: Mapping[str, str] | None = None) -> None:
    sb.write_aws_config(PROFILES)
    if registries:
        assert isinstance(sb, Sandbox), "registries need the sandbox"
        sb.add_registries(list(registries.items()))


def _ok_hosts(stdout: str) -> set[str]:
    return {line.split()[1] for line in stdout.splitlines() if line.startswith("ok ")}


# -- several profiles, --file


def test_several_profiles_each_own_registry(sb: Sandbox) -> None:
    """-p dev -p prod logs into each profile's own registry in one run."""
    hosts = {
        ecr_host(DEV, "us-east-2"): moto_password(DEV),
        ecr_host(PROD, "us-west-2"): moto_password(PROD),
    }
    _setup(sb, hosts)
    done = sb.run_tool(["ecr", "login", "-p", "dev", "-p", "prod"])
    assert done.returncode == 0, done.stderr
    assert sb.docker_auths() == {h: f"AWS:{pw}" for h, pw in hosts.items()}
    assert sb.calls("ecr")["GetAuthorizationToken"] == 2
    # prod is a role: its account is its role_arn's, so only dev needs GetCallerIdentity
    assert sb.calls("sts")["GetCallerIdentity"] == 1


def test_profiles_with_same_credentials_share_token_requests(sb: Sandbox) -> None:
    """Two profiles with the same keys in one region make one GetAuthorizationToken."""
    a, b = ecr_host(DEV, "us-east-2"), ecr_host("444400000009", "us-east-2")
    _setup(sb, {a: moto_password(DEV), b: moto_password(DEV)})
    file = sb.workdir / "logins.toml"
    file.write_text(
        f'[[login]]\nprofile = "dev"\nregistries = ["{a}"]\n\n'
        f'[[login]]\nprofile = "dev-copy"\nregistries = ["{b}"]\n'
    )
    done = sb.run_tool(["ecr", "login", "--file", str(file)])
    assert done.returncode == 0, done.stderr
    assert set(sb.docker_auths()) == {a, b}
    assert sb.calls("ecr")["GetAuthorizationToken"] == 1


def test_file_from_stdin_with_regions_and_duplicates(sb: Sandbox) -> None:
    """--file - reads [[login]] tables from stdin; entry regions apply; duplicates once."""
    hosts = [ecr_host(PROD, "eu-west-1"), ecr_host(PROD, "us-west-2"), ecr_host(DEV, "us-east-2")]
    _setup(
        sb,
        {
            hosts[0]: moto_password(PROD),
            hosts[1]: moto_password(PROD),
            hosts[2]: moto_password(DEV),
        },
    )
    toml = textwrap.dedent(
        f"""\
        [[login]]
        profile = "prod"
        registries = ["{PROD}", "{hosts[1]}"]   # the same registry twice
        region = "eu-west-1"

        [[login]]
        profile = "prod"
        registries = ["{hosts[1]}"]

        [[login]]
        profile = "dev"
        """
    )
    done = sb.run_tool(["ecr", "login", "--file", "-", "-o", "json"], input=toml)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)["results"]
    assert sorted(r["registry"] for r in results) == sorted(hosts)
    assert set(sb.docker_auths()) == set(hosts)


@pytest.mark.parametrize(
    ("toml", "needles"),
    [
        pytest.param("login = 3", ["no [[login]] entries"], id="not-tables"),
        pytest.param("[[login]]\nregistries = []", ["login[1]", "'profile'"], id="no-profile"),
        pytest.param(
            '[[login]]\nprofile = "dev"\n[[login]]\nprofile = "prod"\nregistries = ["docker.io"]',
            ["login[2]", "'prod'", "registries[1]", "'docker.io'"],
            id="bad-registry",
        ),
        pytest.param(
            '[[login]]\nprofile = "dev"\nregion = "mars-north-1"',
            ["login[1]", "'mars-north-1'"],
            id="bad-region",
        ),
        pytest.param(
            '[[login]]\nprofile = "dev"\nregistrys = []', ["login[1]", "'registrys'"], id="typo-key"
        ),
        pytest.param('[[login]\nprofile = "dev"', ["not valid TOML"], id="syntax"),
        pytest.param('[[login]]\nprofile = "nope"', ["login[1]", "'nope'"], id="unknown-profile"),
        pytest.param('[[logins]]\nprofile = "dev"', ["'logins'"], id="top-level-typo"),
    ],
)
def test_invalid_file_is_refused_before_anything_runs(
    moto: Moto, toml: str, needles: list[str]
) -> None:
    """A bad --file: exit 2, one line naming the file, the entry and the value; no AWS call."""
    _setup(moto)
    file = moto.workdir / "bad.toml"
    file.write_text(toml)
    done = moto.run_tool(["ecr", "login", "--file", str(file)])
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert str(file) in done.stderr
    for needle in needles:
        assert needle in done.stderr
    assert moto.moto_calls() == []


def test_positional_profile_and_dash_p_do_not_mix(moto: Moto) -> None:
    """PROFILE with --profile is refused with one line."""
    _setup(moto)
    done = moto.run_tool(["ecr", "login", "dev", "-p", "prod"])
    assert done.returncode == 2
    assert "not both" in done.stderr
    assert moto.moto_calls() == []


# -- ECR Public


def test_ecr_public_login(sb: Sandbox) -> None:
    """public.ecr.aws: token from ecr-public in us-east-1, login at public.ecr.aws."""
    _setup(sb, {"public.ecr.aws": ECR_PUBLIC_PASSWORD})
    done = sb.run_tool(["ecr", "login", "dev", "public.ecr.aws/nginx/nginx:latest", "-o", "json"])
    assert done.returncode == 0, done.stderr
    (result,) = json.loads(done.stdout)["results"]
    assert result["registry"] == "public.ecr.aws"
    assert result["account"] is None
    assert sb.docker_auths() == {"public.ecr.aws": f"AWS:{ECR_PUBLIC_PASSWORD}"}
    assert sb.ecr_public is not None
    assert [t for t, _ in sb.ecr_public.calls] == [TARGET]
    assert sb.calls("ecr")["GetAuthorizationToken"] == 0


def test_ecr_public_once_per_credentials(sb: Sandbox) -> None:
    """Two profiles with the same keys asking for ECR Public make one ecr-public call."""
    _setup(
        sb, {"public.ecr.aws": ECR_PUBLIC_PASSWORD, ecr_host(DEV, "us-east-2"): moto_password(DEV)}
    )
    file = sb.workdir / "pub.toml"
    file.write_text(
        '[[login]]\nprofile = "dev"\nregistries = ["public.ecr.aws"]\n'
        '[[login]]\nprofile = "dev-copy"\nregistries = ["public.ecr.aws", "123456789012"]\n'
    )
    done = sb.run_tool(["ecr", "login", "-f", str(file)])
    assert done.returncode == 0, done.stderr
    assert sb.ecr_public is not None
    assert len(sb.ecr_public.calls) == 1


# -- other clients (stand-ins)

STAND_IN = textwrap.dedent(
    """\
    #!{python}
    import base64, json, os, sys, time
    name = os.path.basename(sys.argv[0])
    args = sys.argv[1:]
    data = sys.stdin.read()
    with open(os.environ["STAND_IN_LOG"], "a") as f:
        f.write(json.dumps({{"name": name, "argv": args, "stdin": data}}) + "\\n")
    def opt(flag):
        return args[args.index(flag) + 1] if flag in args else None
    if name in ("docker", "nerdctl"):
        path = os.path.join(os.environ["DOCKER_CONFIG"], "config.json")
    elif name == "podman":
        path = opt("--authfile")
    elif name == "helm":
        path = opt("--registry-config")
    else:
        path = os.path.join(os.environ["HOME"], ".finch", "config.json")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        busy = path + ".busy"
        try:
            os.close(os.open(busy, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            sys.exit("two finch logins at once")
        time.sleep(0.05)
    host = args[2] if name == "helm" else args[-1]
    doc = json.load(open(path)) if path and os.path.exists(path) else {{}}
    if "logout" in args:
        doc.get("auths", {{}}).pop(host, None)
    else:
        auth = base64.b64encode(("AWS:" + data).encode()).decode()
        doc.setdefault("auths", {{}})[host] = {{"auth": auth}}
    json.dump(doc, open(path, "w"))
    if name == "finch":
        os.unlink(busy)
    """
)

CLIENT_ARGV = {
    "docker": lambda host, f: ["login", "--username", "AWS", "--password-stdin", host],
    "nerdctl": lambda host, f: ["login", "--username", "AWS", "--password-stdin", host],
    "podman": lambda host, f: [
        "login",
        "--username",
        "AWS",
        "--password-stdin",
        "--authfile",
        f,
        host,
    ],
    "helm": lambda host, f: [
        "registry",
        "login",
        host,
        "--username",
        "AWS",
        "--password-stdin",
        "--registry-config",
        f,
    ],
    "finch": lambda host, f: ["login", "--username", "AWS", "--password-stdin", host],
}


def _stand_ins(sb: Moto) -> tuple[dict[str, str], Path]:
    bin_dir = sb.workdir / "stand-in-bin"
    bin_dir.mkdir(exist_ok=True)
    for name in CLIENT_ARGV:
        exe = bin_dir / name
        exe.write_text(STAND_IN.format(python=sys.executable))
        exe.chmod(0o755)
    log = sb.workdir / "stand-in.jsonl"
    log.unlink(missing_ok=True)
    env = sb.env(PATH=f"{bin_dir}:{os.environ['PATH']}", STAND_IN_LOG=str(log))
    return env, log


def test_private_and_public_ecr_in_us_east_1_get_a_token_each(moto: Moto) -> None:
    """`ecr login dev HOST public.ecr.aws`, both us-east-1: one ecr and one ecr-public request."""
    moto.write_aws_config(PROFILES)
    env, _ = _stand_ins(moto)
    private = ecr_host(DEV, "us-east-1")
    argv = [sys.executable, "-m", "runas_async", "ecr", "login", "dev", private, "public.ecr.aws"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert moto.docker_auths() == {
        private: f"AWS:{moto_password(DEV)}",
        "public.ecr.aws": f"AWS:{ECR_PUBLIC_PASSWORD}",
    }
    assert moto.calls("ecr") == {"GetAuthorizationToken": 1}
    assert moto.ecr_public is not None
    assert [target for target, _ in moto.ecr_public.calls] == [TARGET]


def _auth_file(sb: Sandbox, client: str, env: dict[str, str]) -> Path:
    if client == "podman":
        return Path(env["REGISTRY_AUTH_FILE"])
    if client == "helm":
        return Path(env["HELM_REGISTRY_CONFIG"])
    if client == "finch":
        return sb.home / ".finch" / "config.json"
    return sb.docker_config / "config.json"


@pytest.mark.parametrize(
    ("client", "how"), [(c, "flag") for c in sorted(CLIENT_ARGV)] + [("helm", "env")]
)
def test_each_client_gets_its_argv_and_loses_nothing(sb: Sandbox, client: str, how: str) -> None:
    """Each client: its own argv, the password on stdin only, every login in its auth file."""
    _setup(sb)
    env, log = _stand_ins(sb)
    env["REGISTRY_AUTH_FILE"] = str(sb.workdir / "podman" / "auth.json")
    env["HELM_REGISTRY_CONFIG"] = str(sb.workdir / "helm" / "registry.json")
    real = _auth_file(sb, client, env)
    real.parent.mkdir(parents=True, exist_ok=True)
    real.write_text(json.dumps({"auths": {"kept.example": {"auth": "a2VwdA=="}}, "other": 1}))
    hosts = [ecr_host(PROD, r) for r in ("us-west-2", "eu-west-1", "ap-south-1", "sa-east-1")]
    args = ["ecr", "login", "prod", *hosts]
    if how == "flag":
        args += ["--client", client]
    else:
        env["RUNAS_ASYNC_CLIENT"] = client
    done = sb.run_tool(args, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(calls) == len(hosts)
    for call in calls:
        assert call["name"] == client
        assert call["stdin"] == moto_password(PROD)
        assert moto_password(PROD) not in json.dumps(call["argv"])
        host = next(h for h in hosts if h in call["argv"])
        private = next((a for a in call["argv"] if a.startswith("/")), "")
        assert call["argv"] == CLIENT_ARGV[client](host, private)
        if private:
            assert Path(private) != real
    doc = json.loads(real.read_text())
    assert doc["other"] == 1
    assert set(doc["auths"]) == {"kept.example", *hosts}


def test_missing_client_exits_2_before_aws(sb: Sandbox) -> None:
    """A client that is not installed: exit 2 naming it, no AWS call."""
    _setup(sb)
    bare = sb.workdir / "bare-bin"  # just what the namespace wrapper needs
    bare.mkdir(exist_ok=True)
    for tool in ("unshare", "sh", "mount"):
        link = bare / tool
        if not link.exists():
            link.symlink_to(shutil.which(tool) or tool)
    env = sb.env(PATH=str(bare))
    done = sb.run(["unshare", "--help"], env=env)
    assert done.returncode == 0, "the wrapper itself must still run"
    done = sb.run_tool(["ecr", "login", "prod", "--client", "podman"], env=env)
    assert done.returncode == 2
    assert "'podman' was not found on PATH" in done.stderr
    assert sb.moto_calls() == []


def test_unknown_client_in_environment(moto: Moto) -> None:
    """An unknown $RUNAS_ASYNC_CLIENT is named in a one-line error."""
    _setup(moto)
    done = moto.run_tool(["ecr", "login", "prod"], env=moto.env(RUNAS_ASYNC_CLIENT="rkt"))
    assert done.returncode == 2
    assert "'rkt'" in done.stderr


# -- ecr password


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(["dev"], moto_password(DEV), id="own-registry"),
        pytest.param(["prod", ecr_host(PROD, "eu-west-1")], moto_password(PROD), id="host"),
        pytest.param(["prod", PROD], moto_password(PROD), id="account"),
        pytest.param(["dev", "public.ecr.aws"], ECR_PUBLIC_PASSWORD, id="public"),
    ],
)
def test_password_prints_only_the_password(moto: Moto, args: list[str], expected: str) -> None:
    """`ecr password` prints the password alone on stdout, nothing else."""
    _setup(moto)
    done = moto.run_tool(["ecr", "password", *args])
    assert done.returncode == 0, done.stderr
    assert done.stdout == expected + "\n"
    assert done.stderr == ""


def test_password_pipes_into_docker_login(sb: Sandbox) -> None:
    """`runas-async ecr password | docker login --password-stdin` works as in the README."""
    host = ecr_host(PROD, "us-west-2")
    _setup(sb, {host: moto_password(PROD)})
    script = (
        f'"{sys.executable}" -m runas_async ecr password prod | '
        f"docker login --username AWS --password-stdin {host}"
    )
    done = sb.run(["sh", "-c", script])
    assert done.returncode == 0, done.stderr
    assert sb.docker_auths() == {host: f"AWS:{moto_password(PROD)}"}


def test_password_takes_one_endpoint(moto: Moto) -> None:
    """Two endpoints for `ecr password` is a usage error."""
    _setup(moto)
    done = moto.run_tool(["ecr", "password", "prod", PROD, "public.ecr.aws"])
    assert done.returncode == 2
    assert done.stdout == ""


# -- ecr logout


def test_logout_removes_exactly_those_entries(sb: Sandbox) -> None:
    """`ecr logout` drops just the named registries; other entries and keys stay."""
    hosts = [ecr_host(PROD, r) for r in ("us-west-2", "eu-west-1", "ap-south-1")]
    _setup(sb, {h: moto_password(PROD) for h in hosts})
    sb.docker_config.mkdir(parents=True)
    config = sb.docker_config / "config.json"
    config.write_text(json.dumps({"auths": {"ghcr.io": {"auth": "eDp5"}}, "psFormat": "x"}))
    assert sb.run_tool(["ecr", "login", "prod", *hosts]).returncode == 0
    sb.clear_calls()
    done = sb.run_tool(["ecr", "logout", "prod", PROD, hosts[1]])
    assert done.returncode == 0, done.stderr
    assert _ok_hosts(done.stdout) == {hosts[0], hosts[1]}
    doc = json.loads(config.read_text())
    assert set(doc["auths"]) == {"ghcr.io", hosts[2]}
    assert doc["psFormat"] == "x"
    assert sb.moto_calls() == []  # explicit registries need no AWS call


def test_logout_own_registry_asks_sts_only(sb: Sandbox) -> None:
    """Logging out of a profile's own registry asks STS for the account, fetches no token."""
    host = ecr_host(DEV, "us-east-2")
    _setup(sb, {host: moto_password(DEV)})
    assert sb.run_tool(["ecr", "login", "dev"]).returncode == 0
    sb.clear_calls()
    done = sb.run_tool(["ecr", "logout", "dev"])
    assert done.returncode == 0, done.stderr
    assert docker_auths(sb.docker_config) == {}
    assert sb.calls("sts")["GetCallerIdentity"] == 1
    assert sb.calls("ecr")["GetAuthorizationToken"] == 0


def test_logout_with_file(sb: Sandbox) -> None:
    """`ecr logout --file` takes the same [[login]] file as login."""
    hosts = [ecr_host(PROD, "us-west-2"), ecr_host(PROD, "eu-west-1")]
    _setup(sb, {h: moto_password(PROD) for h in hosts})
    file = sb.workdir / "ci.toml"
    file.write_text(f'[[login]]\nprofile = "prod"\nregistries = {json.dumps(hosts)}\n')
    assert sb.run_tool(["ecr", "login", "-f", str(file)]).returncode == 0
    assert set(sb.docker_auths()) == set(hosts)
    done = sb.run_tool(["ecr", "logout", "-f", str(file)])
    assert done.returncode == 0, done.stderr
    assert sb.docker_auths() == {}


def test_stand_in_writes_the_entry_docker_writes(sb: Sandbox) -> None:
    """The stand-in docker leaves the same config.json entry as the real docker (guards above)."""
    host, password = ecr_host(PROD, "us-west-2"), moto_password(PROD)
    _setup(sb, {host: password})
    real = sb.docker_login(host, password)
    assert real.returncode == 0, real.stderr
    env, _ = _stand_ins(sb)
    env["DOCKER_CONFIG"] = str(sb.workdir / "stand-in-docker")
    Path(env["DOCKER_CONFIG"]).mkdir(exist_ok=True)
    stand_in = sb.workdir / "stand-in-bin" / "docker"
    argv = [str(stand_in), "login", "--username", "AWS", "--password-stdin", host]
    done = subprocess.run(argv, env=env, input=password, text=True, timeout=60, check=False)
    assert done.returncode == 0
    entries = [
        json.loads((Path(d) / "config.json").read_text())["auths"][host]
        for d in (sb.docker_config, env["DOCKER_CONFIG"])
    ]
    assert entries[0] == entries[1]


def test_podman_for_real(sb: Sandbox) -> None:
    """The real podman (no daemon) logs into real registries; entries merged, a refusal reported."""
    need_program("podman", "apt-get install podman")
    hosts = [ecr_host(PROD, r) for r in ("us-west-2", "eu-west-1", "ap-south-1")]
    _setup(sb, {h: moto_password(PROD) for h in hosts})
    bad = hosts[2]
    sb.set_password(bad, "not-the-token")
    conf = sb.workdir / "registries.conf"  # the sandbox registries speak plain HTTP
    conf.write_text("".join(f'[[registry]]\nlocation = "{h}"\ninsecure = true\n' for h in hosts))
    auth = sb.workdir / "podman-auth.json"
    auth.write_text(json.dumps({"auths": {"quay.io": {"auth": "cTpx"}}}))
    env = sb.env(REGISTRY_AUTH_FILE=str(auth), CONTAINERS_REGISTRIES_CONF=str(conf))
    done = sb.run_tool(
        ["ecr", "login", "prod", *hosts, "--client", "podman", "-o", "json"], env=env
    )
    assert done.returncode == 1, done.stderr
    by_host = {r["registry"]: r for r in json.loads(done.stdout)["results"]}
    assert "invalid username/password" in by_host[bad]["error"]
    auths = json.loads(auth.read_text())["auths"]
    assert set(auths) == {"quay.io", *hosts[:2]}
    for host in hosts[:2]:
        assert base64.b64decode(auths[host]["auth"]).decode() == f"AWS:{moto_password(PROD)}"
