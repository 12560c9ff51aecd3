"""Running login clients (clients.py) through anyio's process API, never losing an entry.

The password goes on the child's stdin, never in argv. A client that can be
pointed at another auth file gets its own temporary copy per login (0700
directory, seeded with the user's file so credsStore, credHelpers and proxies
still apply); :class:`ClientRunner` merges the new ``auths`` entries into the
real file once, at the end (see authfile.py for why). A client that cannot
be redirected (finch) has its logins run one at a time instead.

:class:`Runner` is what every runner shares (this one and registry.BuiltinRunner): the
merge on exit with the records, and the refusals of hosts a credential helper serves.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import tempfile
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from subprocess import PIPE
from types import TracebackType
from typing import Any, Self

import anyio
from anyio.abc import ByteReceiveStream, Process

from runas_async.auth.authfile import (
    SELF_SERVING_HELPERS,
    AuthFile,
    auth_entry,
    helper_for,
    parse_document,
)
from runas_async.auth.recording import Recorder
from runas_async.core.clients import Client, Redirect
from runas_async.core.errors import ClientNotFound, LoginError
from runas_async.core.models import Registry, Token
from runas_async.core.places import find_client
from runas_async.core.sanitize import clean, show

_KEEP_OUTPUT = 64 * 1024

__all__ = ["ECR_USERNAME", "ClientRunner", "Runner", "check_helpers", "find_client", "run_client"]

ECR_USERNAME = "AWS"
"""The username of every ECR and ECR Public token: clients are started with it."""


def check_helpers(
    hosts: Iterable[str | None], auth: AuthFile, seed: bytes | None, env: Mapping[str, str]
) -> None:
    """ConfigError naming the first credential helper that would store one of ``hosts``
    (None: a host known only at run time, which only ``credsStore`` can claim) and is not
    on PATH. Helpers for other hosts (say, gcr.io's) do not matter.
    """
    doc = parse_document(seed)
    path = env.get("PATH", os.defpath)
    for host in hosts:
        helper = helper_for(doc, host)
        if helper is None or helper in SELF_SERVING_HELPERS:
            continue
        program = f"docker-credential-{helper}"
        if shutil.which(program, path=path) is None:
            key = "credsStore" if helper_for(doc, None) == helper else "credHelpers"
            raise ClientNotFound(
                f"credential helper {show(program)} ({key} in {auth.path}) is not on PATH, and "
                f"it would store the login{f' of {host}' if host else 's'}: install it, or "
                f"remove that setting"
            )


async def _drain(stream: ByteReceiveStream | None, sink: bytearray) -> None:
    if stream is None:
        return
    async for chunk in stream:
        sink += chunk
        if len(sink) > _KEEP_OUTPUT:
            del sink[: len(sink) - _KEEP_OUTPUT]


MAX_CLIENT_LINE = 400
"""A client's line names the URL it tried (a long host twice, with a scheme and a path) and
the registry's words: shortened in the middle past this."""


def failure_reason(stderr: bytes, stdout: bytes, returncode: int, secret: str) -> str:
    """The client's last meaningful output line, with the secret redacted."""
    for blob in (stderr, stdout):
        lines = [ln.strip() for ln in blob.decode("utf-8", "replace").splitlines()]
        lines = [ln for ln in lines if ln]
        if lines:
            line = clean(lines[-1], [secret], width=MAX_CLIENT_LINE)
            if line.lower().startswith("error response from daemon: "):
                line = line[len("error response from daemon: ") :]
            return line
    return f"exited with status {returncode}"


async def _kill_and_wait(proc: Process) -> None:
    """Kill the child and wait for the event loop's child watcher to report its exit.

    Never through ``proc.kill()`` or a closed transport: both call ``Popen.poll()`` first
    (a waitpid), which reaps a child that has exited but whose exit the watcher has not
    reported yet; the watcher then finds nothing and asyncio logs "exit status already
    read: will report returncode 255". Only the watcher reaps, and it reports the exit
    within one turn of the loop; pids are handed out in sequence, so in that turn the pid
    cannot belong to another process and ``os.kill`` only ever reaches this child.
    """
    with anyio.CancelScope(shield=True):
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()


Stdin = bytes | Callable[[], Awaitable[bytes]] | None
"""What a client reads: nothing, bytes, or bytes that come later (the client starts first)."""


async def run_client(
    argv: list[str],
    env: Mapping[str, str],
    stdin: Stdin,
    *,
    spawning: anyio.Lock | None = None,
) -> None:
    """Run one client command; LoginError with its last line when it fails.

    A callable ``stdin`` is awaited after the client has started: ECR's clients
    read the password before anything else, so their start-up overlaps the wait.
    If the wait fails or is cancelled, the child is killed before its stdin is
    closed (it never sees an empty password). What the client reads is its
    secret: it is redacted from the error. Output is captured (never
    interleaved with ours); on cancellation or any error the child is killed and
    waited for (:func:`_kill_and_wait`).

    ``spawning``, shared by many calls, starts their children one at a time: the event
    loop then answers the network between two spawns instead of after dozens of them.
    """
    stdout, stderr = bytearray(), bytearray()
    data = b""
    async with spawning or contextlib.nullcontext():
        proc = await anyio.open_process(argv, stdin=PIPE, stdout=PIPE, stderr=PIPE, env=dict(env))
    async with proc:
        try:
            if callable(stdin):
                data = await stdin()
            elif stdin is not None:
                data = stdin
            async with anyio.create_task_group() as tg:
                tg.start_soon(_drain, proc.stdout, stdout)
                tg.start_soon(_drain, proc.stderr, stderr)
                if proc.stdin is not None:
                    if data:
                        with contextlib.suppress(anyio.BrokenResourceError, OSError):
                            await proc.stdin.send(data)
                    await proc.stdin.aclose()
            returncode = await proc.wait()
        except BaseException:
            await _kill_and_wait(proc)
            raise
    if returncode != 0:
        secret = data.decode("utf-8", "replace")
        raise LoginError(failure_reason(bytes(stderr), bytes(stdout), returncode, secret))


class _OtherUsername(Exception):
    """The token names another user than the one the client was started with."""

    def __init__(self, token: Token) -> None:
        super().__init__("the token's username differs")
        self.token = token


class Runner:
    """What every login runner shares (the client's :class:`ClientRunner`, the built-in
    ``registry.BuiltinRunner``); use one as an async context manager.

    It keeps the logins and logouts done (``logged_in``, ``logged_out``); on exit (normal,
    error or cancellation) :meth:`settle` puts them into ``auth`` with their records, and
    then :meth:`_close` frees what the runner opened. ``auth`` None: nowhere (printed
    secrets). It refuses what the auth file sends elsewhere: a login for a host whose
    helper fetches ECR tokens itself, a logout of a host our own helper serves.
    """

    def __init__(
        self,
        auth: AuthFile | None,
        seed: bytes | None,
        env: Mapping[str, str],
        recorder: Recorder | None = None,
    ) -> None:
        self.auth = auth
        self.recorder = recorder
        self._doc = parse_document(seed)
        self._env = dict(env)
        self.logged_in: dict[str, dict[str, Any]] = {}
        self.logged_out: set[str] = set()

    async def __aenter__(self) -> Self:
        await self._open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with anyio.CancelScope(shield=True):
            try:
                if self.auth is not None and (self.logged_in or self.logged_out):
                    await anyio.to_thread.run_sync(self.settle, self.auth)
            finally:
                await self._close()

    async def _open(self) -> None:
        """What the runner needs open while it runs (a directory, a connection pool)."""

    async def _close(self) -> None:
        """Free what :meth:`_open` opened; called on every way out."""

    def settle(self, auth: AuthFile) -> None:
        """The run's logins into ``auth``, its logouts out of it, and their records
        (recording.py) written under the same lock. Blocking: a worker thread's job."""
        recorder = self.recorder
        if self.logged_in:
            added = list(self.logged_in)
            after = None if recorder is None else functools.partial(recorder.write, added=added)
            auth.merge_auths(self.logged_in, after)
        if self.logged_out:
            removed = list(self.logged_out)
            after = None if recorder is None else functools.partial(recorder.write, removed=removed)
            auth.remove_auths(removed, after)

    def _helper(self, host: str) -> str | None:
        return helper_for(self._doc, host)

    def _where(self) -> str:
        return "the auth file" if self.auth is None else str(self.auth.path)

    def refuse_served(self, host: str) -> str | None:
        """Refuse a login (LoginError) that a credential helper fetching ECR tokens itself
        would shadow; else the helper that stores ``host``'s login, if any."""
        helper = self._helper(host)
        if helper in SELF_SERVING_HELPERS:
            raise LoginError(
                f"docker-credential-{helper} already serves {host} (credHelpers in "
                f"{self._where()}); to log in with runas-async instead, remove that entry"
            )
        return helper

    def refuse_ours(self, host: str) -> str | None:
        """Refuse a logout (LoginError) of a host our own helper serves: nothing is stored
        to remove. Else the helper that stores ``host``'s login, if any."""
        helper = self._helper(host)
        if helper == "runas-async":
            raise LoginError(
                f"docker-credential-runas-async serves {host} (credHelpers in "
                f"{self._where()}): there is no login to remove; `runas-async ecr "
                "configure-docker --remove` takes that entry out, which stops docker using it"
            )
        return helper


class ClientRunner(Runner):
    """Logs registries in (or out) with one client, never losing an entry.

    Each login gets a private auth file in a temporary directory (deleted on exit), or,
    for a client that cannot be redirected, the one-at-a-time lock (:meth:`_slot`).
    """

    def __init__(
        self,
        client: Client,
        executable: str,
        auth: AuthFile,
        seed: bytes | None,
        env: Mapping[str, str],
        recorder: Recorder | None = None,
    ) -> None:
        super().__init__(auth, seed, env, recorder)
        self.client = client
        self.executable = executable
        self.auth: AuthFile = auth
        self._seed = seed
        self._workdir: Path | None = None
        self._count = 0
        self._serial = anyio.Lock()
        self._spawning = anyio.Lock()

    async def _open(self) -> None:
        self._workdir = Path(tempfile.mkdtemp(prefix="runas-async-"))  # mode 0700

    async def _close(self) -> None:
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)

    def _private_file(self) -> Path:
        """A fresh 0700 directory with a 0600 copy of the user's auth file."""
        if self._workdir is None:
            raise RuntimeError("use ClientRunner as an async context manager")
        self._count += 1
        d = self._workdir / str(self._count)
        d.mkdir(mode=0o700)
        private = d / self.client.private_name
        if self._seed is not None:
            fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(self._seed)
        if self.client.redirect is Redirect.DOCKER_CONFIG:
            # docker resolves the current context from DOCKER_CONFIG/contexts.
            contexts = self.auth.directory / "contexts"
            if contexts.is_dir():
                (d / "contexts").symlink_to(contexts)
        return private

    @contextlib.asynccontextmanager
    async def _slot(self) -> Any:
        """A private auth file, or (client cannot be redirected) the one-at-a-time lock."""
        if self.client.redirect is Redirect.NONE:
            async with self._serial:
                yield None
            return
        private = self._private_file()
        try:
            yield private
        finally:
            shutil.rmtree(private.parent, ignore_errors=True)

    async def login(self, registry: Registry, token: Callable[[], Awaitable[Token]]) -> None:
        """Log into one registry; LoginError with the client's reason when it fails.

        The client is started before the token is there (with ECR's fixed
        username) and reads the password once ``token()`` returns it. A host that
        ``credHelpers`` sends to a helper that fetches ECR tokens itself is not logged in.
        """
        self.refuse_served(registry.host)
        async with self._slot() as private:
            env = self._env if private is None else self.client.private_env(self._env, private)

            async def password(username: str) -> bytes:
                got = await token()
                if self.recorder is not None:
                    self.recorder.token(registry.host, got.expires_at)
                if got.username != username:
                    raise _OtherUsername(got)
                return got.password.encode()

            username = ECR_USERNAME
            while True:
                argv = self.client.login_argv(self.executable, registry.host, username, private)
                try:
                    await run_client(
                        argv, env, functools.partial(password, username), spawning=self._spawning
                    )
                    break
                except _OtherUsername as e:  # not ECR's "AWS": start again with the right one
                    username = e.token.username
            if private is None:
                return
            try:
                written = private.read_bytes()  # a few hundred bytes: no worker thread
            except FileNotFoundError:
                raise LoginError(
                    f"{self.client.name} reported success but wrote no auth file"
                ) from None
            entry = auth_entry(written, registry.host)
            # With a credsStore the secret went to the helper and docker
            # records the host with an empty entry; keep that too.
            self.logged_in[registry.host] = entry if entry is not None else {}

    async def logout(self, host: str) -> None:
        """Log out of one registry (the client also erases it from a credsStore)."""
        self.refuse_ours(host)
        async with self._slot() as private:
            argv = self.client.logout_argv(self.executable, host, private)
            env = self._env if private is None else self.client.private_env(self._env, private)
            await run_client(argv, env, None, spawning=self._spawning)
            if private is not None:
                self.logged_out.add(host)
