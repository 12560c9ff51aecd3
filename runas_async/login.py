"""Login clients run as child processes through anyio's process API.

The password goes on the child's stdin, never in argv. Each login gets its own
temporary DOCKER_CONFIG (0700, seeded with the user's config.json); the new
``auths`` entries are merged into the real file once, at the end, by
:class:`DockerLoginRunner` (see dockerconfig.py for why).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from subprocess import PIPE
from types import TracebackType
from typing import Any, Self

import anyio
from anyio.abc import ByteReceiveStream

from runas_async.dockerconfig import CONFIG_NAME, DockerConfig, auth_entry
from runas_async.errors import ClientNotFound, LoginError
from runas_async.models import Registry, Token

_KEEP_OUTPUT = 64 * 1024


def find_client(name: str, env: Mapping[str, str]) -> str:
    """The client's executable on PATH, or ClientNotFound naming it."""
    path = shutil.which(name, path=env.get("PATH", os.defpath))
    if path is None:
        raise ClientNotFound(f"{name!r} was not found on PATH; install it or put it on PATH")
    return path


async def _drain(stream: ByteReceiveStream | None, sink: bytearray) -> None:
    if stream is None:
        return
    async for chunk in stream:
        sink += chunk
        if len(sink) > _KEEP_OUTPUT:
            del sink[: len(sink) - _KEEP_OUTPUT]


def failure_reason(stderr: bytes, stdout: bytes, returncode: int, secret: str) -> str:
    """The client's last meaningful output line, with the secret redacted."""
    for blob in (stderr, stdout):
        lines = [ln.strip() for ln in blob.decode("utf-8", "replace").splitlines()]
        lines = [ln for ln in lines if ln]
        if lines:
            line = lines[-1].replace(secret, "<redacted>") if secret else lines[-1]
            if line.lower().startswith("error response from daemon: "):
                line = line[len("error response from daemon: ") :]
            return line
    return f"exited with status {returncode}"


class DockerLoginRunner:
    """Runs ``docker login --username AWS --password-stdin HOST`` for each registry.

    Use as an async context manager: on exit (normal, error or cancellation)
    every successful login is merged into the user's config.json and the
    temporary directories are removed.
    """

    def __init__(
        self,
        executable: str,
        config: DockerConfig,
        seed: bytes | None,
        env: Mapping[str, str],
    ) -> None:
        self.executable = executable
        self.config = config
        self._seed = seed
        self._env = dict(env)
        self._workdir: Path | None = None
        self._count = 0
        self.logged_in: dict[str, dict[str, Any]] = {}

    async def __aenter__(self) -> Self:
        self._workdir = Path(tempfile.mkdtemp(prefix="runas-async-"))  # mode 0700
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with anyio.CancelScope(shield=True):
            try:
                if self.logged_in:
                    await anyio.to_thread.run_sync(self.config.merge_auths, self.logged_in)
            finally:
                if self._workdir is not None:
                    shutil.rmtree(self._workdir, ignore_errors=True)

    def argv(self, registry: Registry, token: Token) -> list[str]:
        return [
            self.executable,
            "login",
            "--username",
            token.username,
            "--password-stdin",
            registry.host,
        ]

    def _isolated_dir(self) -> Path:
        if self._workdir is None:
            raise RuntimeError("use DockerLoginRunner as an async context manager")
        self._count += 1
        d = self._workdir / str(self._count)
        d.mkdir(mode=0o700)
        if self._seed is not None:
            fd = os.open(d / CONFIG_NAME, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(self._seed)
        # docker resolves the current context from DOCKER_CONFIG/contexts.
        contexts = self.config.directory / "contexts"
        if contexts.is_dir():
            (d / "contexts").symlink_to(contexts)
        return d

    async def login(self, registry: Registry, token: Token) -> None:
        """Log into one registry; raise LoginError with the client's reason."""
        workdir = self._isolated_dir()
        try:
            env = {**self._env, "DOCKER_CONFIG": str(workdir)}
            stdout, stderr = bytearray(), bytearray()
            async with await anyio.open_process(
                self.argv(registry, token), stdin=PIPE, stdout=PIPE, stderr=PIPE, env=env
            ) as proc:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(_drain, proc.stdout, stdout)
                    tg.start_soon(_drain, proc.stderr, stderr)
                    if proc.stdin is not None:
                        with contextlib.suppress(anyio.BrokenResourceError, OSError):
                            await proc.stdin.send(token.password.encode())
                        await proc.stdin.aclose()
                returncode = await proc.wait()
            if returncode != 0:
                raise LoginError(
                    failure_reason(bytes(stderr), bytes(stdout), returncode, token.password)
                )
            written = await anyio.Path(workdir / CONFIG_NAME).read_bytes()
            entry = auth_entry(written, registry.host)
            # With a credsStore the secret went to the helper and docker
            # records the host with an empty entry; keep that too.
            self.logged_in[registry.host] = entry if entry is not None else {}
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
