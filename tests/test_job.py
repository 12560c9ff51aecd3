"""``ecr login … -- CMD`` (issue 19 item 11, issue 20): CMD in a process group of its own that
every forwarded signal reaches, the job directory gone however the run ends (a watchdog for
SIGKILL, a sweep of stale ones), under $XDG_RUNTIME_DIR when set; 127/126 for a CMD that
cannot run. The tool runs in the sandbox against real registries (test_builtin's world)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runas_async.cli import jobdir
from tests.faults import wait_until
from tests.sandbox import Sandbox
from tests.test_builtin import GOOD, world

__all__ = ["world"]  # the fixture, imported to be used here


def _group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes whose process group is ``pgid``."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry))
    return members


def _start(sb: Sandbox, tmp: Path, ready: Path, **env: str) -> subprocess.Popen[str]:
    cmd = [
        "sh",
        "-c",
        f'echo "$$ $DOCKER_CONFIG" > {ready}.new; mv {ready}.new {ready}; sleep 30 & wait',
    ]
    return subprocess.Popen(
        sb.wrap(
            [sys.executable, "-m", "runas_async", "ecr", "login", "dev", GOOD[0]]
            + ["-c", "builtin", "--", *cmd]
        ),
        env=sb.env(TMPDIR=str(tmp), **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize(
    "signum",
    [
        signal.SIGTERM,
        signal.SIGINT,
        signal.SIGHUP,
        signal.SIGQUIT,
        signal.SIGUSR1,
        signal.SIGKILL,
    ],
    ids=lambda s: signal.Signals(s).name,
)
def test_signal_leaves_nothing_of_cmd_and_no_job_directory(
    world: Sandbox, tmp_path: Path, signum: int
) -> None:
    """A signal to the tool while ``sh -c 'sleep 30 & wait'`` runs: nothing of CMD's group
    survives (the background sleep ignores SIGINT and SIGQUIT, as a shell's background job
    does), and no job directory is left after the next run (for SIGKILL, the watchdog's
    doing, else the tool's own)."""
    tmp = tmp_path / "tmpdir"
    tmp.mkdir()
    ready = tmp_path / "ready"
    proc = _start(world, tmp, ready, XDG_RUNTIME_DIR="")
    try:
        assert wait_until(lambda: ready.exists() or proc.poll() is not None, 60)
        assert proc.poll() is None, proc.communicate()
        pid, directory = ready.read_text().split()
        pgid = int(pid)
        assert wait_until(lambda: len(_group_members(pgid)) == 2, 10), _group_members(pgid)
        assert os.getpgid(pgid) == pgid != os.getpgid(proc.pid)
        assert Path(directory).parent == tmp
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in err
    if signum != signal.SIGKILL:
        assert proc.returncode == 128 + signum, out + err
    assert wait_until(lambda: not _group_members(pgid), 10), _group_members(pgid)
    assert wait_until(lambda: not Path(directory).exists(), 10)
    after = world.run_tool(
        ["ecr", "login", "dev", GOOD[0], "-c", "builtin", "--", "true"],
        env=world.env(TMPDIR=str(tmp), XDG_RUNTIME_DIR=""),
    )
    assert after.returncode == 0, after.stdout + after.stderr
    assert sorted(tmp.iterdir()) == []


def test_job_directory_lives_under_xdg_runtime_dir(world: Sandbox, tmp_path: Path) -> None:
    """With $XDG_RUNTIME_DIR set, the job directory is made there (0700), not in TMPDIR."""
    tmp, runtime = tmp_path / "tmpdir", tmp_path / "runtime"
    tmp.mkdir()
    runtime.mkdir(mode=0o700)
    done = world.run_tool(
        ["ecr", "login", "dev", GOOD[0], "-c", "builtin", "--"]
        + ["sh", "-c", 'echo "$DOCKER_CONFIG"; stat -c %a "$DOCKER_CONFIG"'],
        env=world.env(TMPDIR=str(tmp), XDG_RUNTIME_DIR=str(runtime)),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    directory, mode = done.stdout.split()[-2:]
    assert Path(directory).parent == runtime and mode == "700"
    assert sorted(runtime.iterdir()) == [] and sorted(tmp.iterdir()) == []


def test_stale_job_directories_of_gone_processes_are_removed(tmp_path: Path) -> None:
    """The sweep removes our user's job directories whose process is gone; a live one, a
    file and another name stay."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = tmp_path / f"{jobdir.PREFIX}{gone.pid}-abc"
    live = tmp_path / f"{jobdir.PREFIX}{os.getppid()}-def"
    other = tmp_path / "runas-async-other-1-x"
    for path in (stale, live, other):
        path.mkdir()
    (stale / "config.json").write_text("{}")
    not_dir = tmp_path / f"{jobdir.PREFIX}{gone.pid}-file"
    not_dir.write_text("")
    assert jobdir.remove_stale(tmp_path) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (live, other, not_dir)
    )


@pytest.mark.parametrize(
    "words",
    [
        pytest.param(["login", "dev", GOOD[0]], id="login"),
        pytest.param(["logout", "dev", GOOD[0]], id="logout"),
    ],
)
def test_a_crashed_jobs_directory_is_swept_by_runs_without_a_job(
    world: Sandbox, tmp_path: Path, words: list[str]
) -> None:
    """A job directory whose run and watchdog were both killed (nothing else ever removes
    it) goes at the next ``ecr login`` or ``ecr logout`` of its user, with no ``-- CMD``; a
    live run's stays."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = runtime / f"{jobdir.PREFIX}{gone.pid}-abc"
    live = runtime / f"{jobdir.PREFIX}{os.getpid()}-def"
    for path in (stale, live):
        path.mkdir()
        (path / "config.json").write_text('{"auths": {}}')
    done = world.run_tool(
        ["ecr", *words, "-c", "builtin"], env=world.env(XDG_RUNTIME_DIR=str(runtime))
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(runtime.iterdir()) == [live]


@pytest.mark.parametrize(
    ("make", "status"),
    [
        pytest.param(lambda d: "no-such-command-here", 127, id="not-found"),
        pytest.param(lambda d: str(d / "no-such-file"), 127, id="path-not-found"),
        pytest.param(lambda d: _not_executable(d), 126, id="not-executable"),
        pytest.param(lambda d: str(d), 126, id="directory"),
    ],
)
def test_cmd_that_cannot_run_exits_127_or_126(
    world: Sandbox, tmp_path: Path, make: object, status: int
) -> None:
    """Issue 20: as a shell, 127 when CMD is not found, 126 when it is not runnable; one
    line naming it; no job directory left."""
    tmp = tmp_path / "tmpdir"
    tmp.mkdir()
    program = make(tmp_path)  # type: ignore[operator]
    done = world.run_tool(
        ["ecr", "login", "dev", GOOD[0], "-c", "builtin", "--", program],
        env=world.env(TMPDIR=str(tmp), XDG_RUNTIME_DIR=""),
    )
    assert done.returncode == status, done.stdout + done.stderr
    assert f"runas-async: error: cannot run {program!r}" in done.stderr
    assert "Traceback" not in done.stderr
    assert sorted(tmp.iterdir()) == []


def _not_executable(directory: Path) -> str:
    script = directory / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    return str(script)


def test_cmd_has_the_terminal_and_ctrl_c_reaches_its_group(tmp_path: Path) -> None:
    """On a terminal (a pty here), CMD's group is the foreground while it runs: it reads
    what is typed (a background group would be stopped by SIGTTIN), and Ctrl-C typed there
    ends it: exit 130, the terminal given back."""
    import pty
    import select

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "HOME": str(tmp_path),
    }
    # CMD restores SIGINT's default before it says "got-": a Ctrl-C typed after that kills it
    # at once. (`sh -c '...; echo got-$x; sleep 30'` did not: sh -c catches SIGINT, and one
    # that came before sleep started was acted on only when sleep ended, 30 s later.)
    cmd = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGINT, signal.SIG_DFL)\n"
        "print('ready', flush=True)\n"
        "print('got-' + sys.stdin.readline().strip(), flush=True)\n"
        "time.sleep(30)\n"
    )
    argv = [sys.executable, "-m", "runas_async", "exec", "--", sys.executable, "-c", cmd]
    pid, fd = pty.fork()
    if pid == 0:  # the child: the tool, on the pty
        os.execve(sys.executable, argv, env)  # noqa: S606 (the tool itself)
    seen = b""

    def until(needle: bytes) -> bool:
        nonlocal seen
        deadline = time.monotonic() + 30
        while needle not in seen and time.monotonic() < deadline:
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    seen += os.read(fd, 1024)
                except OSError:
                    break
        return needle in seen

    try:
        assert until(b"ready"), seen
        os.write(fd, b"hello\n")
        assert until(b"got-hello"), seen
        os.write(fd, b"\x03")
        _, status = os.waitpid(pid, 0)
    finally:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 128 + signal.SIGINT, seen
