"""A missing component skips a test locally and fails it in CI, through one helper only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.missing import REQUIRE_SANDBOX, missing, need_program

REPO = Path(__file__).resolve().parent.parent
HELPER = REPO / "tests" / "missing.py"
SKIPS = {"skip", "skipif", "importorskip"}


def _skips_outside_the_helper() -> list[str]:
    found = []
    for path in sorted([*(REPO / "tests").glob("*.py"), *(REPO / "bench").glob("*.py")]):
        if path == HELPER:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        attributes = [node for node in ast.walk(tree) if isinstance(node, ast.Attribute)]
        # pytest.skip.Exception names the exception, to expect it: not a skip
        named = {id(node.value) for node in attributes if node.attr == "Exception"}
        found += [
            f"{path.relative_to(REPO)}:{node.lineno}: .{node.attr}"
            for node in attributes
            if node.attr in SKIPS and id(node) not in named
        ]
    return found


def test_no_test_skips_except_through_the_helper() -> None:
    """No pytest.skip, skipif or importorskip outside tests/missing.py, so CI can refuse all."""
    assert _skips_outside_the_helper() == []


def _outcome(what: str) -> tuple[str, str]:
    """What :func:`missing` does with ``what``: ("skip" or "fail", its message)."""
    try:
        missing(what)
    except pytest.skip.Exception as e:
        return "skip", str(e)
    except pytest.fail.Exception as e:
        return "fail", str(e)


def test_missing_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without RUNAS_ASYNC_REQUIRE_SANDBOX=1 a missing component skips, naming it."""
    monkeypatch.delenv(REQUIRE_SANDBOX, raising=False)
    assert _outcome("podman is not installed") == ("skip", "podman is not installed")


def test_missing_fails_when_ci_requires_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    """With RUNAS_ASYNC_REQUIRE_SANDBOX=1 a missing component is a failure, not a skip."""
    monkeypatch.setenv(REQUIRE_SANDBOX, "1")
    assert _outcome("podman is not installed") == (
        "fail",
        f"{REQUIRE_SANDBOX}=1 but podman is not installed",
    )


def test_program_found_or_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """need_program gives the path of a program that is there and names one that is not."""
    monkeypatch.delenv(REQUIRE_SANDBOX, raising=False)
    assert Path(need_program("sh", "apt-get install dash")).name == "sh"
    with pytest.raises(pytest.skip.Exception, match="no-such-program-here is not installed"):
        need_program("no-such-program-here", "apt-get install it")
