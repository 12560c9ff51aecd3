"""``-o json``: exactly one JSON document on stdout, whatever happens."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, TextIO

from runas_async.cli.formats._quiet import Quiet

if TYPE_CHECKING:
    from pathlib import Path

    from runas_async.auth.freshness import EcrLogin
    from runas_async.core.models import LoginResult
    from runas_async.core.plan import Plan
    from runas_async.engine import Reporter

DESCRIPTION = "one document"


def reporter(
    stream: TextIO, env: Mapping[str, str], *, logout: bool, live: bool, defer: bool
) -> Reporter:
    return JsonReporter(stream)


def plan(plan: Plan, stream: TextIO, *, logout: bool) -> None:
    """Every planned registry, with its token request (none for a logout)."""
    from runas_async.cli.formats._records import plan_records

    records = plan_records(plan)
    if logout:
        for record in records:
            del record["token_request"]
    json.dump({"results": records}, stream, indent=2)
    stream.write("\n")


def status(rows: Sequence[EcrLogin], auth_file: Path, stream: TextIO) -> None:
    """The registries, and the auth file they were read from (its path as the client finds
    it: ``$DOCKER_CONFIG/config.json``, podman's auth.json...)."""
    from runas_async.cli.formats._records import status_record

    document = {"auth_file": str(auth_file), "registries": [status_record(r) for r in rows]}
    json.dump(document, stream, indent=2)
    stream.write("\n")


def error(line: str, stream: TextIO) -> None:
    """The run's one document, carrying the error."""
    stream.write(json.dumps({"error": line, "results": []}, indent=2) + "\n")
    stream.flush()


class JsonReporter(Quiet):
    """Exactly one JSON document on the stream, at the end."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def start(self, plan: Plan) -> None:
        pass

    def update(self, result: LoginResult) -> None:
        pass

    def finish(self, results: Sequence[LoginResult]) -> None:
        from runas_async.cli.formats._records import result_record

        json.dump({"results": [result_record(r) for r in results]}, self.stream, indent=2)
        self.stream.write("\n")
        self.stream.flush()
