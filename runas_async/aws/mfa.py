"""The MFA prompt: which code to ask for, and asking for it on the terminal with echo off.

:class:`TerminalPrompt` is the real prompt (``/dev/tty``, or ``--mfa-code``/``MFA_CODE``);
tests pass any :data:`MfaPrompt` of their own. The credentials resolver
(:mod:`runas_async.aws.credentials`) decides when a code is needed.
"""

from __future__ import annotations

import contextlib
import os
import termios
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import anyio

from runas_async.core.errors import MfaCodeRequired
from runas_async.core.sanitize import show


@dataclass(frozen=True)
class MfaChallenge:
    """One code to ask for: which device, for which profile, signed by whose credentials."""

    profile: str
    """The profile being resolved."""
    source_profile: str
    """The profile whose own credentials call GetSessionToken."""
    serial: str
    """The MFA device (``mfa_serial``)."""

    @property
    def text(self) -> str:
        return f"Enter MFA code for {self.serial} (profile {self.source_profile}): "


MfaPrompt = Callable[[MfaChallenge], Awaitable[str]]
"""Returns the code the user gives for a challenge; tests pass a fake."""

Pause = Callable[[], AbstractContextManager[object]]
"""Entered around a prompt: takes a live display off the terminal and puts it back."""

Waiting = Callable[[str, "str | None"], None]
"""Told ``(profile, "waiting for MFA code")`` while a profile waits for its code, and
``(profile, None)`` once it has one (the live table shows it on the profile's rows)."""


def _no_pause() -> AbstractContextManager[object]:
    return contextlib.nullcontext()


class TerminalPrompt:
    """The real prompt: asks on the terminal (``/dev/tty``) with echo off, one prompt at a time.

    ``code`` (``--mfa-code`` or ``MFA_CODE``) answers every challenge without a terminal. With
    neither a code nor a terminal, :class:`MfaCodeRequired` names the profile and the device.
    Nothing is ever written to stdout or read from stdin. ``pause`` is entered around each
    prompt (the live table's pause). The read is async and cancellable; the terminal's echo
    is restored on every exit path.
    """

    def __init__(
        self,
        *,
        code: str | None = None,
        tty: str = "/dev/tty",
        pause: Pause | None = None,
        waiting: Waiting | None = None,
    ) -> None:
        self._code = code.strip() if code else None
        self._tty = tty
        self._pause = pause or _no_pause
        self._waiting = waiting
        self._lock: anyio.Lock | None = None

    async def __call__(self, challenge: MfaChallenge) -> str:
        if self._code:
            return self._code
        if self._lock is None:
            self._lock = anyio.Lock()
        if self._waiting is not None:
            self._waiting(challenge.profile, "waiting for MFA code")
        try:
            return await self._ask(challenge, self._lock)
        finally:
            if self._waiting is not None:
                self._waiting(challenge.profile, None)

    async def _ask(self, challenge: MfaChallenge, lock: anyio.Lock) -> str:
        async with lock:
            try:
                fd = os.open(self._tty, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
            except OSError as e:
                raise MfaCodeRequired(
                    f"profile {show(challenge.profile)} needs a code from MFA device "
                    f"{show(challenge.serial)} (for profile {show(challenge.source_profile)}) "
                    f"and there is no terminal to ask on ({self._tty}: {e.strerror}): "
                    "pass --mfa-code CODE or set MFA_CODE"
                ) from e
            try:
                with self._pause():
                    return await read_hidden_line(fd, challenge.text)
            finally:
                os.close(fd)


async def read_hidden_line(fd: int, prompt: str) -> str:
    """Write ``prompt`` to the terminal ``fd`` and read one line with echo off (as getpass).

    Waits for the line without blocking the event loop (in canonical mode the terminal is
    readable once a whole line is there), so a cancelled prompt ends at once, echo restored.
    End of input (Ctrl-D) gives "".
    """
    old = termios.tcgetattr(fd)
    new = list(old)
    new[3] &= ~termios.ECHO
    termios.tcsetattr(fd, termios.TCSAFLUSH, new)
    line = b""
    try:
        _write_all(fd, prompt.encode())
        while not line.endswith(b"\n"):
            await anyio.wait_readable(fd)
            chunk = os.read(fd, 1024)
            if not chunk:
                break
            line += chunk
    finally:
        termios.tcsetattr(fd, termios.TCSAFLUSH, old)
        with contextlib.suppress(OSError):
            _write_all(fd, b"\n")
    return line.decode("utf-8", "replace").strip()


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]
