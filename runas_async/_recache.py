"""Regular expressions compiled once, not on every start: the one use of the ``re`` module's
private internals (``re._compiler``, ``_sre``), with the plain compile as its fallback.

Importing botocore, urllib3, aiohttp and the standard library modules they use compiles
about 180 patterns: 45 to 70 ms of the main thread before the first AWS request. What a
pattern compiles to (SRE code: a list of integers, and its groups) depends only on the
pattern, its flags and the interpreter, so a run keeps it in a cache file of ours
(``$XDG_CACHE_HOME/runas-async/re-cpython-311.json``) and the next run hands it straight to
``_sre.compile``, skipping the parser and the compiler (the file takes about 4 ms to read).

The rules:

* Only patterns compiled while a module is being imported are kept: their text is the
  module's own, never a value of the run (a profile, a host, a secret).
* The file is read only if it is ours alone and at most :data:`MAX_BYTES`
  (:func:`runas_async.files.read_trusted`). An entry of the wrong shape is skipped, and
  ``_sre`` validates the code of every entry it is given: one it refuses is compiled as
  usual. A broken file is never an error, only a plain start.
* It is written (atomically, our own file) only when a run spent :data:`WORTH` or more
  compiling import-time patterns that it did not hold, with at most :data:`MAX_PATTERNS`
  entries. Reading or writing it never warns: it is only speed, and a read-only HOME is
  no fault of the user's.
* The hook is installed only on the CPython versions whose ``re._compiler.compile`` was
  read (:data:`CHECKED`), with every piece it uses present; otherwise ``re`` is left alone.
"""

from __future__ import annotations

import array
import contextlib
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType
from typing import Any

CHECKED = ((3, 11), (3, 12), (3, 13))
"""The Python versions whose ``re._compiler.compile`` this module's :meth:`Cache.compile`
repeats (identical in all three)."""

MAX_BYTES = 2 * 1024 * 1024
"""The most we read or write of the cache file (a start-up's patterns take about 150 KB)."""

MAX_PATTERNS = 2000
"""The most patterns the file keeps (a start-up compiles about 180)."""

WORTH = 0.005
"""A run writes the file only when the patterns it lacked took at least this long to
compile (writing it takes about 4 ms). Some modules build a pattern from a set, whose
order changes from run to run (``email._header_value_parser``): those few never earn a
write on their own."""

_MAX_GROUPS = 1000
_MAX_FLAGS = 1 << 16


Entry = tuple[int, list[int], int, dict[str, int], tuple[str | None, ...]]
"""One compiled pattern as ``_sre.compile`` takes it after the pattern: its flags with the
inline ones (``(?i)``) added, its code, its group count, and its groups by name and by
number (a plain tuple: a typed NamedTuple costs 3 ms to define at start-up)."""

Key = tuple[str, int]
"""A pattern and the flags it was compiled with."""


def _internals() -> tuple[Any, Any, Any] | None:
    """``(re._compiler, re._parser, _sre)`` if every piece the hook uses is there, else None."""
    if sys.implementation.name != "cpython" or sys.version_info[:2] not in CHECKED:
        return None
    try:
        import _sre  # type: ignore[import-not-found]
        from re import _compiler, _parser  # type: ignore[attr-defined]
    except ImportError:
        return None
    pieces = (
        getattr(_compiler, "compile", None),
        getattr(_compiler, "_code", None),
        getattr(_parser, "parse", None),
        getattr(_sre, "compile", None),
    )
    if not all(callable(piece) for piece in pieces):
        return None
    if not isinstance(getattr(_compiler, "SRE_FLAG_DEBUG", None), int):
        return None
    if array.array("I").itemsize != getattr(_sre, "CODESIZE", None):
        return None
    return _compiler, _parser, _sre


def file_name() -> str:
    """The cache file's name for this interpreter: one per Python version."""
    return f"re-{sys.implementation.cache_tag}.json"


