"""The benchmark's own tools: awscli v1 from PyPI, in a virtualenv of its own.

awscli is what the serial pipeline users write today runs, so the benchmark needs it; it is
never a dependency of the project. It goes into ``bench/.tools`` (created on first use,
pinned, byte-compiled as pip would leave it, so its start-up is measured fairly).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["AWSCLI_VERSION", "TOOLS_DIR", "ensure_awscli"]

AWSCLI_VERSION = "1.46.2"
TOOLS_DIR = Path(__file__).resolve().parent / ".tools"


def _base_python() -> str:
    """The interpreter the project's venv was made from (not the venv's own)."""
    return str(getattr(sys, "_base_executable", None) or sys.executable)


def ensure_awscli(tools_dir: Path = TOOLS_DIR) -> Path:
    """Path of the ``aws`` executable, installing awscli==AWSCLI_VERSION the first time."""
    aws = tools_dir / "bin" / "aws"
    marker = tools_dir / f".awscli-{AWSCLI_VERSION}"
    if aws.exists() and marker.exists():
        return aws
    sys.stderr.write(f"bench: installing awscli=={AWSCLI_VERSION} into {tools_dir}\n")
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    env["UV_COMPILE_BYTECODE"] = "1"
    python = tools_dir / "bin" / "python"
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv:
        steps = [
            [uv, "venv", "--quiet", "--clear", "--python", _base_python(), str(tools_dir)],
            [uv, "pip", "install", "--quiet", "--python", str(python), f"awscli=={AWSCLI_VERSION}"],
        ]
    else:
        steps = [
            [_base_python(), "-m", "venv", "--clear", str(tools_dir)],
            [str(python), "-m", "pip", "install", "--quiet", f"awscli=={AWSCLI_VERSION}"],
        ]
    for step in steps:
        subprocess.run(step, env=env, check=True)
    marker.touch()
    return aws
