"""The private directory of ``ecr login … -- CMD`` (its config.json holds plaintext tokens):
where it lives, and that it goes away however the run ends.

* It lives under ``$XDG_RUNTIME_DIR`` when that is set (a per-user tmpfs, 0700, emptied at
  logout), else in the temp dir; its name carries our pid: ``runas-async-job-PID-XXXX``.
* The run removes it on the way out, and every catchable termination signal ends the run
  through that way out (runas.py forwards them to CMD's group, then returns).
* A **watchdog** covers what no handler can (SIGKILL, a crash, a signal during the logins):
  a small process of its own session holding the read end of a pipe. When we end without
  saying ``done`` on the pipe, it kills CMD's process group and removes the directory.
* A run also removes the job directories of its own user whose process is gone (a
  watchdog killed too, a reboot without tmpfs): every ``-- CMD`` run when it makes its
  own, and every ``ecr login`` that logs in and every ``ecr logout`` (:func:`sweep`, one
  listing of the directory), so a user who never runs ``-- CMD`` again is not left with a
  crashed job's tokens.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

PREFIX = "runas-async-job-"
_NAME = re.compile(re.escape(PREFIX) + r"([0-9]+)-")

_WATCHDOG = """
import os, shutil, signal, sys
for name in ("SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM", "SIGUSR1", "SIGUSR2", "SIGALRM"):
    signal.signal(getattr(signal, name), signal.SIG_IGN)
data = b""
while True:
    try:
        chunk = os.read(0, 256)
    except InterruptedError:
        continue
    if not chunk:
        break
    data += chunk
words = data.decode("ascii", "replace").split()
if "done" not in words:
    for word in words:
        if word.startswith("group="):
            try:
                os.killpg(int(word[6:]), signal.SIGKILL)
            except (OSError, ValueError):
                pass
    shutil.rmtree(sys.argv[1], ignore_errors=True)
"""
"""The watchdog's program: wait for the end of the pipe; unless told ``done``, kill the
group it was told about and remove the directory. Standard library only, no site."""


def base(env: Mapping[str, str]) -> Path:
    """Where job directories live: ``$XDG_RUNTIME_DIR`` when set (absolute), else the temp
    dir."""
    runtime = env.get("XDG_RUNTIME_DIR", "")
    if runtime and os.path.isabs(runtime) and os.path.isdir(runtime):
        return Path(runtime)
    import tempfile  # here: the sweep of a run without a job needs it only now

    return Path(tempfile.gettempdir())


def create(env: Mapping[str, str]) -> Path:
    """A new job directory (0700) of this process, stale ones of our user removed first."""
    import tempfile

    where = base(env)
    remove_stale(where)
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=where))


def sweep(env: Mapping[str, str]) -> list[Path]:
    """The stale job directories of our user removed (:func:`remove_stale`) where jobs of
    ``env`` live: for the runs that make none themselves."""
    removed = remove_stale(base(env))
    if removed:
        import logging

        logging.getLogger("runas_async").debug(
            "removed stale job directories: %s", ", ".join(map(str, removed))
        )
    return removed


def remove_stale(where: Path) -> list[Path]:
    """Remove the job directories in ``where`` that belong to our user and whose process
    is gone; the ones removed."""
    removed = []
    uid = os.getuid()
    try:
        entries = list(os.scandir(where))
    except OSError:
        return []
    for entry in entries:
        m = _NAME.match(entry.name)
        if m is None or int(m[1]) == os.getpid():
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not entry.is_dir(follow_symlinks=False) or info.st_uid != uid or _alive(int(m[1])):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(Path(entry.path))
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # someone else's: not ours to judge
    return True


class Watchdog:
    """Removes ``directory`` (and kills CMD's group) if we end without :meth:`done`."""

    def __init__(self, directory: Path) -> None:
        import subprocess

        read, self._write = os.pipe()  # neither end is inherited by CMD (close_fds)
        argv = [sys.executable, "-I", "-S", "-c", _WATCHDOG, str(directory)]
        self._process: subprocess.Popen[bytes] | None = None
        try:
            self._process = subprocess.Popen(  # noqa: S603 (our own program and directory)
                argv,
                stdin=read,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # no terminal's signals, no group kill reaches it
            )
        except OSError:
            pass  # the stale-directory sweep of the next run remains
        finally:
            os.close(read)

    def group(self, pgid: int) -> None:
        """CMD's process group, to kill if we die."""
        self._say(f"group={pgid}\n")

    def done(self) -> None:
        """We are ending in order (the directory is gone): the watchdog leaves at once."""
        self._say("done\n")
        with contextlib.suppress(OSError):
            os.close(self._write)
        if self._process is not None:
            import subprocess

            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=5)

    def _say(self, text: str) -> None:
        with contextlib.suppress(OSError):
            os.write(self._write, text.encode())
