"""The live table at every width: laid out (60 to 250 columns), and as a real terminal shows it.

The terminal tests run `runas-async ecr login` on a pseudo-terminal of a given size (moto
for AWS, a stand-in docker that refuses one registry) and feed everything it wrote to pyte, a
terminal emulator: what is checked is the final screen, not the code that draws it.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import textwrap
import time
from collections.abc import Mapping
from pathlib import Path

import pyte
import pytest

from runas_async.cli.formats.table import ONE_LINE_FROM, Row, layout
from runas_async.core.models import Registry
from tests.sandbox import STATIC_KEYS, Moto, ecr_host

ACCOUNTS = ("123456789012", "210987654321", "444400000001", "999999999999")
REGIONS = ("ap-southeast-2", "eu-central-1", "us-east-1", "ca-central-1")
REFUSED = ACCOUNTS[3]
"""The stand-in docker refuses this account's registry, with a long reason."""
REASON = (
    "login attempt to https://{host}/v2/ failed with status: 401 Unauthorized "
    "(the registry refused the token: check the role's ecr:GetAuthorizationToken permission)"
)
STATE_WORDS = ("waiting for MFA code", "waiting for token", "retrying 2/5", "logging in", "ok")


def _rows(profile: str = "production-admin") -> list[Row]:
    rows = []
    for i, (account, region) in enumerate(zip(ACCOUNTS, REGIONS, strict=True)):
        host = ecr_host(account, region)
        state = STATE_WORDS[i % len(STATE_WORDS)]
        rows.append(Row(host, Registry(host, account, region), profile, state, "", "12.3s"))
    rows.append(Row("ops's own registry in us-west-2", None, "ops", "failed", "", "0.4s"))
    return rows


def _shown_host(text: str, row: Row) -> bool:
    """The host whole, or shortened in the middle keeping its account and region."""
    if text == row.host:
        return True
    if row.registry is None or row.registry.account is None:
        return "…" in text and row.host.startswith(text.split("…")[0])
    account, region = row.registry.account, row.registry.region
    return text.startswith(f"{account}…{region}") and row.host.endswith(text.split("…")[-1])


@pytest.mark.parametrize("width", range(60, 251))
def test_layout_fits_every_width_from_60_to_250(width: int) -> None:
    """Rows fit the width (one line from 80 on), hosts are whole or middle-shortened, state
    words whole."""
    rows = _rows()
    lines = ["".join(text for text, _ in line) for line in layout(rows, width)]
    assert all(len(line) <= width for line in lines), lines
    two_lines = lines[0].strip() == "registry"  # the header, too, takes two lines
    body = lines[2:] if two_lines else lines[1:]
    per_row = len(body) // len(rows)
    assert len(body) == per_row * len(rows)
    assert per_row == 1 or (per_row == 2 and width < ONE_LINE_FROM)
    for row, first in zip(rows, body[::per_row], strict=True):
        host = first.split("  ")[0]
        assert _shown_host(host, row), (host, row.host)
        if width >= 120:
            assert host == row.host  # room enough: nothing is shortened
        whole = " ".join(body[body.index(first) : body.index(first) + per_row])
        assert f"  {row.state}  " in whole + "  ", (row.state, whole)


def test_host_shrinks_last() -> None:
    """With too little room, the profile is shortened before any host is."""
    rows = _rows(profile="a-very-long-profile-name-indeed")
    widest = max(len(r.host) for r in rows)
    lines = ["".join(text for text, _ in line) for line in layout(rows, 100)]
    assert any(r.host in line for r in rows for line in lines)
    assert len(lines[1].split("  ")[0].rstrip()) == widest
    assert "a-very-long-profile-name-indeed" not in "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# On a real terminal
# ---------------------------------------------------------------------------------------------

DOCKER = textwrap.dedent(
    """\
    #!{python}
    import base64, json, os, sys, time
    host = sys.argv[-1]
    password = sys.stdin.read()
    time.sleep(0.3)  # long enough for the table to be drawn a few times
    if host.startswith("{refused}."):
        sys.exit("Error response from daemon: " + {reason!r}.format(host=host))
    path = os.path.join(os.environ["DOCKER_CONFIG"], "config.json")
    doc = json.load(open(path)) if os.path.exists(path) else {{}}
    auth = base64.b64encode(("AWS:" + password).encode()).decode()
    doc.setdefault("auths", {{}})[host] = {{"auth": auth}}
    json.dump(doc, open(path, "w"))
    """
)


