"""The one way a test gives up for a missing component: skip, or fail when CI requires it.

A test that needs something this machine may lack (the sandbox, a program, root) calls
:func:`missing` with what is missing. Locally that skips the test; with
``RUNAS_ASYNC_REQUIRE_SANDBOX=1`` (set by ``.ci/run``) it fails it, so CI cannot pass by
skipping the real-component tests. ``tests/test_sandbox.py`` checks that no test skips any
other way.
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest

__all__ = ["REQUIRE_SANDBOX", "missing", "need_program", "need_root"]

REQUIRE_SANDBOX = "RUNAS_ASYNC_REQUIRE_SANDBOX"


def missing(what: str) -> NoReturn:
    """Skip the running test because ``what`` is missing; fail it when CI requires everything."""
    __tracebackhide__ = True  # the skip is reported at the caller's line
    if os.environ.get(REQUIRE_SANDBOX) == "1":
        pytest.fail(f"{REQUIRE_SANDBOX}=1 but {what}")
    pytest.skip(what)


def need_program(name: str, install: str) -> str:
    """The path of program ``name`` on PATH, or :func:`missing` saying how to ``install`` it."""
    __tracebackhide__ = True
    path = shutil.which(name)
    if path is None:
        missing(f"{name} is not installed ({install})")
    return path


def need_root(why: str) -> None:
    """:func:`missing` unless running as root; ``why`` says what needs it."""
    __tracebackhide__ = True
    if os.geteuid() != 0:
        missing(f"not root: {why}")
