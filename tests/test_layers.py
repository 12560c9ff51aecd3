"""The house's layers (ARCHITECTURE.md): every import points down, the ground floor is pure."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "runas_async"

GROUND = 0
ENGINE = 1
EDGE = 2
TOP = 3

LAYERS = {
    "_version": GROUND,
    "errors": GROUND,
    "models": GROUND,
    "partitions": GROUND,
    "endpoints": GROUND,
    "places": GROUND,
    "clients": GROUND,
    "plan": GROUND,
    "loginfile": GROUND,
    "options": GROUND,
    "mapping": GROUND,
    "completion": GROUND,
    "orchestrate": ENGINE,
    "files": EDGE,
    "awserrors": EDGE,
    "awsconfig": EDGE,
    "registry": EDGE,
    "tokencache": EDGE,
    "_transport": EDGE,
    "aws": EDGE,
    "mfa": EDGE,
    "cache": EDGE,
    "credentials": EDGE,
    "login": EDGE,
    "dockerconfig": EDGE,
    "report": EDGE,
    "preconnect": EDGE,
    "runas": EDGE,
    "state": EDGE,
    "commands": TOP,
    "credhelper": TOP,
    "cli": TOP,
    "__main__": TOP,
    "__init__": TOP,
}

ENTRY_POINTS = ("cli", "credhelper")
"""The console scripts: argv, stdin and the environment come in only here."""

IO_LIBRARIES = ("anyio", "aiobotocore", "botocore", "aiohttp", "rich", "yarl")
"""Nothing on the ground floor imports these, not even for type checking."""


def _imports(path: Path) -> list[str]:
    """Every module ``path`` imports, at any depth (also inside functions and TYPE_CHECKING)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            if node.module == "runas_async":
                names += [f"runas_async.{alias.name}" for alias in node.names]
    return names


def _modules() -> list[str]:
    return sorted(p.stem for p in PACKAGE.glob("*.py"))


def test_every_module_has_a_layer() -> None:
    """A new module is placed in the map (and in ARCHITECTURE.md) when it is added."""
    assert sorted(LAYERS) == _modules()


@pytest.mark.parametrize("module", _modules())
def test_imports_point_down(module: str) -> None:
    """A module imports only its own layer and the ones below it."""
    own = LAYERS[module]
    for name in _imports(PACKAGE / f"{module}.py"):
        if not name.startswith("runas_async."):
            continue
        other = name.split(".")[1]
        assert LAYERS[other] <= own, f"{module} (layer {own}) imports {other} ({LAYERS[other]})"


@pytest.mark.parametrize("module", [m for m in _modules() if LAYERS[m] == GROUND])
def test_ground_floor_is_pure(module: str) -> None:
    """Ground-floor modules import no event loop, AWS SDK, HTTP or display library."""
    for name in _imports(PACKAGE / f"{module}.py"):
        assert name.split(".")[0] not in IO_LIBRARIES, f"{module} imports {name}"


@pytest.mark.parametrize("module", [m for m in _modules() if LAYERS[m] <= ENGINE])
def test_engine_and_ground_do_not_read_the_environment(module: str) -> None:
    """The environment is passed in: no ``os.environ`` or ``getenv`` below the edges."""
    text = (PACKAGE / f"{module}.py").read_text()
    assert "os.environ" not in text
    assert "getenv" not in text


def test_no_environment_reads_below_the_command_line() -> None:
    """Only the entry points (cli.py, credhelper.py) read the process environment;
    everything else gets it passed in."""
    readers = [
        m
        for m in _modules()
        if m not in ENTRY_POINTS
        and any(
            needle in (PACKAGE / f"{m}.py").read_text()
            for needle in ("os.environ", "os.getenv", "Path.home()", "expanduser(")
        )
    ]
    assert readers == []
