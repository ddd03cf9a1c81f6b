"""Each package of the server is a layer, and a layer never imports one above it.

The ranks below are the map of docs/ARCHITECTURE.md: a module may import modules of its own rank
or lower, never higher, counting every import (inside functions, and type-only ones too: a
type-only upward import is still a seam defined on the wrong side). Cycles between modules are
tests/architecture/test_import_cycles.py's job.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("tusd_py", "extensions", "storage_backends")

#: Package -> rank. ``tusd_py`` itself (the version) and ``__main__`` are outside the ladder.
RANKS: dict[str, int] = {
    "tusd_py.model": 0,
    "tusd_py.config": 0,
    "tusd_py.protocol": 1,
    "tusd_py.telemetry": 1,
    "storage_backends": 2,
    "tusd_py.database": 2,
    "tusd_py.auth": 2,
    "tusd_py.locks": 3,
    "tusd_py.quotas": 3,
    "tusd_py.pipeline": 3,
    "tusd_py.hooks": 4,
    "tusd_py.host": 4,
    "tusd_py.uploads": 5,
    "extensions": 6,
    "tusd_py.http": 6,
    "tusd_py.recordings": 6,
    "tusd_py.demo": 6,
    "tusd_py.server": 7,
}
OUTSIDE = {"tusd_py", "tusd_py.__main__"}


def layer_of(module: str) -> str | None:
    """The package in RANKS that holds ``module`` (longest prefix), or None."""
    found = [name for name in RANKS if module == name or module.startswith(name + ".")]
    return max(found, key=len) if found else None


def modules() -> dict[str, Path]:
    return {
        ".".join(f.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): f
        for package in PACKAGES
        for f in (ROOT / package).rglob("*.py")
    }


def imports_of(path: Path, known: set[str]) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            submodules = {f"{node.module}.{alias.name}" for alias in node.names} & known
            found |= submodules or {node.module}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return found & known


def upward_imports(ranks: dict[str, int], graph: dict[str, set[str]]) -> list[str]:
    """Every ``importer -> imported`` edge that climbs the ladder."""
    wrong = []
    for importer, deps in sorted(graph.items()):
        here = layer_of(importer)
        if here is None:
            continue
        for dep in sorted(deps):
            there = layer_of(dep)
            if there is not None and ranks[there] > ranks[here]:
                wrong.append(f"{importer} (layer {ranks[here]}) imports {dep} (layer {ranks[there]})")
    return wrong


def test_every_module_belongs_to_a_layer() -> None:
    homeless = sorted(name for name in modules() if name not in OUTSIDE and layer_of(name) is None)
    assert homeless == [], "give these a package in RANKS (and docs/ARCHITECTURE.md): " + ", ".join(homeless)


def test_no_layer_imports_one_above_it() -> None:
    found = modules()
    graph = {name: imports_of(path, set(found)) - {name} for name, path in found.items()}
    assert upward_imports(RANKS, graph) == []


def test_the_check_sees_an_upward_import() -> None:
    graph = {"tusd_py.model.upload": {"tusd_py.http.gate"}, "tusd_py.http.gate": {"tusd_py.model.upload"}}
    assert upward_imports(RANKS, graph) == ["tusd_py.model.upload (layer 0) imports tusd_py.http.gate (layer 6)"]


@pytest.mark.parametrize("package", sorted(RANKS))
def test_each_layer_says_what_it_owns(package: str) -> None:
    init = ROOT / Path(*package.split(".")) / "__init__.py"
    assert init.is_file() and ast.get_docstring(ast.parse(init.read_text())), f"{package} needs a docstring"
