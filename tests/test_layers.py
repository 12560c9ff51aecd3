"""The house's layers (ARCHITECTURE.md): every import points down, the ground floor is pure."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "runas_async"

GROUND = 0
ENGINE = 1
FILES = 2
EDGE = 3
TOP = 4

FLOORS = {
    "core": GROUND,
    "engine": ENGINE,
    "files": FILES,
    "_recache": FILES,
    "aws": EDGE,
    "auth": EDGE,
    "cli": TOP,
    "credhelper": TOP,
    "_version": GROUND,
    "__main__": TOP,
    "__init__": TOP,
}
"""Each top-level package or module of runas_async and its floor (ARCHITECTURE.md): a module's
floor is its package's. aws/ and auth/ share a floor but import nothing of each other."""

SIBLINGS = {("aws", "auth"), ("auth", "aws")}
"""Packages on one floor that must not import each other."""

LAYERS: dict[str, int] = {}
"""Every module, dotted, and its floor (filled from the tree below)."""
ENTRY_POINTS = ("cli", "cli.main", "credhelper")
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


def _modules() -> list[str]:
    """Every module of the package, dotted below it: ``core.errors``, ``cli.commands``."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if len(parts) > 1 and parts[-1] == "__init__":
            parts = parts[:-1]
        found.append(".".join(parts))
    return sorted(found)


def _floor(module: str) -> tuple[str, int]:
    """The top-level package (or module) that holds ``module``, and its floor."""
    top = module.split(".")[0]
    if top not in FLOORS:
        raise AssertionError(f"{module} is in no floor: add its package to FLOORS")
    return top, FLOORS[top]


LAYERS.update({m: _floor(m)[1] for m in _modules()})


def _layer_of(name: str) -> tuple[str, int]:
    """The module of ours that ``runas_async.a.b.c`` names (the longest known prefix)."""
    parts = name.split(".")[1:]
    while parts:
        module = ".".join(parts)
        if module in LAYERS:
            return module, LAYERS[module]
        parts.pop()
    raise AssertionError(f"{name} is not in the map")


def test_every_package_is_a_floor() -> None:
    """The tree shows the floors: every package directly under runas_async is in FLOORS, and
    FLOORS names nothing that is gone."""
    tops = {m.split(".")[0] for m in _modules()}
    assert tops == set(FLOORS)


@pytest.mark.parametrize("module", _modules())
def test_siblings_do_not_import_each_other(module: str) -> None:
    """aws/ and auth/ share a floor: neither imports the other."""
    own = module.split(".")[0]
    for name in _imports(module):
        if name.startswith("runas_async."):
            other = _layer_of(name)[0].split(".")[0]
            assert (own, other) not in SIBLINGS, f"{module} imports {name}"


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
    "module",
    [m for m in _modules() if m.startswith("cli.commands.")],
)
def test_a_command_imports_no_other_command(module: str) -> None:
    """Each command has one home: what two commands use is the command context
    (cli/context.py), not another command."""
    ours = [_layer_of(n)[0] for n in _imports(module) if n.startswith("runas_async.cli.commands")]
    assert ours == [], f"{module} imports {ours}"
