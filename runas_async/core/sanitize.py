"""THE one sanitizer for text from outside: registry bodies, AWS messages, file content quoted
in an error, profile and host names from config. Pure.

Three steps, always in this order (:func:`clean`):

1. **Redact** every secret given (the password, the base64 ``auth`` value), any piece of
   one of :data:`MIN_PIECE` characters or more (a registry that quotes a header it cut),
   and any ``Basic …``/``Bearer …`` credential. Redaction comes first:
   a secret cut in half by shortening would no longer be found.
2. **Strip** C0 and C1 control characters (ESC, BEL, CR...) and the bidi controls (U+202E
   and friends), which would clear a screen, colour it or reorder what a reader sees; white
   space controls become one space.
3. **Shorten** in the middle, keeping the start and the end.

:func:`show` quotes a value the user gave (``'value'``, escaped, at most :data:`MAX_SHOWN`
characters between the quotes, shortened in the middle).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "<redacted>"

MAX_TEXT = 200
"""Outside text quoted in a message is at most this long (after redaction)."""

MAX_SHOWN = 200
"""A value the user typed is quoted whole up to this many characters, else shortened in the
middle."""

MIN_PIECE = 12
"""A piece of a secret this long is redacted wherever it stands: shorter ones are too
likely to be ordinary text."""

PIECES_FROM = 64
"""Pieces are looked for in secrets this long or longer (a real ECR password is about 2 KB):
a short one (a test's ``123456789012-auth-token``) shares pieces with ordinary names."""

_SCHEME_CREDENTIAL = re.compile(r"(?i)\b(basic|bearer)(\s+)([A-Za-z0-9+/=._~-]+)")

_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_SPACES = "\t\n\v\f\r\x85\u2028\u2029"
_C0_C1 = "".join(map(chr, (*range(0x20), *range(0x7F, 0xA0))))
_CONTROL = re.compile(f"[{re.escape(_C0_C1 + _BIDI)}]")
_SPACE_RUN = re.compile(f"[ {re.escape(_SPACES)}]+")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without any of ``secrets``, piece of one, or ``Basic``/``Bearer`` credential."""
    kept = [s for s in secrets if s]
    for secret in sorted(kept, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    text = _redact_pieces(text, [s for s in kept if len(s) >= PIECES_FROM])
    return _SCHEME_CREDENTIAL.sub(_scheme_credential, text)


def _redact_pieces(text: str, secrets: list[str]) -> str:
    """Every stretch of ``text`` made of :data:`MIN_PIECE`-character pieces of a secret (a
    registry that quotes a header it cut, whatever stands around it) as one ``<redacted>``."""
    if not secrets or len(text) < MIN_PIECE:
        return text
    grams = {s[i : i + MIN_PIECE] for s in secrets for i in range(len(s) - MIN_PIECE + 1)}
    covered = bytearray(len(text))
    for i in range(len(text) - MIN_PIECE + 1):
        if text[i : i + MIN_PIECE] in grams:
            covered[i : i + MIN_PIECE] = b"\x01" * MIN_PIECE
    if not any(covered):
        return text
    out: list[str] = []
    for i, char in enumerate(text):
        if not covered[i]:
            out.append(char)
        elif i == 0 or not covered[i - 1]:
            out.append(REDACTED)
    return "".join(out)


def _scheme_credential(m: re.Match[str]) -> str:
    """``Basic QVdT…`` redacted; ``basic authentication`` (a word, not a credential) kept."""
    value = m[3]
    if "=" in value.rstrip("="):
        return m.group()  # ``realm=...``: a challenge's parameter (base64 pads at the end only)
    looks_encoded = len(value) >= 8 and any(c.isdigit() or c in "+/=" for c in value)
    if looks_encoded or len(value) >= 20:
        return f"{m[1]}{m[2]}{REDACTED}"
    return m.group()


def strip_controls(text: str) -> str:
    """``text`` with white space controls as one space and other control and bidi
    characters removed."""
    text = _CONTROL.sub("", _SPACE_RUN.sub(" ", text))
    return _SPACE_RUN.sub(" ", text)


def shorten_middle(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, its middle replaced by an ellipsis."""
    if len(text) <= width:
        return text
    if width < 2:
        return "…"[:width]
    tail = (width - 1) // 2
    return text[: width - 1 - tail] + "…" + (text[-tail:] if tail else "")


def clean(text: str, secrets: Iterable[str] = (), width: int = MAX_TEXT) -> str:
    """Outside ``text`` fit for a one-line message: redacted, stripped, then shortened."""
    return shorten_middle(strip_controls(redact(text, secrets)).strip(), width)


def show(value: str, width: int = MAX_SHOWN) -> str:
    """Quote a user-supplied value for a one-line message: ``repr`` (controls escaped), whole
    up to ``width`` characters between the quotes, else shortened in the middle."""
    keep = width
    quoted = repr(shorten_middle(value, keep))
    while len(quoted) > width + 2 and keep > 2:
        keep -= max(1, (len(quoted) - width - 2) // 4)
        quoted = repr(shorten_middle(value, keep))
    return quoted
