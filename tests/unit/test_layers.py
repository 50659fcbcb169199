"""Dependencies point one way: assistant_core <- knowledge <- dialog <- ui <- the composition
(assistant/). Every import counts, also those inside functions and under TYPE_CHECKING; and no two
top-level packages import each other, directly or around a loop."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("assistant_core", "knowledge", "dialog", "ui", "assistant")
"""The top-level packages, lowest layer first."""
NAMES = {0: "assistant_core", 1: "knowledge", 2: "dialog", 3: "ui", 4: "the composition"}


def layer_of(module: str) -> int | None:
    """The layer of a module of ours, or None for a third-party or standard module."""
    top = module.partition(".")[0]
    return PACKAGES.index(top) if top in PACKAGES else None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, package: str) -> list[tuple[int, str]]:
    """(line, module) of every absolute or relative import in the file of `package`."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((node.lineno, base))
    return sorted(found)


def edges() -> list[tuple[str, int, str]]:
    """(file, line, imported module) of every import of ours, migrations aside (plain scripts)."""
    found = []
    for top in PACKAGES:
        for path in sorted((ROOT / top).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            module = module_name(path)
            package = module if path.name == "__init__.py" else module.rpartition(".")[0]
            for line, target in imports(path, package):
                if layer_of(target) is not None:
                    found.append((str(path.relative_to(ROOT)), line, target))
    return found


def violations() -> list[str]:
    found = []
    for where, line, target in edges():
        own, rank = layer_of(Path(where).parts[0]), layer_of(target)
        assert own is not None and rank is not None
        if rank > own:
            found.append(f"{where}:{line} ({NAMES[own]}) imports {target} ({NAMES[rank]})")
    return sorted(found)


def package_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every loop among top-level packages (a package -> the packages it imports), each once."""
    loops: list[list[str]] = []

    def walk(path: list[str]) -> None:
        for nxt in sorted(graph.get(path[-1], set())):
            if nxt == path[0]:
                loops.append(path)
            elif nxt not in path and nxt > path[0]:  # start each loop at its least name
                walk([*path, nxt])

    for start in sorted(graph):
        walk([start])
    return loops


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {top: set() for top in PACKAGES}
    for where, _line, target in edges():
        source, imported = Path(where).parts[0], target.partition(".")[0]
        if source != imported:
            graph[source].add(imported)
    return graph


def test_every_import_points_down_the_layers() -> None:
    assert violations() == []


def test_no_top_level_packages_import_each_other_around_a_loop() -> None:
    assert package_cycles(package_graph()) == []


def test_the_cycle_check_sees_a_loop() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert package_cycles(graph) == [["a", "b", "c"]]
    assert package_cycles({"a": {"b"}, "b": set()}) == []


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from assistant.wiring import Components\nfrom ..x import y\n")
    assert imports(bad, "ui.webhooks") == [(2, "assistant.wiring"), (3, "ui.x")]
    assert layer_of("assistant.wiring") == 4 and layer_of("assistant_core.db") == 0
    assert layer_of("assistant_core") == 0 and layer_of("assistantx") is None
    assert layer_of("dialog.steps.answer") == 2 and layer_of("faiss") is None
