"""The pidfd child watcher is the only one that reaps a login client (no "already read")."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from runas_async.auth.runners import run_client
from runas_async.cli.context import fast_child_watcher
from tests.missing import missing


@pytest.fixture
def pidfd_watcher() -> Iterator[None]:
    """The pidfd watcher `ecr login` installs on 3.11 (asyncio's default from 3.12 on)."""
    if not hasattr(os, "pidfd_open"):
        missing("pidfds (Linux 5.3 or later)")
    fast_child_watcher()
    try:
        yield
    finally:
        if sys.version_info < (3, 12):
            asyncio.get_event_loop_policy().set_child_watcher(None)  # type: ignore[arg-type]


def _read_pid(path: Path) -> int:
    """The pid the child wrote, waited for without giving the event loop a turn."""
    deadline = time.monotonic() + 10
    while not (path.exists() and path.read_text()):
        assert time.monotonic() < deadline, "the child wrote no pid"
        time.sleep(0.005)
    return int(path.read_text())


def _block_until_exited(pid: int) -> None:
    """Without giving the event loop a turn: wait until ``pid`` is a zombie (not reaped)."""
    flags = os.WEXITED | os.WNOWAIT | os.WNOHANG
    deadline = time.monotonic() + 10
    while os.waitid(os.P_PID, pid, flags) is None:
        assert time.monotonic() < deadline, "the child did not exit"
        time.sleep(0.005)


@pytest.mark.parametrize("failure", ["token error", "cancelled"])
def test_child_that_exited_before_the_loop_saw_it_is_reaped_once(
    pidfd_watcher: None, caplog: pytest.LogCaptureFixture, tmp_path: Path, failure: str
) -> None:
    """A client that exits while the loop is busy, then is killed: no 'already read' warning."""
    pid_file = tmp_path / "pid"
    child = "import os, sys; open(sys.argv[1], 'w').write(str(os.getpid()))"

    async def token() -> bytes:
        # The forced interleaving: the child is gone, its pidfd is readable, but the
        # loop has not run the watcher's callback yet when the login gives up on it.
        _block_until_exited(_read_pid(pid_file))
        if failure == "cancelled":
            raise anyio.get_cancelled_exc_class()
        raise RuntimeError("no token")

    async def main() -> None:
        with pytest.raises((RuntimeError, anyio.get_cancelled_exc_class())):
            argv = [sys.executable, "-c", child, str(pid_file)]
            await run_client(argv, dict(os.environ), token)

    caplog.set_level(logging.WARNING, logger="asyncio")
    anyio.run(main)
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []
