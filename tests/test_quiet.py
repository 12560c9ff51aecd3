"""No noise: the demo's headings carry no escape codes off a terminal, make targets say
nothing when all is well."""

from __future__ import annotations

import io
import os
import pty
import subprocess
from pathlib import Path

import pytest

from tests.demo import bold
from tests.missing import need_program

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "env",
    [{}, {"NO_COLOR": "1"}, {"TERM": "xterm", "NO_COLOR": "1"}],
    ids=["plain", "no-color", "term-and-no-color"],
)
def test_demo_headings_are_plain_in_a_pipe(env: dict[str, str]) -> None:
    """Piped (NO_COLOR or not), a demo heading is its text alone: no raw ANSI."""
    assert bold("starting moto", io.StringIO(), env) == "starting moto"


def test_demo_headings_are_bold_on_a_terminal_but_not_a_dumb_one() -> None:
    """On a terminal a heading is bold (NO_COLOR keeps bold); on TERM=dumb it is plain."""
    main, secondary = pty.openpty()
    try:
        with open(secondary, "w", closefd=False) as tty:
            assert bold("x", tty, {"TERM": "xterm", "NO_COLOR": "1"}) == "\x1b[1mx\x1b[0m"
            assert bold("x", tty, {"TERM": "dumb"}) == "x"
    finally:
        os.close(main)
        os.close(secondary)


@pytest.mark.long
def test_make_targets_are_quiet_when_all_is_well() -> None:
    """`make venv` and `make lint` print nothing at all on a clean tree (no uv chatter such
    as "Bytecode compiled N files", no commands echoed)."""
    need_program("make", "apt-get install make")
    for target in ("venv", "lint"):
        done = subprocess.run(
            ["make", "--no-print-directory", target],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout + done.stderr == "", target
