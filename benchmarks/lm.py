"""LM server benchmark: tokens/s at 1/4/16/64 concurrent requests against a naive loop.

    python -m benchmarks.lm [--max-tokens 32] [--levels 1,4,16,64] [--baseline-requests 8]

The baseline is a sequential `model.generate` loop (greedy, batch 1) on the same loaded model in the
same run; the server side uses streaming requests over HTTP through the embedded server, so its
figures include tokenisation, SSE and HTTP; the clients run in a separate process. Prints and saves
docs/bench/lm.json and the "LM server" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import concurrent.futures as futures
import json
import multiprocessing
import os
import platform
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from benchmarks.doc_sections import markers, write_section

SECTION_START, SECTION_END = markers("lm")
QUESTIONS = [
    "How do I return a pair of shoes?",
    "What is the capital of France?",
    "Write one sentence about the sea.",
    "How long does standard shipping take?",
    "Name three colours.",
    "What is a refund?",
    "Give me a tip for a job interview.",
    "Why is the sky blue?",
    "How do I reset my password?",
    "Describe a cat in one sentence.",
    "What does VAT mean?",
    "Suggest a name for a dog.",
]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; enough for a benchmark table."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def messages(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}]


def naive_loop(server: Any, requests: int, max_tokens: int) -> dict[str, float]:
    """Sequential `model.generate`, one request after the other: what a server without batching
    does."""
    import torch

    from assistant.llm.server.prompts import prompt_ids

    engine = server.engine
    tokens, started = 0, time.perf_counter()
    for i in range(requests):
        ids = torch.tensor([prompt_ids(engine.tokenizer, messages(i), None)])
        with torch.no_grad():
            out = engine.model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=max_tokens,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                eos_token_id=engine.eos_ids,
                pad_token_id=engine.eos_ids[0],
            )
        tokens += int(out.shape[1] - ids.shape[1])
    elapsed = time.perf_counter() - started
    return {
        "requests": requests,
        "tokens": tokens,
        "seconds": round(elapsed, 2),
        "tokens_per_s": round(tokens / elapsed, 1),
    }


def one_stream(base_url: str, i: int, max_tokens: int) -> tuple[float, int]:
    """Time to first content chunk and completion tokens of one streamed request."""
    body = {"messages": messages(i), "max_tokens": max_tokens, "temperature": 0, "stream": True}
    started, first, usage = time.perf_counter(), None, 0
    with httpx.stream("POST", f"{base_url}/chat/completions", json=body, timeout=600) as reply:
        reply.raise_for_status()
        for line in reply.iter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line[6:])
            if first is None and chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                first = time.perf_counter() - started
            if chunk.get("usage"):
                usage = chunk["usage"]["completion_tokens"]
    return (first if first is not None else time.perf_counter() - started), usage


def concurrent_level(base_url: str, level: int, max_tokens: int) -> dict[str, float]:
    """`level` streamed requests at once; aggregate tokens/s over the wall time of the whole
    wave."""
    started = time.perf_counter()
    with futures.ThreadPoolExecutor(level) as pool:
        results = list(pool.map(lambda i: one_stream(base_url, i, max_tokens), range(level)))
    elapsed = time.perf_counter() - started
    ttfts, tokens = [r[0] for r in results], sum(r[1] for r in results)
    return {
        "concurrency": level,
        "tokens": tokens,
        "seconds": round(elapsed, 2),
        "tokens_per_s": round(tokens / elapsed, 1),
        "ttft_p50_s": round(statistics.median(ttfts), 3),
        "ttft_p99_s": round(percentile(ttfts, 99), 3),
    }


def machine() -> str:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{platform.machine()}, {os.cpu_count()} CPU cores, {gpu}, "
        f"Python {platform.python_version()}, torch {torch.__version__}"
    )


def run(max_tokens: int, levels: list[int], baseline_requests: int, threads: int) -> dict[str, Any]:
    import torch
    import transformers

    from assistant.llm.server.config import server_config
    from assistant.llm.server.embedded import BackgroundServer
    from assistant.wiring import quiet_model_libraries
    from assistant_core.settings import load_settings

    quiet_model_libraries()
    config = server_config(
        load_settings(), max_batch=max(levels), max_queue=max(levels), cpu_threads=threads
    )
    with BackgroundServer(config) as server:
        one_stream(server.base_url, 0, 4)  # warm-up
        rows, baselines = [], []
        # a baseline before each level: the machine is shared, its speed drifts
        for level in levels:
            baselines.append(naive_loop(server, baseline_requests, max_tokens))
            with futures.ProcessPoolExecutor(
                1, mp_context=multiprocessing.get_context("spawn")
            ) as clients:
                # the load generator runs in its own process, like real clients: no GIL shared
                # with the server
                rows.append(
                    clients.submit(concurrent_level, server.base_url, level, max_tokens).result()
                )
            rows[-1]["naive_tokens_per_s"] = baselines[-1]["tokens_per_s"]
            rows[-1]["speedup_vs_naive"] = round(
                rows[-1]["tokens_per_s"] / baselines[-1]["tokens_per_s"], 2
            )
            print(json.dumps(rows[-1]), flush=True)
        total_tokens = sum(b["tokens"] for b in baselines)
        total_s = sum(b["seconds"] for b in baselines)
        baseline = {
            "requests": baseline_requests,
            "runs": len(baselines),
            "tokens": total_tokens,
            "seconds": round(total_s, 2),
            "tokens_per_s": round(total_tokens / total_s, 1),
        }
        return {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": machine(),
            "transformers": transformers.__version__,
            "model": config.model_path.name,
            "device": server.engine.device,
            "dtype": str(server.engine.model.dtype).removeprefix("torch."),
            "batching": server.engine.batching,
            "torch_threads": torch.get_num_threads(),
            "max_tokens": max_tokens,
            "baseline": baseline,
            "levels": rows,
        }


def section(r: dict[str, Any]) -> str:
    lines = [
        SECTION_START,
        "## LM server",
        "",
        f"`python -m benchmarks.lm --max-tokens {r['max_tokens']} --threads {r['torch_threads']}`, "
        f"{r['date']}, {r['machine']}, transformers {r['transformers']}, {r['model']} on "
        f"{r['device']} ({r.get('dtype', 'float32')}), {r['torch_threads']} torch thread(s) for "
        "both sides. "
        "**There is no GPU on this machine**: these are CPU figures on a machine shared with other "
        "jobs; the GPU path (bf16, flash attention when installed) is untested here.",
        "",
        "Baseline: a sequential greedy `model.generate` loop (batch 1) on the same model in the "
        f"same run, {r['baseline']['requests']} requests, run right before each level (the shared "
        f"machine's speed drifts); overall **{r['baseline']['tokens_per_s']} tokens/s**.",
        "",
        "| concurrent requests | server tokens/s | naive loop tokens/s (just before) | vs naive "
        "| TTFT p50 | TTFT p99 |",
        "|---|---|---|---|---|---|",
    ]
    for row in r["levels"]:
        lines.append(
            f"| {row['concurrency']} | {row['tokens_per_s']} | {row['naive_tokens_per_s']} | "
            f"{row['speedup_vs_naive']}x | {row['ttft_p50_s']} s | {row['ttft_p99_s']} s |"
        )
    lines += [
        "",
        "Goal: >= 5x the naive loop at 16 concurrent requests. Server figures go through HTTP + "
        "SSE (streamed requests, greedy, up to the token budget or EOS).",
        "",
        verdict(r),
        "",
        "Notes: both sides use the server's thread setting (`ASSISTANT_LLM_CPU_THREADS`; torch's "
        "default, one per core, when 0). On a quiet machine that is the faster setting (16 "
        "concurrent, bf16, 2026-11-30: 108 tokens/s on 2 threads, 86 on 1, while the batch-1 "
        "baseline stays near 17), but when other jobs load this shared 2-core machine OpenMP "
        "threads spin against them and batched steps slow several-fold (once a batch-16 forward "
        "took ~3 s on 2 threads against 0.24 s on 1): `ASSISTANT_LLM_CPU_THREADS=1` suits a "
        "shared host. Where oneDNN has native bf16 (AVX512-BF16, AMX) the model runs in bf16: "
        "prefill and batched decoding take about half the fp32 time, batch-1 decoding (bound by "
        "memory and dispatch) barely gains, so batching gains more: at 16 concurrent 5.57x -> "
        "6.38x on 2 threads, 4.24x -> 4.93x on 1 (fp32 -> bf16, same day). Requests here are "
        "greedy, so they run in the greedy batch (no logits processors); sampled requests batch "
        "separately, and in a standalone continuous-batching run (no HTTP) sampling at 16 requests "
        "gave 48.9 tokens/s against 69.9 greedy, the per-request top-p sort of the vocabulary "
        "being the main extra cost. JSON-schema and forced-tool requests are not in these figures: "
        "they run one at a time beside the batch.",
        SECTION_END,
        "",
    ]
    return "\n".join(lines)


def verdict(r: dict[str, Any]) -> str:
    """Say plainly whether the 16-concurrent goal was met in this run."""
    at16 = next((row for row in r["levels"] if row["concurrency"] == 16), None)
    if at16 is None:
        return "The 16-concurrent level was not run."
    met = "met" if at16["speedup_vs_naive"] >= 5 else "**not met**"
    return f"Goal at 16 concurrent: {met} in this run ({at16['speedup_vs_naive']}x)."


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--levels", default="1,4,16,64")
    parser.add_argument("--baseline-requests", type=int, default=4)
    parser.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (0: torch's default)"
    )
    parser.add_argument("--out", type=Path, default=Path("docs/bench"))
    parser.add_argument("--doc", type=Path, default=Path("docs/benchmarks.md"))
    args = parser.parse_args(argv)
    result = run(
        args.max_tokens,
        [int(x) for x in args.levels.split(",")],
        args.baseline_requests,
        args.threads,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "lm.json").write_text(json.dumps(result, indent=2) + "\n")
    write_section(args.doc, "lm", section(result))
    print(section(result))
    return result


if __name__ == "__main__":
    main()
