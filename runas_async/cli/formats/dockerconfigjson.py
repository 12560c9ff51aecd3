"""``-o dockerconfigjson`` (``ecr login``): the logins' ``{"auths": ...}`` with their
secrets on stdout; the run's progress goes to stderr as text."""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, TextIO

from runas_async.cli.formats import text

if TYPE_CHECKING:
    from pathlib import Path

    from runas_async.auth.freshness import EcrLogin
    from runas_async.core.plan import Plan
    from runas_async.engine import Reporter

DESCRIPTION = 'the logins\' {"auths": ...} with secrets'


def reporter(
    stream: TextIO, env: Mapping[str, str], *, logout: bool, live: bool, defer: bool
) -> Reporter:
    """Progress as text on stderr: stdout carries the document."""
    return text.reporter(sys.stderr, env, logout=logout, live=live, defer=defer)


def plan(plan: Plan, stream: TextIO, *, logout: bool) -> None:
    text.plan(plan, stream, logout=logout)


def status(rows: Sequence[EcrLogin], auth_file: Path, stream: TextIO) -> None:
    text.status(rows, auth_file, stream)


def error(line: str, stream: TextIO) -> None:
    """Nothing more: the line is on stderr."""


def dockerconfigjson(secrets: Mapping[str, tuple[str, str]]) -> str:
    """``{"auths": {HOST: {"username", "password", "auth"}}}``: what a Kubernetes
    ``kubernetes.io/dockerconfigjson`` Secret holds (as ``kubectl create secret
    docker-registry`` writes it). Secrets by design: this output exists to carry them."""
    auths = {
        host: {
            "username": username,
            "password": password,
            "auth": base64.b64encode(f"{username}:{password}".encode()).decode(),
        }
        for host, (username, password) in sorted(secrets.items())
    }
    return json.dumps({"auths": auths}, indent=2) + "\n"
