"""The package code type-checks (mypy, configured in pyproject.toml): type debt fails the build, and
every `# type: ignore` left says on its line why it is there."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("assistant", "dialog", "knowledge", "ui")
CACHE = ROOT / ".cache" / "mypy"
"""Kept between runs (ignored by git): a warm check takes seconds, a cold one about a minute."""
IGNORE = re.compile(r"#\s*type:\s*ignore(\[[^\]]*\])?(?P<after>.*)$")


def test_mypy_is_clean() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(CACHE)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]


def test_every_type_ignore_says_why() -> None:
    bare = [
        f"{path.relative_to(ROOT)}:{number}"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if (found := IGNORE.search(line)) and not found["after"].strip().startswith("#")
    ]
    assert bare == [], "a `# type: ignore[code]` needs `# why` after it on its line"
