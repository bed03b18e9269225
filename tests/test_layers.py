"""The gateway's packages point down only, with no import cycles, and each table has one owner.

Imports are read from the source (type-only and function-level ones included), so a cycle that
``TYPE_CHECKING`` or a late import hides still counts.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

GATEWAY = Path(__file__).resolve().parent.parent / "gateway"

# Bottom up: a module may import its own package and packages of a lower layer, nothing else.
LAYERS: list[set[str]] = [
    {"errors", "config", "clock", "headers", "store", "metrics"},
    {"background"},
    {"accounts"},
    {"webhooks"},
    {"nodes"},
    {"catalog"},
    {"jobs"},
    {"batches"},
    {"datasources"},
    {"schedules"},
    {"http"},
    {"platform"},
    {"api"},
    {"app"},
    {"cli"},
    {"__main__"},
]

# Each table is read and written by the package that owns it; others call its functions.
TABLE_OWNERS = {
    "tenants": "accounts",
    "api_keys": "accounts",
    "eggs": "catalog",
    "spiders": "catalog",
    "jobs": "jobs",
    "items": "jobs",
    "batches": "batches",
    "batch_pages": "batches",
    "batch_records": "batches",
    "batch_screenshots": "batches",
    "datasources": "datasources",
    "datasource_crawls": "datasources",
    "datasource_pages": "datasources",
    "schedules": "schedules",
    "schedule_runs": "schedules",
    "webhook_secrets": "webhooks",
    "webhook_subscriptions": "webhooks",
    "webhook_events": "webhooks",
}


def _modules() -> dict[str, ast.Module]:
    found = {}
    for path in sorted(GATEWAY.rglob("*.py")):
        parts = path.relative_to(GATEWAY.parent).with_suffix("").parts
        if "migrations" in parts:
            continue
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = ast.parse(path.read_text(), str(path))
    return found


def _imports(module: str, tree: ast.Module, known: set[str]) -> Iterator[tuple[str, list[str]]]:
    """(imported gateway module, names taken from it) for every import in ``tree``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known:
                    yield alias.name, []
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gateway"):
            assert node.level == 0, f"{module}: use absolute imports"
            names = [alias.name for alias in node.names]
            submodules = [f"{node.module}.{name}" for name in names if f"{node.module}.{name}" in known]
            if submodules:
                yield from ((submodule, []) for submodule in submodules)
            else:
                yield node.module, names


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _layer(module: str) -> int:
    package = _package(module)
    for rank, packages in enumerate(LAYERS):
        if package in packages:
            return rank
    raise AssertionError(f"{module} is in no layer: add its package to LAYERS")


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {
        name: {imported for imported, _ in _imports(name, tree, known) if imported != name}
        for name, tree in modules.items()
    }


def test_packages_import_only_their_own_and_lower_layers() -> None:
    upward = [
        f"{module} -> {imported}"
        for module, imports in _graph().items()
        for imported in imports
        if _package(module) != _package(imported) and _layer(imported) >= _layer(module)
    ]
    assert upward == []


def test_no_import_cycles() -> None:
    graph = _graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for imported in sorted(graph.get(module, ())):
            if state.get(imported) == 1:
                cycles.append([*path[path.index(imported) :], imported])
            elif imported not in state:
                visit(imported, [*path, imported])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_each_table_is_used_by_its_owner_only() -> None:
    modules = _modules()
    known = set(modules)
    trespasses = []
    for name, tree in modules.items():
        for imported, names in _imports(name, tree, known):
            if imported != "gateway.store.tables":
                continue
            for table in names:
                owner = TABLE_OWNERS.get(table)
                if owner is not None and _package(name) != owner:
                    trespasses.append(f"{name} uses {table} (owned by {owner})")
    assert trespasses == []
