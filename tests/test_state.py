"""auth/state.py: the state file's format and its records, read without trusting it and
changed under a lock. (The CLI's use of it, end to end, is in test_expiry.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runas_async.auth.state import VERSION, LoginRecord, State, StateFile

SALT = "ab" * 32
RECORD = {
    "expires_at": 1.5,
    "profile": "dev",
    "account": "1",
    "region": "us-east-1",
    "client": "docker",
    "store": "auths",
    "helper": None,
    "auth_hmac": "00",
}


def _doc(**changes: object) -> bytes:
    doc: dict[str, object] = {
        "version": VERSION,
        "salt": SALT,
        "logins": {"/a/config.json": {"h": RECORD}},
        "accounts": {"dev\nAKIA": "1"},
    }
    doc.update(changes)
    return json.dumps(doc).encode()


def test_a_state_file_reads_back_what_was_written() -> None:
    """dump() then parse() gives the same records, accounts and salt."""
    state = State.parse(_doc())
    assert state.salt == SALT
    assert state.logins == {"/a/config.json": {"h": LoginRecord(**RECORD)}}  # type: ignore[arg-type]
    assert state.accounts == {"dev\nAKIA": "1"}
    assert State.parse(state.dump()) == state


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(None, id="absent"),
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"[]", id="not-an-object"),
        pytest.param(_doc(version=VERSION + 1), id="other-version"),
        pytest.param(_doc(salt="short"), id="bad-salt"),
        pytest.param(b"\xff\xfe", id="not-utf8"),
    ],
)
def test_what_is_not_our_state_file_reads_as_empty(raw: bytes | None) -> None:
    """Anything that is not a state file of ours reads as empty, with a new salt."""
    state = State.parse(raw)
    assert state.logins == {} and state.accounts == {}
    assert state.salt != SALT and len(state.salt) == 64


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"expires_at": "soon"}, id="expiry-not-a-number"),
        pytest.param({"expires_at": float("nan")}, id="expiry-nan"),
        pytest.param({"profile": 7}, id="profile-not-text"),
        pytest.param({"helper": []}, id="helper-not-text"),
        pytest.param({"surprise": 1}, id="unknown-key"),
    ],
)
def test_a_bad_record_is_dropped_alone(change: dict[str, object]) -> None:
    """A record that is not one is left out; the file's other records stay."""
    logins = {"/a/config.json": {"bad": {**RECORD, **change}, "good": RECORD}}
    state = State.parse(_doc(logins=logins))
    assert set(state.logins["/a/config.json"]) == {"good"}


_WRITER = textwrap.dedent(
    """\
    import sys
    from pathlib import Path
    from runas_async.auth.state import LoginRecord, StateFile
    path, name, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    state = StateFile(path)
    for i in range(n):
        record = LoginRecord(1.0, name, None, "us-east-1", "docker", "auths", None, None)
        state.update(lambda s: s.logins.setdefault(name, {}).__setitem__(f"h{i}", record))
    """
)


def test_two_processes_writing_records_at_once_lose_none(tmp_path: Path) -> None:
    """Two processes updating the state file 60 times each at once: every record is kept."""
    path = tmp_path / "state" / "logins.json"
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(path), name, "60"])
        for name in ("a", "b")
    ]
    assert [w.wait(timeout=60) for w in writers] == [0, 0]
    state = StateFile(path).load()
    assert {name: len(hosts) for name, hosts in state.logins.items()} == {"a": 60, "b": 60}
