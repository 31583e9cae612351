"""The layer rule of docs/ARCHITECTURE.md, read from the code's own imports.

Every ``import`` and ``from … import`` in aura counts, including those inside functions
(they run too, only later) and those under ``if TYPE_CHECKING`` (a type is a dependency).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from .conftest import ROOT

PACKAGE = ROOT / "aura"

# Top to bottom. A module may import modules of its own layer or of a lower one, never
# of a higher one; the first matching prefix names a module's layer.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("presentation", ("aura.__main__", "aura.cli", "aura.tui")),
    ("remote", ("aura.remote",)),
    ("service", ("aura.service",)),
    ("executors", ("aura.executors",)),
    ("io", ("aura.process", "aura.git", "aura.workspace", "aura.workspace_keep", "aura.rpc",
            "aura.rpc_codec", "aura.liveness", "aura.config", "aura.project")),
    ("store", ("aura.store", "aura.store_sqlite", "aura.store_schema", "aura.store_writer",
               "aura.store_history", "aura.store_ids",
               "aura.store_approvals", "aura.store_controls", "aura.store_tasks",
               "aura.store_workers", "aura.store_attempts", "aura.recorder")),
    ("locations", ("aura.paths",)),
    ("core", ("aura.contracts", "aura.errors", "aura.engine", "aura.board", "aura.prompts",
              "aura.approvals", "aura")),
]
# Only the presentation layer talks to the terminal through these.
PRESENTATION_ONLY = {"click", "questionary", "prompt_toolkit"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int:
    for index, (_name, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or (prefix != "aura" and module.startswith(prefix + ".")):
                return index
    raise AssertionError(f"{module} is in no layer: add it to LAYERS and the diagram")


def imports_of(module: str) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import in ``module``: aura modules resolved to the
    deepest module that exists, others as their top-level package name."""
    path = MODULES[module]
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield _deepest(alias.name), node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                yield (sub if sub in MODULES else _deepest(target)), node.lineno


def _deepest(name: str) -> str:
    if not name.startswith("aura"):
        return name.split(".")[0]
    while name not in MODULES and "." in name:
        name = name.rpartition(".")[0]
    return name


def aura_edges() -> dict[str, set[str]]:
    return {m: {t for t, _ in imports_of(m) if t in MODULES and t != m} for m in MODULES}


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        layer_of(module)


def test_no_import_points_up() -> None:
    upward = []
    for module in MODULES:
        for target, line in imports_of(module):
            if target in MODULES and layer_of(target) < layer_of(module):
                upward.append(f"{MODULES[module].relative_to(ROOT)}:{line} {module} "
                              f"({LAYERS[layer_of(module)][0]}) imports {target} "
                              f"({LAYERS[layer_of(target)][0]})")
    assert not upward, "imports that point up:\n" + "\n".join(upward)


def test_only_presentation_imports_terminal_libraries() -> None:
    found = []
    for module in MODULES:
        if layer_of(module) == 0:
            continue
        for target, line in imports_of(module):
            if target in PRESENTATION_ONLY:
                found.append(f"{MODULES[module].relative_to(ROOT)}:{line} imports {target}")
    assert not found, "\n".join(found)


def test_the_pure_core_imports_only_the_core() -> None:
    core = len(LAYERS) - 1
    found = [f"{module} imports {target}"
             for module in MODULES if layer_of(module) == core
             for target, _ in imports_of(module)
             if target in MODULES and layer_of(target) != core]
    assert not found, "\n".join(found)


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles() -> None:
    found = cycles(aura_edges())
    assert not found, "import cycles:\n" + "\n".join(" ↔ ".join(c) for c in found)


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_every_module_says_what_it_is_for() -> None:
    missing = [m for m, p in MODULES.items() if not ast.get_docstring(ast.parse(p.read_text()))]
    assert not missing, "modules without a docstring: " + ", ".join(missing)
