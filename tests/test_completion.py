"""`runas-async completion bash|zsh|fish`, sourced in the real shells and asked to complete."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from runas_async.cli.main import main
from runas_async.core.clients import CLIENTS
from tests.missing import need_program

CONFIG = "[default]\nregion = us-east-1\n[profile prod]\n[profile production-eu]\n[profile dev]\n"
CREDENTIALS = "[staging]\naws_access_key_id = AKIDEXAMPLE\n"
BIN = Path(sys.executable).parent
"""Where the venv's `runas-async` is: the scripts call it back for the profile names."""

# Each shell sources the script, then completes the words given as "$@" (the last one is the
# word under the cursor) and prints one candidate a line.
DRIVERS = {
    "bash": (
        "source <(runas-async completion bash)\n"
        'COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _runas_async_complete\n'
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    ),
    # compadd only works inside a completion widget; the driver stands in for it (and
    # filters by prefix, as zsh's completion system would) around the real script.
    "zsh": (
        "autoload -Uz compinit && compinit -u -D\n"
        "compadd() { [[ $1 == -- ]] && shift; local w; for w; do [[ $w == ${PREFIX}* ]] &&"
        " print -r -- $w; done; return 0; }\n"
        "source <(runas-async completion zsh)\n"
        'words=("$@"); CURRENT=$#; PREFIX=${words[CURRENT]}; _runas_async_complete\n'
    ),
    "fish": (
        "runas-async completion fish | source\n"
        'complete --do-complete="$argv" | string replace -r "\\t.*" ""; true\n'
    ),
}
INSTALL = {
    "bash": "apt-get install bash",
    "zsh": "apt-get install zsh",
    "fish": "apt-get install fish",
}


def _complete(shell: str, tmp_path: Path, *words: str) -> list[str]:
    """What ``shell`` offers for the command line ``words`` (the last is being typed)."""
    exe = need_program(shell, INSTALL[shell])
    (tmp_path / "config").write_text(CONFIG)
    (tmp_path / "credentials").write_text(CREDENTIALS)
    env = {
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
    }
    if shell == "fish":
        argv = [exe, "--no-config", "-c", DRIVERS[shell], " ".join(words)]
    else:
        argv = [exe, "-f" if shell == "zsh" else "--norc", "-c", DRIVERS[shell], shell, *words]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return sorted(set(done.stdout.split()))


SHELLS = ["bash", "zsh", "fish"]


@pytest.mark.parametrize("shell", SHELLS)
def test_profile_name_completes_from_the_aws_config_files(shell: str, tmp_path: Path) -> None:
    """`ecr login pr<TAB>` offers the profiles of both config files that start with 'pr'."""
    assert _complete(shell, tmp_path, "runas-async", "ecr", "login", "pr") == [
        "prod",
        "production-eu",
    ]


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize(
    ("words", "expected"),
    [
        pytest.param(("",), ["completion", "ecr", "env", "exec"], id="commands"),
        pytest.param(("ecr", "lo"), ["login", "logout"], id="ecr-commands"),
        pytest.param(
            ("ecr", ""),
            ["configure-docker", "login", "logout", "password", "status"],
            id="every-ecr-command",
        ),
        pytest.param(("ecr", "status", "-o", ""), ["json", "text"], id="status-formats"),
        pytest.param(("ecr", "configure-docker", "--re"), ["--region", "--remove"], id="cd-opts"),
        pytest.param(("ecr", "login", "-c", ""), sorted(CLIENTS), id="client-names"),
        pytest.param(("ecr", "logout", "--profile", "s"), ["staging"], id="profile-option"),
        pytest.param(("env", "-o", ""), ["fish", "json", "sh"], id="env-formats"),
        pytest.param(("ecr", "login", "prod", "--dr"), ["--dry-run"], id="options"),
        pytest.param(("completion", ""), ["bash", "fish", "zsh"], id="shells"),
    ],
)
def test_commands_options_and_clients_complete(
    shell: str, tmp_path: Path, words: tuple[str, ...], expected: list[str]
) -> None:
    """Commands, options, client names and choices complete in every shell."""
    assert _complete(shell, tmp_path, "runas-async", *words) == expected


def test_completion_without_a_shell_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """`runas-async completion` alone: exit 2, one line naming the shells."""
    assert main(["completion"]) == 2
    _, err = capsys.readouterr()
    assert err.count("\n") == 1
    assert "bash, zsh or fish" in err
