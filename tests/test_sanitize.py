"""core/sanitize.py: the one sanitizer for outside text (issue 19: redact first, strip
control and bidi characters, then shorten in the middle), and what the outputs make of it."""

from __future__ import annotations

import base64
import json

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from runas_async.auth.registry import _answer
from runas_async.cli.formats._records import result_record
from runas_async.cli.formats.github import github_summary
from runas_async.core.models import LoginResult, Registry, Status, Target, TokenKey
from runas_async.core.sanitize import (
    MAX_TEXT,
    REDACTED,
    clean,
    redact,
    shorten_middle,
    show,
    strip_controls,
)

PASSWORD = "eyJwYXlsb2FkIjoi" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODkw" * 48
AUTH = base64.b64encode(f"AWS:{PASSWORD}".encode()).decode()
SECRETS = (PASSWORD, AUTH)


def _controls(text: str) -> list[str]:
    return [c for c in text if ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or c in "\u202e\u2066"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(f"bad {PASSWORD}", f"bad {REDACTED}", id="password"),
        pytest.param(f"header Basic {AUTH}", f"header Basic {REDACTED}", id="basic-header"),
        pytest.param(f"got {AUTH[:150]}...", f"got {REDACTED}...", id="cut-auth-value"),
        pytest.param("Bearer abc.def-123_xyz", f"Bearer {REDACTED}", id="any-bearer"),
        pytest.param("basic authentication required", "basic authentication required", id="word"),
        pytest.param('Basic realm="x1"', 'Basic realm="x1"', id="challenge"),
        pytest.param("Basic realm=registry2", "Basic realm=registry2", id="challenge-bare"),
        pytest.param("Basic QVdTOnBhc3M=", f"Basic {REDACTED}", id="padded-base64"),
        pytest.param("no secret here", "no secret here", id="nothing"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    """The secrets, any piece of them of 12 or more characters, and Basic/Bearer credentials."""
    assert redact(text, SECRETS) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("\x1b[2Jcleared", "[2Jcleared", id="clear-screen"),
        pytest.param("\x1b[31mred\x1b[0m", "[31mred[0m", id="colour"),
        pytest.param("bell\x07", "bell", id="bel"),
        pytest.param("\u202eevil\u202c", "evil", id="rtl-override"),
        pytest.param("a\r\nb\tc", "a b c", id="white-space"),
        pytest.param("c1\x9bcsi", "c1csi", id="c1-csi"),
    ],
)
def test_strip_controls(text: str, expected: str) -> None:
    """Control and bidi characters go; white space controls become one space."""
    assert strip_controls(text) == expected


def test_redaction_comes_before_shortening() -> None:
    """Item 1: the whole 2 KB header is found and replaced, then the text is shortened."""
    body = json.dumps({"errors": [{"message": f"bad Authorization: Basic {AUTH} ({PASSWORD})"}]})
    message = clean(_answer("h", 401, body.encode()), SECRETS)
    head = "login attempt to h failed with status 401: bad Authorization: Basic"
    assert message == f"{head} {REDACTED} ({REDACTED})"


def test_shorten_in_the_middle_keeps_start_and_end() -> None:
    """A long text keeps its start and end, the middle elided, in exactly ``width``."""
    text = "start-" + "x" * 500 + "-end"
    short = shorten_middle(text, 40)
    assert len(short) == 40 and short.startswith("start-") and short.endswith("-end")
    assert "…" in short


def test_show_quotes_up_to_200_characters_whole() -> None:
    """Echoed input: whole up to 200 characters between the quotes, else start…end."""
    assert show("a" * 200) == repr("a" * 200)
    shown = show("b" + "a" * 5000 + "z")
    assert len(shown) == 202 and shown.startswith("'b") and shown.endswith("z'")


