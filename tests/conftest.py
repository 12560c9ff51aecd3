"""Shared fixtures: a clean environment for every test, and the real-component sandbox.

``sandbox`` (session) starts moto once; registries it starts live for the whole session, so a
host added by several tests runs once. ``sb`` (per test) is the same sandbox with moto reset,
no AWS config, an empty DOCKER_CONFIG and HOME, and every registry's credentials put back
afterwards if the test changed them.

When the machine cannot run the sandbox (see :func:`tests.sandbox.sandbox_missing`) the tests
that use it skip, or fail when ``RUNAS_ASYNC_REQUIRE_SANDBOX=1`` (set by CI).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.sandbox import Sandbox, is_leaky_env_var, sandbox_missing

REQUIRE_SANDBOX = "RUNAS_ASYNC_REQUIRE_SANDBOX"


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Drop AWS_*, DOCKER_*, proxy, colour and MFA_CODE variables of the developer's shell."""
    for name in list(os.environ):
        if is_leaky_env_var(name):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """One sandbox for the session; its files stay in pytest's temporary directory."""
    reason = sandbox_missing()
    if reason is not None:
        if os.environ.get(REQUIRE_SANDBOX) == "1":
            pytest.fail(f"{REQUIRE_SANDBOX}=1 but the sandbox cannot run: {reason}")
        pytest.skip(f"sandbox unavailable: {reason}")
    with Sandbox(tmp_path_factory.mktemp("sandbox"), keep=True) as sb:
        yield sb


@pytest.fixture
def sb(sandbox: Sandbox) -> Iterator[Sandbox]:
    """The session sandbox, reset for one test; registry credentials restored after it."""
    sandbox.reset_moto()
    sandbox.reset_client()
    with sandbox.preserving_passwords():
        yield sandbox
