"""No import cycle among the server's modules, counting imports inside functions (they run too)
and leaving out ``if TYPE_CHECKING:`` blocks: a feature module must never import the factory
that mounts it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("tusd_py", "extensions", "storage_backends", "conformance")


def module_imports() -> dict[str, set[str]]:
    files = {
        ".".join(f.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): f
        for package in PACKAGES
        for f in (ROOT / package).rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        deps: set[str] = set()
        for node in runtime_nodes(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                submodules = {f"{node.module}.{alias.name}" for alias in node.names} & files.keys()
                deps |= submodules or {node.module}
            elif isinstance(node, ast.Import):
                deps |= {alias.name for alias in node.names}
        graph[name] = (deps & files.keys()) - {name}
    return graph


def runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    found: list[ast.AST] = []
    pending = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            pending.extend(node.orelse)
            continue
        found.append(node)
        pending.extend(ast.iter_child_nodes(node))
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()

    def visit(node: str, stack: list[str]) -> list[str] | None:
        for dep in sorted(graph[node]):
            if dep in stack:
                return [*stack[stack.index(dep) :], dep]
            if dep not in done:
                found = visit(dep, [*stack, dep])
                if found:
                    return found
        done.add(node)
        return None

    for start in sorted(graph):
        if start not in done:
            cycle = visit(start, [start])
            if cycle:
                return cycle
    return None


def test_there_is_no_import_cycle() -> None:
    assert find_cycle(module_imports()) is None


def test_the_check_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
