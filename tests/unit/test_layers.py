"""Dependencies point one way: core <- knowledge <- dialog <- ui <- the composition (the rest of
assistant/). Every import counts, also those inside functions and under TYPE_CHECKING."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("assistant", "dialog", "knowledge", "ui")
LAYERS = {"assistant.core": 0, "knowledge": 1, "dialog": 2, "ui": 3, "assistant": 4}
NAMES = {0: "assistant.core", 1: "knowledge", 2: "dialog", 3: "ui", 4: "the composition"}


def layer_of(module: str) -> int | None:
    """The layer of a module of ours, or None for a third-party or standard module."""
    for prefix, rank in LAYERS.items():  # most specific prefix first
        if module == prefix or module.startswith(prefix + "."):
            return rank
    return None


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


def violations() -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            module = module_name(path)
            own = layer_of(module)
            assert own is not None
            package = module if path.name == "__init__.py" else module.rpartition(".")[0]
            for line, target in imports(path, package):
                rank = layer_of(target)
                if rank is not None and rank > own:
                    where = f"{path.relative_to(ROOT)}:{line}"
                    found.append(f"{where} ({NAMES[own]}) imports {target} ({NAMES[rank]})")
    return sorted(found)


def test_every_import_points_down_the_layers() -> None:
    assert violations() == []


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from assistant.wiring import Components\nfrom ..x import y\n")
    assert imports(bad, "ui.webhooks") == [(2, "assistant.wiring"), (3, "ui.x")]
    assert layer_of("assistant.wiring") == 4 and layer_of("assistant.core.db") == 0
    assert layer_of("dialog.steps.answer") == 2 and layer_of("faiss") is None
