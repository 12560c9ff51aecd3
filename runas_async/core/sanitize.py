"""THE one sanitizer for text from outside: registry bodies, AWS messages, file content quoted
in an error, profile and host names from config. Pure.

Three steps, always in this order (:func:`clean`):

1. **Redact** every secret given (the password, the base64 ``auth`` value), any
   ``Basic …``/``Bearer …`` credential, and any long run of token characters that is a
   piece of a secret (a registry that quotes a cut-off header). Redaction comes first:
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
"""A run of token characters this long that is part of a secret is redacted: shorter runs
are too likely to be ordinary words."""

_SCHEME_CREDENTIAL = re.compile(r"(?i)\b(basic|bearer)(\s+)([A-Za-z0-9+/=._~-]+)")
_TOKEN_RUN = re.compile(rf"[A-Za-z0-9+/=._~-]{{{MIN_PIECE},}}")

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
    text = _SCHEME_CREDENTIAL.sub(_scheme_credential, text)
    long_ones = [s for s in kept if len(s) >= MIN_PIECE]
    if long_ones:

        def piece(m: re.Match[str]) -> str:
            run = m.group()
            return REDACTED if any(run in s for s in long_ones) else run

        text = _TOKEN_RUN.sub(piece, text)
    return text


def _scheme_credential(m: re.Match[str]) -> str:
    """``Basic QVdT…`` redacted; ``basic authentication`` (a word, not a credential) kept."""
    value = m[3]
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
