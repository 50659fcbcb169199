"""Answer quality on the development set: the Python documentation (a corpus the assistant was never
tuned on) and the demo help centre, each ingested into a fresh knowledge base, with the chat model
alone as the baseline in the same run.

Run: `python -m benchmarks.eval [--quick] [--out DIR] [--compare KEY=VALUE,...] [--update-docs]`.
Writes OUT/eval.json and OUT/eval.md; `--update-docs` also rewrites the "Evaluation" section of
docs/benchmarks.md (nothing else writes that page).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assistant.evaluation import (
    EvalReport,
    ItemResult,
    Variant,
    evaluate,
    load_questions,
    render_markdown,
    subset,
    summarise,
)
from assistant.evaluation.report import summary_table
from assistant.evaluation.runner import RunResult
from benchmarks.doc_sections import markers, write_section

DEVSET = Path(__file__).resolve().parent / "devset"
ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "evaluation"


@dataclass(frozen=True)
class DevSet:
    name: str
    questions: Path
    corpus: Path
    settings: dict[str, Any]
    """Settings for this corpus: the Python docs are not the demo shop, so no shop domain."""
    quick: int
    """Questions in a quick run."""


def dev_sets() -> list[DevSet]:
    from assistant.demo import HELP_CENTRE

    return [
        DevSet(
            "python_docs",
            DEVSET / "python_docs.yaml",
            DEVSET / "python_docs",
            {"domain": "none"},
            6,
        ),
        DevSet("help_centre", DEVSET / "help_centre.yaml", HELP_CENTRE, {}, 4),
    ]


@dataclass(frozen=True)
class Goal:
    key: str
    label: str
    op: str
    target: float

    def met(self, value: float | None) -> bool | None:
        if value is None:
            return None
        return value <= self.target if self.op == "<=" else value >= self.target


GOALS = [
    Goal("invented_answers", "answers with invented facts", "<=", 0),
    Goal("degenerate_answers", "degenerate answers", "<=", 0),
    Goal("abstention_rate", "abstention on unanswerable", ">=", 0.9),
    Goal("answered_rate", "answerable questions answered (not abstained)", ">=", 0.85),
    Goal("answer_hit_rate", "answer hit (expected text in the answer or its quotes)", ">=", 0.6),
    Goal("source_hit_at_k", "source hit@5", ">=", 0.9),
]


def combined(reports: Sequence[EvalReport], question_sets: Sequence[Any]) -> dict[str, Any]:
    """Each column's figures over every set together (the goals are on the whole dev set)."""
    questions = [q for qs in question_sets for q in qs.questions]
    out: dict[str, Any] = {}
    names = [r.name for r in reports[0].runs] if reports else []
    for index, name in enumerate(names):
        items: list[ItemResult] = [item for r in reports for item in r.runs[index].items]
        citations = reports[0].runs[index].summary["citations"]
        out[name] = summarise(questions, items, k=reports[0].k, citations=citations)
    if reports and all(r.baseline for r in reports):
        from assistant.evaluation.runner import baseline_summary

        items = [item for r in reports for item in r.baseline.items]  # type: ignore[union-attr]
        out[reports[0].baseline.name] = baseline_summary(questions, items)  # type: ignore[union-attr]
    return out


def goal_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "key": g.key,
            "label": g.label,
            "goal": f"{g.op} {g.target:g}",
            "value": summary.get(g.key),
            "met": g.met(summary.get(g.key)),
        }
        for g in GOALS
    ]


def goal_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    lines = ["| figure | value | goal | met |", "|---|---|---|---|"]
    for row in rows:
        met = "n/a" if row["met"] is None else ("yes" if row["met"] else "**no**")
        lines.append(f"| {row['label']} | {row['value']} | {row['goal']} | {met} |")
    return lines


def failures_by_kind(report: EvalReport) -> dict[str, list[str]]:
    """Question ids by what went wrong, for the first column."""
    kinds: dict[str, list[str]] = {}
    for item in report.runs[0].items:
        for problem in item.problems:
            kind = problem.split(":")[0]
            kinds.setdefault(kind, []).append(item.id)
    return kinds


