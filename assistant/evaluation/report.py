"""The evaluation as Markdown: one summary table (a column per setting, and the model alone), then
each setting's failures."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from assistant.evaluation.runner import EvalReport, RunResult

Row = tuple[str, Callable[[dict[str, Any]], str]]


def _ratio(rate_key: str, part_key: str, whole_key: str) -> Callable[[dict[str, Any]], str]:
    def cell(summary: dict[str, Any]) -> str:
        rate = summary.get(rate_key)
        if rate is None:
            return "—"
        return f"{rate:.2f} ({summary[part_key]}/{summary[whole_key]})"

    return cell


def _count(key: str, extra: str = "") -> Callable[[dict[str, Any]], str]:
    def cell(summary: dict[str, Any]) -> str:
        value = summary.get(key)
        if value is None:
            return "—"
        more = summary.get(extra) if extra else None
        return f"{value}" + (f" ({more} facts)" if more else "")

    return cell


def _latency(summary: dict[str, Any]) -> str:
    p50, p95 = summary.get("latency_ms_p50"), summary.get("latency_ms_p95")
    return "—" if p50 is None else f"{p50:,.0f} / {p95:,.0f}"


def rows(k: int, citations: int) -> list[Row]:
    return [
        (
            "answered (answerable, not abstained)",
            _ratio("answered_rate", "answered", "answerable"),
        ),
        ("answer hit", _ratio("answer_hit_rate", "answer_hits", "answer_hit_questions")),
        (f"source hit@{k}", _ratio("source_hit_at_k", "source_hits_at_k", "source_questions")),
        (
            f"expected source cited (of {citations})",
            _ratio("citation_hit_rate", "citation_hits", "source_questions"),
        ),
        (
            "abstention on unanswerable",
            _ratio("abstention_rate", "abstained_unanswerable", "unanswerable"),
        ),
        ("answers with invented facts", _count("invented_answers", "invented_facts")),
        ("degenerate answers", _count("degenerate_answers")),
        ("errors", _count("errors")),
        ("latency p50 / p95 (ms)", _latency),
    ]


def summary_table(runs: Sequence[RunResult], k: int) -> list[str]:
    citations = max((r.summary.get("citations") or 0 for r in runs), default=0)
    header = "| metric | " + " | ".join(_cell(r.name) for r in runs) + " |"
    lines = [header, "|---" * (len(runs) + 1) + "|"]
    for label, cell in rows(k, citations):
        lines.append(f"| {label} | " + " | ".join(cell(r.summary) for r in runs) + " |")
    return lines


def _cell(text: str, limit: int = 0) -> str:
    flat = re.sub(r"\s+", " ", text).strip()
    if limit and len(flat) > limit:
        flat = flat[: limit - 1].rstrip() + "…"
    return flat.replace("|", "\\|") or "(empty)"


def failures(run: RunResult) -> list[str]:
    failed = [i for i in run.items if i.problems]
    if not failed:
        return [f"### {run.name}: no failures"]
    lines = [
        f"### Failures: {run.name} ({len(failed)} of {len(run.items)})",
        "",
        "| id | question | answer | what was wrong |",
        "|---|---|---|---|",
    ]
    for item in failed:
        lines.append(
            f"| {_cell(item.id)} | {_cell(item.question, 120)} | {_cell(item.answer, 200)} "
            f"| {_cell('; '.join(item.problems), 300)} |"
        )
    return lines


def render_markdown(report: EvalReport, *, with_failures: bool = True) -> str:
    runs = [*report.runs, *([report.baseline] if report.baseline else [])]
    head = [
        f"## Evaluation: {report.name}",
        "",
        f"{report.questions} questions ({report.answerable} answerable, "
        f"{report.unanswerable} unanswerable) from `{report.path}`"
        + (f", on a fresh knowledge base of `{report.corpus}`" if report.corpus else "")
        + f"; {report.duration_s:.0f} s.",
        "",
        *summary_table(runs, report.k),
        "",
    ]
    if report.baseline:
        head += [
            f'"{report.baseline.name}": the same chat model asked each question directly, '
            "without passages; its facts are checked against the expected document.",
            "",
        ]
    if with_failures:
        for run in runs:
            head += [*failures(run), ""]
    return "\n".join(head).rstrip() + "\n"
