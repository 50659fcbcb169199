"""`assistant bench`: run the suites, gather their figures into results.json, report.md and a
plot."""

from __future__ import annotations

import importlib
import json
import operator
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.doc_sections import markers, write_section

COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">=": operator.ge,
    ">": operator.gt,
}


@dataclass(frozen=True)
class Goal:
    """A figure's target: `<`, `<=`, `>=` or `>` a bound."""

    key: str
    op: str
    bound: float

    def met(self, value: float | None) -> bool | None:
        if value is None:
            return None
        return bool(COMPARE[self.op](value, self.bound))


SUITES: dict[str, str] = {
    "retrieval": "benchmarks.knowledge:run_retrieval",
    "ingest": "benchmarks.knowledge:run_ingest",
    "lm": "benchmarks.suite:run_lm",
    "turn": "benchmarks.turn:run",
    "webhook": "benchmarks.webhook:run",
}

GOALS = [
    Goal("retrieval.qps_ratio_vs_faiss", ">=", 0.9),
    Goal("retrieval.recall_at_10", ">=", 0.95),
    Goal("ingest.throughput_ratio_vs_encode", ">=", 0.9),
    Goal("lm.speedup_16_vs_sequential_generate", ">=", 5.0),
    Goal("turn.overhead_ms_p50", "<=", 25.0),
    Goal("turn.ttft_ratio_vs_bare_lm", "<=", 1.3),
    Goal("turn.stub_turns_per_s_ratio_vs_lm_rps", ">=", 10.0),
    Goal("webhook.ack_p99_ms", "<", 1000.0),
    Goal("webhook.serve_2_vs_1_workers_ratio", ">=", 1.6),
    Goal("webhook.serve_ack_p99_ms", "<=", 300.0),
]
REQUIRED = [g.key for g in GOALS] + ["lm.ttft_p50_ms"]


def run_lm(*, quick: bool = False, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """The LM server against a sequential `model.generate` loop, flattened into results.json
    keys.

    The figure of record uses the server's own thread setting (`ASSISTANT_LLM_CPU_THREADS`, torch's
    default when 0) for both sides; the full run also measures 16 concurrent on one thread, the
    setting that suffers least from other jobs on a shared machine.
    """
    import torch

    from assistant_core.settings import load_settings
    from benchmarks import lm

    levels = [1, 4, 16] if quick else [1, 4, 16, 64]
    progress(f"lm: server at {levels} concurrent requests vs a naive generate loop")
    threads_before = torch.get_num_threads()
    result = lm.run(
        max_tokens=24 if quick else 32,
        levels=levels,
        baseline_requests=4 if quick else 8,
        threads=load_settings().llm_cpu_threads,
    )
    rows = {row["concurrency"]: row for row in result["levels"]}
    flat: dict[str, Any] = {
        "lm.sequential_generate_tokens_per_s": result["baseline"]["tokens_per_s"],
        "lm.speedup_16_vs_sequential_generate": rows[16]["speedup_vs_naive"],
        "lm.ttft_p50_ms": round(rows[1]["ttft_p50_s"] * 1000, 1),
        "lm.ttft_p99_ms": round(rows[1]["ttft_p99_s"] * 1000, 1),
        "lm.batching": result["batching"],
        "lm.max_tokens": result["max_tokens"],
        "lm.torch_threads": result["torch_threads"],
        "lm.dtype": result["dtype"],
    }
    for level, row in rows.items():
        flat[f"lm.tokens_per_s_at_{level}"] = row["tokens_per_s"]
        flat[f"lm.ttft_p50_ms_at_{level}"] = round(row["ttft_p50_s"] * 1000, 1)
    if not quick and threads_before > 1:
        progress("lm: 16 concurrent on one torch thread")
        try:
            one = lm.run(max_tokens=32, levels=[16], baseline_requests=4, threads=1)
        finally:
            torch.set_num_threads(threads_before)
        flat["lm.speedup_16_one_thread"] = one["levels"][0]["speedup_vs_naive"]
    return flat


def device_name() -> str:
    """The accelerator the figures were taken on, or the CPU."""
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    except ImportError:  # pragma: no cover
        pass
    import os

    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def load_suite(name: str) -> Callable[..., dict[str, Any]]:
    module, _, attribute = SUITES[name].partition(":")
    return getattr(importlib.import_module(module), attribute)  # type: ignore[no-any-return]


def run_suites(
    names: Sequence[str],
    *,
    quick: bool,
    out: Path,
    progress: Callable[[str], None],
    doc: Path | None = None,
) -> dict[str, Any]:
    """Run each suite in turn; a suite that fails is recorded with its error and the rest go on."""
    results: dict[str, Any] = {
        "device": device_name(),
        "quick": quick,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_average": round(os.getloadavg()[0], 1),
    }
    errors: dict[str, str] = {}
    for name in names:
        progress(f"[{name}] running")
        started = time.perf_counter()
        try:
            results.update(load_suite(name)(quick=quick, progress=progress))
        except Exception as err:  # one broken suite must not lose the others' figures
            errors[name] = f"{type(err).__name__}: {err}"
            progress(f"[{name}] failed: {errors[name]}")
        results[f"{name}.seconds"] = round(time.perf_counter() - started, 1)
    if errors:
        results["errors"] = errors
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True))
    (out / "report.md").write_text(render_report(results))
    plot(results, out / "plot.png")
    if doc is not None:
        write_section(doc, f"suite-{'quick' if quick else 'full'}", doc_section(results, out))
        if "webhook.serve_2_vs_1_workers_ratio" in results:
            from benchmarks.webhook_workers import doc_section as webhook_section

            write_section(doc, "webhook", webhook_section(results))
    return results


