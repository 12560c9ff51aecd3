"""The regex cache (runas_async/_recache.py): what it hands ``_sre`` is what ``re`` itself would
compile, it keeps no pattern made of a run's values, and a broken or strange file is only a
plain start."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runas_async import _recache

PLAIN = re._compiler.compile  # type: ignore[attr-defined]
"""``re``'s own compile, as this test process has it (no hook installed here)."""

START_UP = """
import sys
from pathlib import Path
from runas_async import _recache
cache = _recache.install(lambda: Path(sys.argv[1]))
import aiobotocore.session, aiohttp, botocore.client  # what a login imports
import re
re.compile("runtime-" + sys.argv[2])  # a run's value: never kept
print(cache.hits, len(cache.new), cache.save())
"""


def _start_up(path: Path, value: str = "x") -> tuple[int, int, bool]:
    """A process that imports what a login imports through the hook; its hits, new
    patterns and whether it wrote the file."""
    done = subprocess.run(
        [sys.executable, "-c", START_UP, str(path), value],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    hits, new, saved = done.stdout.split()
    return int(hits), int(new), saved == "True"


@pytest.fixture(scope="module")
def start_up_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cache file a real start-up writes (one process, shared by the module's tests)."""
    path = tmp_path_factory.mktemp("cache") / "runas-async" / _recache.file_name()
    hits, new, saved = _start_up(path, "secret-value-1234")
    assert (hits, saved) == (0, True)
    assert new > 100
    return path


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[_recache.Cache]:
    """A hook installed in this process for one test (``re``'s own cache purged around it)."""
    re.purge()
    installed = _recache.install(lambda: tmp_path / "runas-async" / _recache.file_name())
    assert installed is not None
    try:
        yield installed
    finally:
        _recache.uninstall(installed)
        re.purge()


def test_what_the_file_holds_is_what_re_compiles(start_up_file: Path) -> None:
    """Every pattern a start-up keeps, built from the file, equals ``re``'s own compile of it:
    same code, flags and pattern (Pattern equality), and the same groups."""
    table = _recache.load(start_up_file.read_bytes())
    assert len(table) > 100
    import _sre  # type: ignore[import-not-found]

    for (pattern, flags), entry in table.items():
        ours, theirs = _sre.compile(pattern, *entry), PLAIN(pattern, flags)
        assert ours == theirs, pattern
        assert (ours.groups, ours.groupindex) == (theirs.groups, theirs.groupindex), pattern


def test_the_next_start_up_takes_its_patterns_from_the_file(start_up_file: Path) -> None:
    """The second start-up takes its patterns from the file and writes nothing: the few it
    compiles anew are built from sets (their order changes from run to run), too cheap to
    earn a write."""
    before = start_up_file.read_bytes()
    hits, new, saved = _start_up(start_up_file)
    assert hits > 100
    assert new < 20
    assert not saved
    assert start_up_file.read_bytes() == before
    assert oct(start_up_file.stat().st_mode & 0o777) == "0o600"


def test_a_runs_own_values_are_never_kept(start_up_file: Path) -> None:
    """Only patterns compiled while a module imports are written: not one built at run time
    from a value (here a stand-in for a secret)."""
    assert b"secret-value-1234" not in start_up_file.read_bytes()
    assert b"runtime-" not in start_up_file.read_bytes()


def test_an_import_time_pattern_is_kept_and_a_run_time_one_is_not(
    cache: _recache.Cache, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "recache_probe_module.py").write_text(
        'import re\nPATTERN = re.compile(r"imported-(?P<n>[0-9]+)")\n'
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(_recache, "WORTH", 0.0)
    importlib.import_module("recache_probe_module")
    re.compile(r"at-run-time-[0-9]+")
    assert (r"imported-(?P<n>[0-9]+)", 0) in cache.new
    assert not any("at-run-time" in p for p, _ in cache.new)
    assert cache.save()
    assert set(_recache.load(cache.path.read_bytes())) == set(cache.new)


def test_a_hit_is_the_pattern_re_compiles(cache: _recache.Cache) -> None:
    text = r"(?i)^(?P<scheme>https?)://(?P<host>[^/:]+)(?::(\d+))?$"
    cache.table[(text, 0)] = _entry_of(text, 0)
    compiled = re.compile(text)
    assert cache.hits == 1
    assert compiled == PLAIN(text, 0)
    assert compiled.match("HTTPS://example.com:443").group("host") == "example.com"  # type: ignore[union-attr]


def _entry_of(text: str, flags: int) -> _recache.Entry:
    """The entry ``re`` would make, taken from a throwaway cache."""
    probe = _recache.Cache(lambda: Path("/nonexistent"), _recache._internals())  # type: ignore[arg-type]
    probe._table = {}
    with pytest.MonkeyPatch.context() as m:
        m.setattr(_recache, "_importing", lambda: True)
        probe.compile(text, flags)
    return probe.new[(text, flags)]


def test_code_sre_refuses_is_compiled_as_usual(cache: _recache.Cache) -> None:
    """A file entry with code ``_sre`` refuses: the pattern is compiled as ``re`` does, and
    the entry is dropped (the next save writes it anew)."""
    good = _entry_of("abc+", 0)
    cache.table[("abc+", 0)] = (good[0], [999999, 1, 2], *good[2:])
    assert re.compile("abc+") == PLAIN("abc+", 0)
    assert cache.hits == 0
    assert ("abc+", 0) not in cache.table


def test_bad_patterns_raise_res_own_error(cache: _recache.Cache) -> None:
    with pytest.raises(re.error, match="missing \\)"):
        re.compile("(unclosed")
    assert re.compile(b"bytes+") == PLAIN(b"bytes+", 0)  # not ours to keep: passed on


def test_a_file_that_is_not_ours_alone_is_not_read(start_up_file: Path, tmp_path: Path) -> None:
    """Read through files.read_trusted: a file others may read or write is a plain start."""
    copy = tmp_path / "mine" / _recache.file_name()
    copy.parent.mkdir(mode=0o700)
    copy.write_bytes(start_up_file.read_bytes())
    os.chmod(copy, 0o644)
    loose = _recache.Cache(lambda: copy, _recache._internals())  # type: ignore[arg-type]
    assert loose.table == {}
    os.chmod(copy, 0o600)
    tight = _recache.Cache(lambda: copy, _recache._internals())  # type: ignore[arg-type]
    assert len(tight.table) > 100


def test_another_pythons_file_is_not_used(start_up_file: Path) -> None:
    doc = json.loads(start_up_file.read_bytes())
    doc["python"] = "cpython-399"
    assert _recache.load(json.dumps(doc).encode()) == {}


def test_without_the_hook_re_is_left_alone(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The fallback: an interpreter the hook was not read against, or one missing a piece,
    installs nothing and compiles as always."""
    monkeypatch.setattr(_recache, "CHECKED", ())
    assert _recache.install(lambda: tmp_path / "c.json") is None
    assert re._compiler.compile is PLAIN  # type: ignore[attr-defined]
    monkeypatch.undo()
    monkeypatch.delattr(re._compiler, "_code")  # type: ignore[attr-defined]
    assert _recache.install(lambda: tmp_path / "c.json") is None
    assert re._compiler.compile is PLAIN  # type: ignore[attr-defined]


def test_a_login_without_the_hook(tmp_path: Path) -> None:
    """The console script with the hook taken away still starts and parses (``--version``
    and an argument error), and writes no cache file."""
    script = textwrap.dedent(
        """
        from runas_async import _recache
        _recache.CHECKED = ()
        from runas_async.cli import run
        run()
        """
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    for args, code in ((["--version"], 0), (["ecr", "login", "--client", "nope", "p"], 2)):
        done = subprocess.run(
            [sys.executable, "-c", script, *args], env=env, capture_output=True, timeout=60
        )
        assert done.returncode == code, done.stderr
    assert not (tmp_path / "runas-async").exists()


# -- hostile files --------------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=8) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=10,
)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300) | _json.map(lambda v: json.dumps(v).encode()))
def test_any_bytes_load_to_well_formed_entries_or_none(data: bytes) -> None:
    table = _recache.load(data)
    assert isinstance(table, dict)


@settings(max_examples=100, deadline=None)
@given(
    row=st.lists(_json, min_size=7, max_size=7),
    code=st.lists(st.integers(0, 2**32 - 1), max_size=20),
)
def test_hostile_rows_never_break_a_compile(row: list[object], code: list[int]) -> None:
    """Rows of any shape, and well-shaped rows with any code: loading never raises, and a
    compile through them never raises; what _sre refuses is compiled as re does."""
    import array
    import base64

    code64 = base64.b64encode(array.array("I", code).tobytes()).decode()
    shaped = ["ab*c", 0, 32, code64, 0, {}, [None]]
    doc = {"python": sys.implementation.cache_tag, "patterns": [row, shaped]}
    table = _recache.load(json.dumps(doc).encode())
    probe = _recache.Cache(lambda: Path("/nonexistent"), _recache._internals())  # type: ignore[arg-type]
    probe._table = table
    compiled = probe.compile("ab*c", 0)
    if probe.hits == 0:
        assert compiled == PLAIN("ab*c", 0)


def _row(text: str) -> list[object]:
    """A well-formed file row for ``text``."""
    return json.loads(_recache.dump({(text, 0): _entry_of(text, 0)}))["patterns"][0]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("index", "value"),
    [
        (0, 7),  # the pattern: text only
        (1, True),  # flags: an int, not a bool
        (1, -1),
        (2, 1 << 40),
        (3, "not base64!"),
        (3, "AAA="),  # two bytes: not whole code words
        (3, ""),
        (4, -1),  # groups
        (5, {"g": 9}),  # a group index past the groups
        (5, {"g": "1"}),
        (6, [None]),  # indexgroup: one name per group, plus the zeroth
        (6, [None, 3]),
    ],
)
def test_a_row_of_the_wrong_shape_is_skipped(index: int, value: object) -> None:
    good, bad = _row("(?P<g>a)b"), _row("(?P<g>c)d")
    bad[index] = value
    doc = {"python": sys.implementation.cache_tag, "patterns": [good, bad]}
    assert list(_recache.load(json.dumps(doc).encode())) == [("(?P<g>a)b", 0)]


def test_a_mutated_real_file_loads(start_up_file: Path) -> None:
    """200 bytes spread over a real file, each flipped in turn: every one loads (fewer
    entries, or none), never raises."""
    data = start_up_file.read_bytes()
    whole = len(_recache.load(data))
    for i in range(0, len(data), max(1, len(data) // 200)):
        mutated = bytearray(data)
        mutated[i] ^= 0x5A
        assert len(_recache.load(bytes(mutated))) <= whole


def test_a_file_it_cannot_use_is_a_debug_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Never a warning (it is only speed), but --debug says why the file went unused."""
    path = tmp_path / "mine" / _recache.file_name()
    path.parent.mkdir(mode=0o700)
    path.write_bytes(b'{"python": "cpython-399", "patterns": []}')
    os.chmod(path, 0o600)
    probe = _recache.Cache(lambda: path, _recache._internals())  # type: ignore[arg-type]
    with caplog.at_level("DEBUG", logger="runas_async"):
        assert probe.table == {}
    assert [r.levelname for r in caplog.records] == ["DEBUG"]
    assert "not used" in caplog.text
