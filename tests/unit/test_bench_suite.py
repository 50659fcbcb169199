"""`assistant bench`: results, report, plot and the page's section, with suites swapped for
fakes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks import suite
from benchmarks.doc_sections import write_section

pytestmark = pytest.mark.unit


def test_a_section_is_appended_once_then_replaced_in_place(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    page.write_text("# Benchmarks\n\n<!-- lm:start -->\nLM figures\n<!-- lm:end -->\n")
    write_section(page, "turn", "<!-- turn:start -->\nfirst\n<!-- turn:end -->")
    write_section(page, "turn", "<!-- turn:start -->\nsecond\n<!-- turn:end -->")
    text = page.read_text()
    assert "LM figures" in text and "second" in text
    assert "first" not in text and text.count("<!-- turn:start -->") == 1


def _fake_suite(**figures: Any) -> Any:
    def run(*, quick: bool, progress: Any) -> dict[str, Any]:
        progress("fake suite")
        return dict(figures, **{"fake.quick": quick})

    return run


def _broken_suite(*, quick: bool, progress: Any) -> dict[str, Any]:
    raise RuntimeError("the model would not load")


def test_run_writes_results_report_plot_and_the_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    suites = {
        "turn": _fake_suite(**{"turn.overhead_ms_p50": 12.5, "turn.ttft_ratio_vs_bare_lm": 2.0}),
        "lm": _broken_suite,
    }
    monkeypatch.setattr(suite, "load_suite", suites.__getitem__)
    page = tmp_path / "benchmarks.md"
    results = suite.run_suites(
        ["turn", "lm"], quick=True, out=tmp_path / "out", progress=lambda _: None, doc=page
    )

    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["turn.overhead_ms_p50"] == 12.5 and saved["quick"] is True
    assert "device" in saved and saved["errors"]["lm"] == "RuntimeError: the model would not load"
    assert results == saved
    assert (tmp_path / "out" / "plot.png").read_bytes().startswith(b"\x89PNG")
    report = (tmp_path / "out" / "report.md").read_text()
    assert "| `turn.overhead_ms_p50` | 12.5 | <= 25 | yes |" in report
    assert "| `turn.ttft_ratio_vs_bare_lm` | 2.0 | <= 1.5 | **no** |" in report
    section = page.read_text()
    assert "<!-- suite-quick:start -->" in section and "**lm failed**" in section
    assert "| `turn.overhead_ms_p50` | 12.5 | <= 25 | yes |" in section


@pytest.mark.parametrize(
    ("op", "value", "met"),
    [
        ("<", 999.0, True),
        ("<", 1000.0, False),
        ("<", 2353.6, False),
        ("<=", 25.0, True),
        (">=", 0.86, False),
        (">=", 0.9, True),
        (">", 0.9, False),
    ],
)
def test_each_goal_operator_is_honoured(op: str, value: float, met: bool) -> None:
    bounds = {"<": 1000.0, "<=": 25.0, ">=": 0.9, ">": 0.9}
    assert suite.Goal("figure", op, bounds[op]).met(value) is met


def test_the_webhook_goal_is_strictly_under_a_second() -> None:
    goal = next(g for g in suite.GOALS if g.key == "webhook.ack_p99_ms")
    assert goal.met(2353.6) is False and goal.met(640.0) is True