def _setup(moto: Moto) -> tuple[dict[str, str], list[str]]:
    """A profile, a stand-in docker on PATH, and the hosts to log into."""
    moto.write_aws_config({"production-admin": {"region": "us-east-1", **STATIC_KEYS}})
    bin_dir = moto.workdir / "table-bin"
    bin_dir.mkdir(exist_ok=True)
    docker = bin_dir / "docker"
    docker.write_text(DOCKER.format(python=sys.executable, refused=REFUSED, reason=REASON))
    docker.chmod(0o755)
    env = moto.env(PATH=f"{bin_dir}:{os.environ['PATH']}", TERM="xterm-256color")
    env.pop("COLUMNS", None)
    env.pop("LINES", None)
    hosts = [ecr_host(a, r) for a, r in zip(ACCOUNTS, REGIONS, strict=True)]
    return env, hosts


def run_on_pty(
    argv: list[str], env: Mapping[str, str], columns: int, lines: int = 60
) -> tuple[int, bytes]:
    """Run ``argv`` with a ``columns`` x ``lines`` pseudo-terminal as stdin, stdout and
    stderr; everything it wrote, as the terminal received it."""
    main, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
    process = subprocess.Popen(
        argv,
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        env=dict(env),
        start_new_session=True,
    )
    os.close(secondary)
    output = b""
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(main, 65536)
                except OSError:  # EIO: the terminal's last holder is gone
                    break
                if not chunk:
                    break
                output += chunk
            elif process.poll() is not None:
                break
        returncode = process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(main)
    return returncode, output


def final_screen(output: bytes, columns: int, lines: int = 60) -> list[str]:
    """The lines a ``columns``-wide terminal shows once ``output`` is written to it."""
    screen = pyte.Screen(columns, lines)
    stream = pyte.ByteStream(screen)
    stream.feed(output.replace(b"\n", b"\r\n") if b"\r\n" not in output else output)
    shown = [line.rstrip() for line in screen.display]
    while shown and not shown[-1]:
        shown.pop()
    return shown


@pytest.mark.parametrize("columns", [80, 100, 200])
def test_final_screen_on_a_real_terminal(moto: Moto, columns: int) -> None:
    """At 80, 100 and 200 columns: one line per registry, hosts whole or shortened in the
    middle, state words whole, the failure listed under the table with its full host and
    reason, and the summary last."""
    env, hosts = _setup(moto)
    argv = [sys.executable, "-m", "runas_async", "ecr", "login", "production-admin", *hosts]
    code, output = run_on_pty(argv, env, columns)
    screen = final_screen(output, columns)
    assert code == 1, "\n".join(screen)

    header = next(i for i, line in enumerate(screen) if line.startswith("registry"))
    rows = screen[header + 1 : header + 1 + len(hosts)]
    for host, account, region, line in zip(hosts, ACCOUNTS, REGIONS, rows, strict=True):
        shown, profile, *_ = re.split(r"\s{2,}", line)
        assert shown == host or shown.startswith(f"{account}…{region}"), line
        assert profile == "production-admin" or "…" in profile, line
        state = "failed" if account == REFUSED else "ok"
        assert re.search(rf"  {state} +\d+\.\ds$", line), line
        if columns >= 100:
            assert shown == host

    refused = hosts[ACCOUNTS.index(REFUSED)]
    rest = screen[header + 1 + len(hosts) :]
    at = rest.index(f"failed  {refused}")
    reason = " ".join(line.strip() for line in rest[at + 1 : -1])
    assert reason == REASON.format(host=refused)
    assert rest[-1] == "3 logged in, 1 failed"


SGR = re.compile(rb"\x1b\[([0-9;]*)m")


def _colours(output: bytes) -> set[int]:
    """The colour codes (foreground or background) among ``output``'s SGR sequences."""
    found = set()
    for params in SGR.findall(output):
        for p in params.split(b";"):
            if p and (30 <= int(p) <= 49 or 90 <= int(p) <= 107):
                found.add(int(p))
    return found


def test_no_color_removes_colour_on_a_terminal(moto: Moto) -> None:
    """NO_COLOR on a terminal: the table still draws, without a single colour code."""
    env, hosts = _setup(moto)
    argv = [sys.executable, "-m", "runas_async", "ecr", "login", "production-admin", *hosts]
    _, coloured = run_on_pty(argv, env, 100)
    assert _colours(coloured), "the table is coloured without NO_COLOR"
    code, output = run_on_pty(argv, {**env, "NO_COLOR": "1"}, 100)
    assert code == 1
    assert _colours(output) == set()
    assert final_screen(output, 100)[-1] == "3 logged in, 1 failed"