def cache_file(env: Mapping[str, str]) -> Path:
    """Where this interpreter's regex cache lives: our cache directory (places.py)."""
    from runas_async.core import places

    return places.cache_dir(env) / file_name()


def _importing() -> bool:
    """Whether a module is being imported further up the stack (importlib runs a module's
    code through ``_call_with_frames_removed``)."""
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        code = frame.f_code
        if code.co_name == "_call_with_frames_removed" and code.co_filename.startswith(
            "<frozen importlib"
        ):
            return True
        frame = frame.f_back
    return False


class Cache:
    """The patterns of the cache file, and the import-time ones this run compiled anew.

    :meth:`compile` stands in for ``re._compiler.compile``; the file is read at its first
    call (a run that compiles nothing never reads it), and only then is its place asked
    of ``where`` (which may import modules that compile patterns themselves).
    """

    def __init__(self, where: Callable[[], Path], internals: tuple[Any, Any, Any]) -> None:
        self._where = where
        self._path: Path | None = None
        self._compiler, self._parser, self._sre = internals
        self.plain: Callable[..., Any] = self._compiler.compile
        self._table: dict[Key, Entry] | None = None
        self.new: dict[Key, Entry] = {}
        """Patterns compiled while a module imported that were not in the table then."""
        self._spent: dict[Key, float] = {}
        """The time each of :attr:`new` took to compile."""
        self.used: set[Key] = set()
        """The table's patterns this run took."""

    @property
    def path(self) -> Path:
        if self._path is None:
            self._path = self._where()
        return self._path

    @property
    def table(self) -> dict[Key, Entry]:
        if self._table is None:
            self._table = {}  # what reading the file imports and compiles misses the table
            from runas_async.files import read_trusted

            data = read_trusted(self.path, MAX_BYTES, "regex cache")
            self._table = load(data)
            if data and not self._table:
                import logging

                logging.getLogger(__name__).debug(
                    "regex cache %s not used: no entry for this Python", self.path
                )
        return self._table

    def compile(self, p: Any, flags: int = 0) -> Any:
        """``re._compiler.compile``: from the file when it holds ``(p, flags)``, else as
        ``re`` itself does it (the same steps), noting the result when a module is being
        imported. Whatever goes wrong on the way is ``re``'s own compile's to answer (a
        bad pattern's ``re.error`` included)."""
        if (
            type(p) is not str
            or not isinstance(flags, int)
            or flags & self._compiler.SRE_FLAG_DEBUG
        ):
            return self.plain(p, flags)
        try:
            return self._compile(p, int(flags))
        except Exception:
            return self.plain(p, flags)

    def _compile(self, p: str, flags: int) -> Any:
        key = (p, flags)
        entry = self.table.get(key)
        if entry is not None:
            try:
                compiled = self._sre.compile(p, *entry)
            except (RuntimeError, TypeError, ValueError, OverflowError):
                del self.table[key]  # code _sre refuses: compiled below, and written anew
            else:
                self.used.add(key)
                return compiled
        started = time.perf_counter()
        parsed = self._parser.parse(p, flags)
        code = self._compiler._code(parsed, flags)
        groupindex = parsed.state.groupdict
        indexgroup: list[str | None] = [None] * parsed.state.groups
        for name, index in groupindex.items():
            indexgroup[index] = name
        entry = (
            flags | parsed.state.flags,
            code,
            parsed.state.groups - 1,
            dict(groupindex),
            tuple(indexgroup),
        )
        compiled = self._sre.compile(p, *entry)
        if _importing():
            self.new[key] = entry
            self._spent[key] = time.perf_counter() - started
        return compiled

    @property
    def hits(self) -> int:
        """How many patterns this run took from the table."""
        return len(self.used)

    def save(self) -> bool:
        """Write the file if this run compiled import-time patterns it did not hold, and
        they took longer than :data:`WORTH`; True when written. Never raises for the
        file's sake (the reason is a DEBUG line).

        The file keeps, in this order and up to :data:`MAX_PATTERNS`: the patterns this
        run took from it, the new ones, then the rest of it (another command's).
        """
        fresh = {k: v for k, v in self.new.items() if k not in self.table}
        if sum(self._spent[k] for k in fresh) < WORTH:
            return False
        table = self.table
        rows = [
            *((k, table[k]) for k in table if k in self.used),
            *fresh.items(),
            *((k, table[k]) for k in table if k not in self.used),
        ]
        data = dump(dict(rows[:MAX_PATTERNS]))
        if len(data) > MAX_BYTES:
            return False
        from runas_async.files import atomic_write, our_dir

        try:
            our_dir(self.path.parent)
            atomic_write(self.path, data, 0o600, through_links=False, durable=False)
        except OSError as e:
            import logging

            logging.getLogger(__name__).debug("regex cache %s not written: %s", self.path, e)
            return False
        return True


