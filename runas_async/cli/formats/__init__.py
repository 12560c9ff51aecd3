"""Output formats: one module per :class:`~runas_async.core.options.Output` member, named
by its value (``text.py``, ``json.py``, ``dockerconfigjson.py``), each meeting :class:`Format`.

This package is the one place a format is chosen: commands call :func:`reporter`,
:func:`render_plan`, :func:`render_status` and :func:`report_error` with the ``Output`` they
were given, and the format's own module does the rest. A new format is one enum member, one
module here and its tests. What is not picked with ``-o`` lives here too: the live table a
text run shows on a terminal (table.py), the records JSON documents share (_records.py), the
Kubernetes Secret (k8s.py) and the GitHub Actions summary and outputs (github.py).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, TextIO, cast

from runas_async.core.options import Output

if TYPE_CHECKING:
    from pathlib import Path

    from runas_async.auth.freshness import EcrLogin
    from runas_async.core.plan import Plan
    from runas_async.engine import Reporter

__all__ = ["Format", "describe", "module", "render_plan", "render_status", "report_error"]


class Format(Protocol):
    """What each format's module provides."""

    DESCRIPTION: str
    """One line for ``-o``'s help."""

    def reporter(
        self, stream: TextIO, env: Mapping[str, str], *, logout: bool, live: bool, defer: bool
    ) -> Reporter:
        """The run's reporter on ``stream`` (``live``: a live display is allowed; ``defer``:
        it waits for ``begin``)."""

    def plan(self, plan: Plan, stream: TextIO, *, logout: bool) -> None:
        """A dry run's plan (for logout: no token requests)."""

    def status(self, rows: Sequence[EcrLogin], auth_file: Path, stream: TextIO) -> None:
        """``ecr status``'s registries, read from ``auth_file``."""

    def error(self, line: str, stream: TextIO) -> None:
        """A run stopped by ``line`` (already on stderr) before it reported anything."""


def module(output: Output) -> Format:
    """The module of ``output``: imported when first asked for."""
    return cast(Format, importlib.import_module(f"{__name__}.{output.value}"))


def describe(output: Output) -> str:
    return module(output).DESCRIPTION


def reporter(
    output: Output,
    stream: TextIO,
    env: Mapping[str, str],
    *,
    logout: bool = False,
    live: bool = True,
    defer: bool = False,
) -> Reporter:
    return module(output).reporter(stream, env, logout=logout, live=live, defer=defer)


def render_plan(plan: Plan, output: Output, stream: TextIO, *, logout: bool = False) -> None:
    module(output).plan(plan, stream, logout=logout)


def render_status(
    rows: Sequence[EcrLogin], auth_file: Path, output: Output, stream: TextIO
) -> None:
    module(output).status(rows, auth_file, stream)
    stream.flush()


def report_error(line: str, output: Output, stream: TextIO) -> None:
    module(output).error(line, stream)