@pytest.mark.parametrize("where", ["pipe", "dumb-terminal"])
def test_no_escape_codes_on_a_pipe_or_a_dumb_terminal(moto: Moto, where: str) -> None:
    """Through a pipe or on TERM=dumb: plain lines with not one escape character."""
    env, hosts = _setup(moto)
    argv = [sys.executable, "-m", "runas_async", "ecr", "login", "production-admin", *hosts]
    if where == "pipe":
        done = subprocess.run(argv, env=env, capture_output=True, timeout=60, check=False)
        code, output = done.returncode, done.stdout + done.stderr
    else:
        code, output = run_on_pty(argv, {**env, "TERM": "dumb"}, 80)
    assert code == 1
    assert b"\x1b" not in output
    assert output.count(b"\nok ") + output.startswith(b"ok ") == 3, output


def test_stand_in_docker_is_executable(tmp_path: Path) -> None:
    """The stand-in docker is valid Python (a broken one would make every row fail)."""
    script = tmp_path / "docker"
    script.write_text(DOCKER.format(python=sys.executable, refused=REFUSED, reason=REASON))
    compile(script.read_text(), str(script), "exec")


# ---------------------------------------------------------------------------------------------
# What a row waits for
# ---------------------------------------------------------------------------------------------


async def test_token_request_tells_each_retry(moto: Moto, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two throttled GetAuthorizationToken calls: the provider says "retrying 2/5", then
    "retrying 3/5", then that the wait is over."""
    from runas_async.aws import tokens as aws
    from runas_async.core.models import TokenKey
    from tests.faults import ApiFaultProxy, Rule

    moto.write_aws_config({"dev": {"region": "us-east-2", **STATIC_KEYS}})
    notes: list[tuple[TokenKey, str | None]] = []
    key = TokenKey("dev", "us-east-2")
    with ApiFaultProxy(
        moto.moto_url, [Rule("GetAuthorizationToken", "throttle", times=2)]
    ) as proxy:
        for name, value in moto.env(AWS_ENDPOINT_URL=proxy.url, AWS_MAX_ATTEMPTS="5").items():
            if name.startswith(("AWS_", "HOME")):
                monkeypatch.setenv(name, value)
        provider = aws.AwsTokenProvider(
            {"dev": aws.new_session("dev")},
            env=dict(os.environ),
            notify=lambda k, text: notes.append((k, text)),
        )
        await provider.token(key)
    assert notes == [(key, "retrying 2/5"), (key, "retrying 3/5"), (key, None)]


def test_a_retrying_row_says_so_on_the_terminal(moto: Moto) -> None:
    """While its token request is throttled, the row on the terminal reads "retrying 2/5"."""
    from tests.faults import ApiFaultProxy, Rule

    env, hosts = _setup(moto)
    argv = [sys.executable, "-m", "runas_async", "ecr", "login", "production-admin", hosts[0]]
    # Each throttled answer takes 0.4 s: the retry's row is on screen for several frames,
    # however short botocore's jittered back-off happens to be.
    rules = [Rule("GetAuthorizationToken", "throttle", times=2, delay=0.4)]
    with ApiFaultProxy(moto.moto_url, rules) as proxy:
        env = {**env, "AWS_ENDPOINT_URL": proxy.url, "AWS_MAX_ATTEMPTS": "5"}
        code, output = run_on_pty(argv, env, 100)
    assert code == 0, output
    assert b"retrying 2/5" in output
    assert final_screen(output, 100)[-1] == "1 logged in"


async def test_mfa_prompt_says_who_waits_for_a_code() -> None:
    """While a profile waits for its MFA code the table is told so, and told when it has it."""
    import anyio

    from runas_async.aws.mfa import MfaChallenge, TerminalPrompt

    main, secondary = pty.openpty()
    told: list[tuple[str, str | None]] = []
    prompt = TerminalPrompt(
        tty=os.ttyname(secondary), waiting=lambda profile, text: told.append((profile, text))
    )

    async def answer() -> None:
        seen = b""
        while b"Enter MFA code" not in seen:
            await anyio.wait_readable(main)
            seen += os.read(main, 1024)
        assert told == [("prod", "waiting for MFA code")]
        os.write(main, b"123456\n")

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(answer)
            with anyio.fail_after(10):
                code = await prompt(MfaChallenge("prod", "base", "arn:aws:iam::1:mfa/me"))
    finally:
        os.close(main)
        os.close(secondary)
    assert code == "123456"
    assert told == [("prod", "waiting for MFA code"), ("prod", None)]