def run(
    *,
    quick: bool = False,
    variants: Sequence[Variant] = (),
    baseline: bool = True,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    from assistant.wiring import quiet_model_libraries

    quiet_model_libraries()
    reports: list[EvalReport] = []
    question_sets = []
    started = datetime.now(UTC).isoformat(timespec="seconds")
    for dev in dev_sets():
        question_set = load_questions(dev.questions)
        if quick:
            question_set = subset(question_set, dev.quick)
        question_sets.append(question_set)
        reports.append(_evaluate_set(dev, question_set, variants, baseline, progress))
    totals = combined(reports, question_sets)
    first = next(iter(totals.values()))
    return {
        "started": started,
        "quick": quick,
        "cpu_cores": os.cpu_count(),
        "commit": _commit(),
        "load_average": _load(),
        "sets": {dev.name: r.as_json() for dev, r in zip(dev_sets(), reports, strict=True)},
        "combined": totals,
        "goals": goal_rows(first),
        "failures_by_kind": {
            dev.name: failures_by_kind(r) for dev, r in zip(dev_sets(), reports, strict=True)
        },
    }


def _evaluate_set(
    dev: DevSet,
    question_set: Any,
    variants: Sequence[Variant],
    baseline: bool,
    progress: Callable[[str], None],
) -> EvalReport:
    from assistant_core.settings import load_settings

    done = 0
    total = len(question_set.questions) * ((len(variants) or 1) + (1 if baseline else 0))

    def on_item(name: str, item: ItemResult) -> None:
        nonlocal done
        done += 1
        mark = "ok" if not item.problems else "; ".join(item.problems)[:120]
        progress(f"{dev.name} [{done}/{total}] {name}: {item.id}: {mark}")

    report = evaluate(
        question_set,
        base=load_settings(**dev.settings),
        variants=list(variants) or [Variant(label="assistant")],
        corpus=dev.corpus,
        baseline=baseline,
        k=5,
        on_item=on_item,
        status=lambda text: progress(f"{dev.name}: {text}"),
    )
    report.path, report.corpus = _relative(dev.questions), _relative(dev.corpus)
    return report


def _relative(path: Path) -> str:
    """Paths in the reports relative to the repository, so committed results name no machine."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _commit() -> str:
    """The code measured: HEAD, and whether the working tree had changes."""
    import subprocess

    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{head}{' with uncommitted changes' if dirty else ''}" if head else "unknown"


def _busy(results: dict[str, Any]) -> list[str]:
    """A note when other work shared the CPUs: latencies then include waiting for them."""
    try:
        load = float(str(results.get("load_average", "")).split()[0])
    except (IndexError, ValueError):
        return []
    cores = results.get("cpu_cores") or 1
    if load <= cores:
        return []
    return [
        f"The machine was busy (load {load:.1f} on {cores} cores): the latencies include waiting "
        "for the CPUs; the other figures do not depend on speed.",
        "",
    ]


def _topics() -> int:
    return len(list((DEVSET / "python_docs").glob("*.txt")))


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover
        return "n/a"


def reports_of(results: dict[str, Any]) -> list[EvalReport]:
    return [EvalReport.from_json(data) for data in results["sets"].values()]


def render(results: dict[str, Any]) -> str:
    """The whole run as Markdown: goals, both sets together, then each set's report with its
    failures."""
    reports = reports_of(results)
    totals = results["combined"]
    runs = [RunResult(name, {}, summary, []) for name, summary in totals.items()]
    lines = [
        f"# Evaluation on the development set ({'quick' if results['quick'] else 'full'} run)",
        "",
        f"Started {results['started']}, {results['cpu_cores']} CPU cores, load average "
        f"{results['load_average']}.",
        "",
        "## Goals (both sets together, first column)",
        "",
        *goal_table(results["goals"]),
        "",
        "## Both sets together",
        "",
        *summary_table(runs, 5),
        "",
    ]
    for report in reports:
        lines += [render_markdown(report), ""]
    return "\n".join(lines).rstrip() + "\n"


def doc_section(results: dict[str, Any], out: Path) -> str:
    """The "Evaluation" section of docs/benchmarks.md: goals and summary tables, failures by
    kind."""
    reports = reports_of(results)
    start, end = markers(SECTION)
    totals = results["combined"]
    runs = [RunResult(name, {}, summary, []) for name, summary in totals.items()]
    lines = [
        start,
        "## Evaluation (answer quality)",
        "",
        f"`python -m benchmarks.eval{' --quick' if results['quick'] else ''} --update-docs`, "
        f"started {results['started']} on the {results['cpu_cores']}-core CPU machine (load "
        f"average {results['load_average']}), code {results.get('commit', 'unknown')}, the "
        "packaged SmolLM2-135M. The development set "
        "(`benchmarks/devset/`): questions over the Python documentation shipped with the "
        f"standard library (`pydoc_data.topics`, {_topics()} topics rendered to text) and over "
        "the demo help centre, each ingested into a fresh knowledge base; "
        '"model alone" is the same chat model asked without passages. Every answer and failure '
        "is in "
        f"`{out / 'eval.json'}` and `{out / 'eval.md'}`.",
        "",
        *_busy(results),
        *goal_table(results["goals"]),
        "",
        "Both sets together:",
        "",
        *summary_table(runs, 5),
        "",
    ]
    for report in reports:
        lines += [
            f"{report.name} ({report.answerable} answerable, {report.unanswerable} unanswerable):",
            "",
            *summary_table([*report.runs, *([report.baseline] if report.baseline else [])], 5),
            "",
        ]
    lines += ["Failures of the assistant, by kind (question ids):", ""]
    for name, kinds in results["failures_by_kind"].items():
        for kind, ids in sorted(kinds.items()):
            lines.append(f"- {name}, {kind}: {', '.join(ids)}")
    lines.append(end)
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a handful of questions per set")
    parser.add_argument("--out", type=Path, default=Path("docs/bench/eval"))
    parser.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="KEY=VALUE[,KEY=VALUE]",
        help="settings to evaluate side by side (repeat); default: the configured settings",
    )
    parser.add_argument("--no-baseline", action="store_true", help="skip the model alone")
    parser.add_argument(
        "--update-docs",
        action="store_true",
        help=f"rewrite the Evaluation section of {DOC.name} with this run's figures",
    )
    parser.add_argument("--doc", type=Path, default=DOC, help=argparse.SUPPRESS)
    parser.add_argument("--no-doc", action="store_true", help="(the default) leave the page alone")
    parser.add_argument(
        "--from-json",
        type=Path,
        metavar="EVAL_JSON",
        help="render (and with --update-docs, document) a finished run instead of running",
    )
    args = parser.parse_args(argv)
    variants = [Variant.parse(spec) for spec in args.compare]

    def progress(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    if args.from_json:
        results = json.loads(args.from_json.read_text())
    else:
        results = run(
            quick=args.quick, variants=variants, baseline=not args.no_baseline, progress=progress
        )
        text = json.dumps(results, indent=2, ensure_ascii=False)
        (args.out / "eval.json").write_text(text + "\n")
    markdown = render(results)
    (args.out / "eval.md").write_text(markdown)
    if args.update_docs and not args.no_doc:
        write_section(args.doc, SECTION, doc_section(results, args.out))
    print(markdown.split("\n## Evaluation: ")[0])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
