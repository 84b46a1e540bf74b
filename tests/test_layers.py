"""The backend's layering rule, checked on the source: irc <- core <- net; store and cluster plug into core.

Read with `ast`, not by importing, so a violation is caught even in code no test runs.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

BACKEND = Path(__file__).resolve().parent.parent / "backend"

# What each layer must never import (module names or prefixes, absolute).
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "irc": ("backend.core", "backend.net", "backend.store", "backend.cluster", "backend.node", "backend.cli",
            "socket", "ssl", "select", "selectors", "threading", "sqlite3", "redis"),
    "core": ("backend.net", "backend.store", "backend.cluster", "backend.node", "backend.cli",
             "socket", "ssl", "select", "selectors", "sqlite3", "redis", "queue", "subprocess", "concurrent"),
    "net": ("backend.store", "backend.cluster", "backend.node", "backend.cli", "sqlite3", "redis"),
    "store": ("backend.net", "backend.cluster", "backend.node", "backend.cli", "redis", "socket"),
    "cluster": ("backend.net", "backend.node", "backend.cli", "socket", "sqlite3"),
}
# The core may guard its state with a lock, but it starts no thread and waits on nothing.
CORE_THREADING = frozenset({"Lock", "RLock"})
# Imports inside a function are allowed only here: `lobby connect` must not load Flask.
LAZY_IMPORTS_ALLOWED = frozenset({"backend/cli.py"})


def modules() -> Iterator[tuple[str, Path, ast.Module]]:
    for path in sorted(BACKEND.rglob("*.py")):
        rel = path.relative_to(BACKEND.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        yield ".".join(parts), path, ast.parse(path.read_text(), str(path))


def resolve(module: str, path: Path, node: ast.ImportFrom) -> list[str]:
    """The absolute names a `from X import Y` brings in (X itself and X.Y, since Y may be a module)."""
    if node.level:
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        base = package[: len(package) - node.level + 1]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    return [target] + [f"{target}.{alias.name}" for alias in node.names]


def imports(module: str, path: Path, tree: ast.Module) -> Iterator[tuple[str, ast.stmt]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node
        elif isinstance(node, ast.ImportFrom):
            for name in resolve(module, path, node):
                yield name, node


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in FORBIDDEN else None


def test_each_layer_imports_only_what_the_rule_allows() -> None:
    problems = []
    for module, path, tree in modules():
        layer = layer_of(module)
        if layer is None:
            continue
        for name, node in imports(module, path, tree):
            for banned in FORBIDDEN[layer]:
                if name == banned or name.startswith(banned + "."):
                    problems.append(f"{module}:{node.lineno} imports {name}")
    assert not problems, "\n".join(problems)


def test_the_core_uses_locks_but_starts_no_thread() -> None:
    problems = []
    for module, _path, tree in modules():
        if layer_of(module) != "core":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "threading":
                problems += [f"{module}: from threading import {a.name}" for a in node.names
                             if a.name not in CORE_THREADING]
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id == "threading" and node.attr not in CORE_THREADING):
                problems.append(f"{module}:{node.lineno} uses threading.{node.attr}")
    assert not problems, "\n".join(problems)


def test_no_hidden_imports_and_no_type_checking_imports() -> None:
    problems = []
    for module, path, tree in modules():
        rel = path.relative_to(BACKEND.parent).as_posix()
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                problems.append(f"{module}:{node.lineno} imports under TYPE_CHECKING")
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and rel not in LAZY_IMPORTS_ALLOWED:
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Import | ast.ImportFrom):
                        problems.append(f"{module}:{inner.lineno} imports inside {node.name}()")
    assert not problems, "\n".join(problems)


def import_graph() -> dict[str, set[str]]:
    known = {module for module, _, _ in modules()}
    graph: dict[str, set[str]] = {}
    for module, path, tree in modules():
        edges = set()
        for node in tree.body:  # module level only: that is what runs at import time
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else resolve(module, path, node))
                edges |= {name for name in names if name in known and name != module}
        graph[module] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_backend_has_no_import_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 30  # the walk found the modules
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