@settings(
    derandomize=True,
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    before=st.text(max_size=300),
    after=st.text(max_size=300),
    cut=st.integers(min_value=12, max_value=len(AUTH)),
    quote=st.sampled_from(["Basic ", "", "Bearer ", " "]),
)
def test_fuzzed_registry_bodies_leak_nothing(before: str, after: str, cut: int, quote: str) -> None:
    """Any registry body quoting (a piece of) the credentials, around any characters: the
    reason is one line of at most 200 characters with no control character and no piece
    of the password or the auth value."""
    secret = AUTH if cut % 2 else PASSWORD
    piece = secret[: min(cut, len(secret))]
    body = json.dumps({"errors": [{"message": f"{before}{quote}{piece} {after}"}]})
    message = clean(_answer("h", 401, body.encode()), SECRETS)
    assert len(message) <= MAX_TEXT
    assert not _controls(message)
    for s in SECRETS:
        assert not [s[i : i + 12] for i in range(len(s) - 11) if s[i : i + 12] in message]


def _failed(profile: str, error: str) -> LoginResult:
    registry = Registry("123456789012.dkr.ecr.us-east-1.amazonaws.com", "123456789012", "us-east-1")
    target = Target(TokenKey(profile, "us-east-1"), registry)
    return LoginResult(target, Status.FAILED, registry, error=error)


def test_step_summary_escapes_table_characters_in_every_column() -> None:
    """Item 2: a ``|`` in a profile (or a reason) cannot add a column to the summary's
    table; ``<`` starts no HTML; controls are gone."""
    summary = github_summary([_failed("a|b\x1b[2J", "no | way <img src=x>")])
    row = next(line for line in summary.splitlines() if "123456789012" in line)
    cells = [c for c in row.replace("\\|", "").split("|") if c.strip()]
    assert len(cells) == 4, row
    assert "a\\|b[2J" in row and "&lt;img" in row
    assert not _controls(row)


def test_json_record_strips_a_profile_names_escapes() -> None:
    """A profile name from a config file with escapes is shown without them."""
    record = result_record(_failed("dev\x1b]0;title\x07\u202e", "x"))
    assert record["profile"] == "dev]0;title"


@settings(derandomize=True, max_examples=300, deadline=None)
@given(body=st.one_of(st.binary(max_size=2000), st.text(max_size=2000).map(str.encode)))
def test_fuzzed_registry_bytes_give_one_clean_line(body: bytes) -> None:
    """Any bytes a registry answers with: the reason is one line of at most 200 characters
    with no control or bidi character (or the HTTP status alone)."""
    message = clean(_answer("h", 401, body), SECRETS)
    assert message.startswith("login attempt to h failed with status 401")
    assert len(message) <= MAX_TEXT
    assert not _controls(message)


@settings(derandomize=True, max_examples=200, deadline=None)
@given(message=st.text(max_size=500))
def test_fuzzed_json_error_messages_give_one_clean_line(message: str) -> None:
    """Any text as the ``errors[0].message`` of a well-formed error document."""
    body = json.dumps({"errors": [{"code": "X", "message": message}]}).encode()
    shown = clean(_answer("h", 401, body), SECRETS)
    assert len(shown) <= MAX_TEXT and not _controls(shown)


def test_aws_messages_are_cleaned_at_the_boundary() -> None:
    """An AWS error message (from a proxy, a stand-in, a hostile endpoint) with escapes and
    a quoted credential: one clean line through the one boundary (aws/boundary.py)."""
    import botocore.exceptions as bx

    from runas_async.aws.boundary import translate

    text = f"\x1b[2Jdenied\x07 \u202e Authorization: Bearer {PASSWORD}\r\n" + "x" * 1000
    error = bx.ClientError({"Error": {"Code": "AccessDenied", "Message": text}}, "Op")
    mapped = translate(error, profile="dev")
    assert mapped is not None
    shown = str(mapped)
    assert "AccessDenied: [2Jdenied Authorization: Bearer <redacted>" in shown
    assert not _controls(shown) and PASSWORD[:16] not in shown
    assert len(shown) < 600
