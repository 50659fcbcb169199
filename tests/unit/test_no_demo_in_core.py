"""Nothing of the demo shop in core code: its name, its order ids, its domain file and its texts
live only under assistant/demo, so they never reach another company's deployment."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
CORE = ("dialog", "knowledge", "ui", "assistant_core", "assistant/cli", "assistant/wiring.py")
DEMO_NAMES = re.compile(
    r"northwind|\bNW[- ]?\d|\bNW-|assistant/demo/|demo_setup|shipping, returns, your order", re.I
)
ALLOWED = {
    # the composition root chooses the demo when the settings name it: that is its one mention
    "assistant/wiring.py": {"demo_setup"},
}


def _core_files() -> list[Path]:
    files: list[Path] = []
    for name in CORE:
        path = REPO / name
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return files


def test_core_code_names_nothing_of_the_demo() -> None:
    found = []
    for path in _core_files():
        relative = path.relative_to(REPO).as_posix()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for match in DEMO_NAMES.finditer(line):
                if match.group(0) not in ALLOWED.get(relative, set()):
                    found.append(f"{relative}:{number}: {line.strip()}")
    assert found == []


def test_the_demo_is_still_there_and_names_itself() -> None:
    domain = (REPO / "assistant" / "demo" / "domain.yaml").read_text(encoding="utf-8")
    assert "company: Northwind Shop" in domain and 'prefix: "NW-"' in domain