def goal_table(results: dict[str, Any]) -> list[str]:
    """Markdown rows: every goal, its figure and whether this run met it."""
    lines = ["| figure | value | goal | met |", "|---|---|---|---|"]
    for goal in GOALS:
        value = results.get(goal.key)
        met = goal.met(value)
        mark = "n/a" if met is None else ("yes" if met else "**no**")
        shown = value if value is not None else "—"
        lines.append(f"| `{goal.key}` | {shown} | {goal.op} {goal.bound:g} | {mark} |")
    return lines


def failure_lines(results: dict[str, Any]) -> list[str]:
    """One bold line per suite that failed, with its error."""
    return [f"\n**{name} failed**: `{error}`" for name, error in results.get("errors", {}).items()]


def render_report(results: dict[str, Any]) -> str:
    """The goals table, then every figure of the run."""
    lines = [
        f"# Benchmark report ({'quick' if results.get('quick') else 'full'})",
        "",
        f"Device: {results.get('device')}. Started {results.get('started')}. "
        "Ratios are measured side by side in one run.",
        "",
        *goal_table(results),
    ]
    lines += ["", "## All figures", "", "| key | value |", "|---|---|"]
    lines += [f"| `{k}` | {v} |" for k, v in sorted(results.items()) if k not in {"errors"}]
    lines += failure_lines(results)
    lines.append("\n![throughput and latency](plot.png)")
    return "\n".join(lines) + "\n"


def doc_section(results: dict[str, Any], out: Path) -> str:
    """The run's goals for docs/benchmarks.md; a quick and a full run each keep their own
    section."""
    kind = "quick" if results.get("quick") else "full"
    start, end = markers(f"suite-{kind}")
    suites = sorted({k.split(".")[0] for k in results if "." in k})
    return "\n".join(
        [
            start,
            f"## `assistant bench{' --quick' if kind == 'quick' else ''}` ({kind} run)",
            "",
            f"Started {results.get('started')} on {results.get('device')}, "
            f"{os.cpu_count()} CPU cores, load average {results.get('load_average')} at start; "
            f"suites: {', '.join(suites)}. Every figure in `{out / 'results.json'}`, "
            f"the report and plot beside it.",
            "",
            *goal_table(results),
            *failure_lines(results),
            end,
        ]
    )


def plot(results: dict[str, Any], path: Path) -> None:
    """Throughput against concurrency (LM server vs naive generate) and latency percentiles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    levels = [c for c in (1, 4, 16, 64) if f"lm.tokens_per_s_at_{c}" in results]
    if levels:
        left.plot(
            levels,
            [results[f"lm.tokens_per_s_at_{c}"] for c in levels],
            marker="o",
            label="model server",
        )
        if "lm.sequential_generate_tokens_per_s" in results:
            left.axhline(
                results["lm.sequential_generate_tokens_per_s"],
                color="grey",
                linestyle="--",
                label="sequential generate",
            )
        left.set_xscale("log", base=2)
        left.legend()
    left.set(title="LM throughput", xlabel="concurrent requests", ylabel="tokens/s")
    groups = {
        "turn overhead": ("turn.overhead_ms_p50", "turn.overhead_ms_p90", "turn.overhead_ms_p99"),
        "webhook ack": ("webhook.ack_p50_ms", None, "webhook.ack_p99_ms"),
        "LM TTFT": ("lm.ttft_p50_ms", None, "lm.ttft_p99_ms"),
    }
    names = [n for n, keys in groups.items() if keys[0] in results]
    for offset, (label, index) in enumerate((("p50", 0), ("p90", 1), ("p99", 2))):
        values = [results.get(groups[n][index] or "", 0) for n in names]
        right.bar([i + offset * 0.27 for i in range(len(names))], values, width=0.27, label=label)
    right.set_xticks([i + 0.27 for i in range(len(names))], names)
    right.set(title="Latency percentiles", ylabel="ms")
    right.set_yscale("log")
    right.legend()
    figure.suptitle(f"{results.get('device')} ({'quick' if results.get('quick') else 'full'})")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
