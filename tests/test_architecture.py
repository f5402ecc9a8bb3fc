"""The parts of the package import each other in one direction only, and nothing imports in a
cycle: the layering that docs/architecture.md draws, checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

import napari_bnadapt

PACKAGE = Path(napari_bnadapt.__file__).parent

#: A part may import parts of a lower rank (and itself), never one of the same or a higher rank.
RANKS = {
    "__init__": 0, "errors": 0, "lazy_exports": 0,
    "memory": 0.5, "units": 0.5, "predict_config": 0.5,
    "jobs": 1, "device": 1, "synthetic": 1, "cluster": 1,
    "arrays": 2, "io": 2, "training_config": 2.5,
    "model": 3, "replacing": 3.2,
    "speed": 3.4, "forward": 3.5,
    "inference": 4, "adabn": 4,
    "diagnostics": 5, "blockwise": 5,
    "adapt": 6,
    "training": 7, "report": 7, "export": 7,
    "demo": 8,
    "_widgets": 9, "_reader": 9, "_writer": 9, "_sample_data": 9,
    "cli": 10,
}  # fmt: skip


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
    """Package modules imported anywhere in ``path`` (relative imports resolved)."""
    name = module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    if name == "__init__":
        package = []
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)]
            target = [*base, *(node.module.split(".") if node.module else [])]
            if node.module is None:  # from . import x: x may be a module
                found.update(".".join([*base, alias.name]) for alias in node.names)
            else:
                found.add(".".join(target) or "__init__")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("napari_bnadapt"):
            found.add(node.module.removeprefix("napari_bnadapt").lstrip(".") or "__init__")
    return found


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        graph[name] = {m for m in imported_modules(path) if m in modules and m != name}
    return graph


def part(module: str) -> str:
    return module.split(".")[0]


def test_every_part_has_a_rank():
    assert {part(m) for m in import_graph()} <= set(RANKS)


def test_parts_import_only_lower_ranks():
    wrong = [
        f"{source} imports {target}"
        for source, targets in import_graph().items()
        for target in targets
        if part(source) != part(target) and RANKS[part(target)] >= RANKS[part(source)]
    ]
    assert not wrong, wrong


def test_no_import_cycles():
    graph = import_graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" → ".join([*trail[trail.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, cycles
