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
    "commands._shared": TOP,
    "commands.login": TOP,
    "commands.logout": TOP,
    "commands.status": TOP,
    "commands.password": TOP,
    "commands.env": TOP,
    "commands.configure_docker": TOP,
    "commands.completion": TOP,
    "credhelper": TOP,
    "cli": TOP,
    "__main__": TOP,
    "__init__": TOP,
}

ENTRY_POINTS = ("cli", "credhelper")
"""The console scripts: argv, stdin and the environment come in only here."""

IO_LIBRARIES = ("anyio", "aiobotocore", "botocore", "aiohttp", "rich", "yarl")
"""Nothing on the ground floor imports these, not even for type checking."""


def _path(module: str) -> Path:
    """The file of ``module`` (``"commands"`` is a package: its ``__init__.py``)."""
    if module == "__init__":
        return PACKAGE / "__init__.py"
    path = PACKAGE.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _imports(module: str) -> list[str]:
    """Every module ``module`` imports, at any depth (also inside functions and TYPE_CHECKING);
    relative imports resolved, ``from runas_async.x import y`` counted as ``runas_async.x.y``
    too (y may be a module)."""
    path = _path(module)
    package = ["runas_async", *module.split(".")]
    if path.name != "__init__.py" or module == "__init__":
        package = package[:-1]
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            source = ".".join([*base, *([node.module] if node.module else [])])
            names.append(source)
            if source == "runas_async" or source.startswith("runas_async."):
                names += [f"{source}.{alias.name}" for alias in node.names]
    return names


def _layer_of(name: str) -> tuple[str, int]:
    """The module of ours that ``runas_async.a.b.c`` names (the longest known prefix)."""
    parts = name.split(".")[1:]
    while parts:
        module = ".".join(parts)
        if module in LAYERS:
            return module, LAYERS[module]
        parts.pop()
    raise AssertionError(f"{name} is not in the map")


def _modules() -> list[str]:
    """Every module of the package, dotted below it: ``cli``, ``commands``, ``commands.login``."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if len(parts) > 1 and parts[-1] == "__init__":
            parts = parts[:-1]
        found.append(".".join(parts))
    return sorted(found)


def test_every_module_has_a_layer() -> None:
    """A new module is placed in the map (and in ARCHITECTURE.md) when it is added."""
    assert sorted(LAYERS) == _modules()


@pytest.mark.parametrize("module", _modules())
def test_imports_point_down(module: str) -> None:
    """A module imports only its own layer and the ones below it."""
    own = LAYERS[module]
    for name in _imports(module):
        if not name.startswith("runas_async."):
            continue
        other, layer = _layer_of(name)
        assert layer <= own, f"{module} (layer {own}) imports {other} ({layer})"


@pytest.mark.parametrize("module", [m for m in _modules() if LAYERS[m] == GROUND])
def test_ground_floor_is_pure(module: str) -> None:
    """Ground-floor modules import no event loop, AWS SDK, HTTP or display library."""
    for name in _imports(module):
        assert name.split(".")[0] not in IO_LIBRARIES, f"{module} imports {name}"


@pytest.mark.parametrize("module", [m for m in _modules() if LAYERS[m] <= ENGINE])
def test_engine_and_ground_do_not_read_the_environment(module: str) -> None:
    """The environment is passed in: no ``os.environ`` or ``getenv`` below the edges."""
    text = _path(module).read_text()
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
            needle in _path(m).read_text()
            for needle in ("os.environ", "os.getenv", "Path.home()", "expanduser(")
        )
    ]
    assert readers == []


@pytest.mark.parametrize(
    "module", [m for m in _modules() if m.startswith("commands.") and m != "commands._shared"]
)
def test_a_command_imports_no_other_command(module: str) -> None:
    """Each command has one home: what two commands use lives in commands/_shared.py."""
    ours = [_layer_of(n)[0] for n in _imports(module) if n.startswith("runas_async.commands")]
    assert set(ours) <= {"commands._shared"}, f"{module} imports {ours}"