def dump(table: dict[Key, Entry]) -> bytes:
    """The cache file for ``table``: JSON, each pattern's code as base64 of its integers."""
    import base64
    import json

    rows = [
        [
            p,
            flags,
            final,
            base64.b64encode(array.array("I", code).tobytes()).decode(),
            groups,
            groupindex,
            list(indexgroup),
        ]
        for (p, flags), (final, code, groups, groupindex, indexgroup) in table.items()
    ]
    return json.dumps({"python": sys.implementation.cache_tag, "patterns": rows}).encode()


def load(data: bytes | None) -> dict[Key, Entry]:
    """The entries of a cache file that have the right shape; anything else is skipped (a
    file that is not one at all gives none)."""
    from runas_async.core.errors import ConfigError
    from runas_async.files import parse_json

    if not data:
        return {}
    try:
        doc = parse_json(data, what="regex cache")
    except ConfigError:
        return {}
    if not isinstance(doc, dict) or doc.get("python") != sys.implementation.cache_tag:
        return {}
    rows = doc.get("patterns")
    table: dict[Key, Entry] = {}
    for row in rows[:MAX_PATTERNS] if isinstance(rows, list) else ():
        found = _entry(row)
        if found is not None:
            table[found[0]] = found[1]
    return table


def _int(value: object, limit: int) -> bool:
    return type(value) is int and 0 <= value < limit


def _entry(row: object) -> tuple[Key, Entry] | None:
    """One row of the file as an entry, or None when it has the wrong shape."""
    import base64
    import binascii

    if not isinstance(row, list) or len(row) != 7:
        return None
    p, flags, final, code64, groups, groupindex, indexgroup = row
    if not (isinstance(p, str) and _int(flags, _MAX_FLAGS) and _int(final, _MAX_FLAGS)):
        return None
    if not (isinstance(code64, str) and _int(groups, _MAX_GROUPS)):
        return None
    if not isinstance(groupindex, dict) or not isinstance(indexgroup, list):
        return None
    if len(indexgroup) != groups + 1 or not all(
        g is None or isinstance(g, str) for g in indexgroup
    ):
        return None
    if not all(isinstance(k, str) and _int(v, groups + 1) for k, v in groupindex.items()):
        return None
    try:
        raw = base64.b64decode(code64, validate=True)
    except (binascii.Error, ValueError):
        return None
    if not raw or len(raw) % 4:
        return None
    code = array.array("I", raw).tolist()
    return (p, flags), (final, code, groups, groupindex, tuple(indexgroup))


def install(where: Callable[[], Path]) -> Cache | None:
    """Compile regular expressions through a :class:`Cache` whose file ``where`` names from
    now on; None (``re`` left as it is) where the hook is not known to fit."""
    internals = _internals()
    if internals is None:
        return None
    cache = Cache(where, internals)
    internals[0].compile = cache.compile
    return cache


def uninstall(cache: Cache) -> None:
    """Put ``re``'s own compile back (tests; the console scripts exit instead)."""
    with contextlib.suppress(AttributeError):
        if cache._compiler.compile == cache.compile:
            cache._compiler.compile = cache.plain
