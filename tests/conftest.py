"""Shared fixtures: a clean environment for every test, moto alone, and the full sandbox.

``moto`` (per test) is moto and the ECR Public stand-in on 127.0.0.1 with the tool's files
(AWS config, DOCKER_CONFIG, HOME) in a temporary directory: reset for each test, needs no root,
no namespace and no registry, so it runs everywhere. Tests that only talk to the AWS APIs use it.

``sandbox`` (session) starts moto once; registries it starts live for the whole session, so a
host added by several tests runs once. ``sb`` (per test) is the same sandbox with moto reset,
no AWS config, an empty DOCKER_CONFIG and HOME, and every registry's credentials put back
afterwards if the test changed them.

When the machine cannot run the sandbox (see :func:`tests.sandbox.sandbox_missing`) the tests
that use it skip, or fail when ``RUNAS_ASYNC_REQUIRE_SANDBOX=1`` (set by CI): see
:func:`tests.missing.missing`.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests.missing import missing
from tests.sandbox import Moto, Sandbox, is_leaky_env_var, sandbox_missing

_HYPOTHESIS_HOME = tempfile.mkdtemp(prefix="runas-async-hypothesis-")
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", _HYPOTHESIS_HOME)
atexit.register(shutil.rmtree, _HYPOTHESIS_HOME, ignore_errors=True)
settings.register_profile("ci", settings.get_profile("ci"), derandomize=True, database=None)
settings.register_profile("local", settings.get_profile("default"), database=None)
settings.load_profile("ci" if os.environ.get("CI") else "local")
"""Hypothesis: no example database anywhere (a failure once must not make a checkout fail on
every later run); its other files (a cache of the constants in our source) go to a temporary
directory, so no ``.hypothesis/`` appears in the checkout. CI (``CI`` set) is also
derandomized, so a run there is repeatable. Loaded here, before any test module makes its
``settings``."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``long`` first, the rest in their order: with pytest-xdist's work stealing
    (``make test``) a long test started last would keep one worker busy alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


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
        missing(f"the sandbox cannot run: {reason}")
    with Sandbox(tmp_path_factory.mktemp("sandbox"), keep=True) as sb:
        yield sb


@pytest.fixture
def sb(sandbox: Sandbox) -> Iterator[Sandbox]:
    """The session sandbox, reset for one test; registry credentials restored after it."""
    sandbox.reset_moto()
    sandbox.reset_client()
    with sandbox.preserving_passwords():
        yield sandbox


@pytest.fixture(scope="session")
def moto_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moto]:
    """moto and the ECR Public stand-in for the session; no root, namespace or registry."""
    with Moto(tmp_path_factory.mktemp("moto"), keep=True) as moto:
        yield moto


@pytest.fixture
def moto(moto_session: Moto) -> Moto:
    """The session's moto, reset for one test: no state, no calls, no AWS config, empty HOME."""
    moto_session.reset_moto()
    moto_session.reset_client()
    return moto_session
