"""Turn-level figures: what a turn costs besides generation, and how a turn compares to the bare LM.

Every measured turn must reach the model: the demo help centre (real vectors) answers the questions
beside a synthetic corpus (random vectors), and a turn that abstains fails the suite, since its
time would be retrieval alone.

Run: `python -m benchmarks.turn [--quick]` (or `assistant bench turn`).
"""

from __future__ import annotations

import re
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from assistant.wiring import Components
from assistant_core.chat_model import ChatMessages, ChatModel, Completion
from assistant_core.settings import Settings, load_settings
from benchmarks.serving import run_suite_main
from dialog.messages import Message, Reply
from knowledge.embeddings import Embedder

QUESTIONS = [
    "How much does standard shipping cost?",
    "How do I start a return?",
    "When will I get my refund?",
    "Can I pay with PayPal?",
    "What are your opening hours?",
    "How do I reset my password?",
]
STUB_ANSWER = "Standard shipping costs 4.95 euros and is free over 50 euros."


_PASSAGE = re.compile(r"<passage>\n(.+?)\n</passage>", re.S)


class CallCounter:
    """Thread-safe count of answers streamed: the proof that a turn reached the model."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.streams = 0

    def add(self) -> None:
        with self._lock:
            self.streams += 1


class InstantModel(CallCounter):
    """A stub LM that answers at once with its first passage's first line (a grounded answer), so
    a turn's time is everything but generation."""

    def stream(
        self, messages: ChatMessages, *, max_tokens: int = 256, temperature: float = 0.0
    ) -> Iterator[str]:
        self.add()
        yield grounded_answer(messages)

    def complete(self, messages: ChatMessages, **_: Any) -> Completion:
        return Completion(text=STUB_ANSWER)


class CountingModel(CallCounter):
    """The real LM, counting the answers turns stream from it and keeping their prompts."""

    def __init__(self, inner: ChatModel) -> None:
        super().__init__()
        self.inner = inner
        self.prompts: list[ChatMessages] = []

    def stream(
        self, messages: ChatMessages, *, max_tokens: int = 256, temperature: float = 0.0
    ) -> Iterator[str]:
        self.add()
        self.prompts.append(list(messages))
        yield from self.inner.stream(messages, max_tokens=max_tokens, temperature=temperature)

    def complete(self, messages: ChatMessages, **options: Any) -> Completion:
        return self.inner.complete(messages, **options)


def grounded_answer(messages: ChatMessages) -> str:
    """The first sentence-long line of the prompt's first passage, or a fixed answer when it has
    none."""
    found = _PASSAGE.search(str(messages[-1].get("content", ""))) if messages else None
    lines = found.group(1).splitlines() if found else []
    return next((line.strip() for line in lines if len(line.split()) >= 6), STUB_ANSWER)


class TurnsMissedTheModel(RuntimeError):
    """Some measured turns abstained or never asked the LM: their figures would be meaningless."""


def require_answered(replies: Sequence[Reply], streams: int, what: str) -> None:
    """Every reply drew on passages, none abstained, and the LM streamed an answer for each."""
    missed = [r for r in replies if not r.sources or r.grounding.action == "abstained"]
    if missed:
        raise TurnsMissedTheModel(
            f"{what}: {len(missed)} of {len(replies)} turns found no passage or abstained, "
            f"e.g. {missed[0].answer[:80]!r}"
        )
    if streams < len(replies):
        raise TurnsMissedTheModel(f"{what}: {streams} LM answers for {len(replies)} turns")


class SyntheticIngestEmbedder:
    """Real query embeddings; random unit vectors for ingest batches while `synthetic`, so a
    100k-chunk base builds in minutes (the knowledge base keeps this embedder, so it is switched,
    not replaced)."""

    def __init__(self, real: Embedder) -> None:
        self.real = real
        self.name, self.dimension = real.name, real.dimension
        self.synthetic = True
        self._rng = np.random.default_rng(0)

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        if len(texts) == 1 or not self.synthetic:
            return self.real.embed(texts)
        vectors = self._rng.normal(size=(len(texts), self.dimension)).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def write_corpus(folder: Path, chunks: int, per_file: int = 50) -> None:
    """Markdown files of one-chunk sections; the demo help centre is ingested with real vectors
    beside them."""
    folder.mkdir(parents=True, exist_ok=True)
    words = "order parcel invoice refund delivery account warranty basket voucher courier".split()
    for f in range(max(1, chunks // per_file)):
        sections = [
            f"## Topic {f}-{s}\n\n"
            + " ".join(words[(f + s + i) % len(words)] for i in range(40))
            + f" reference {f}-{s}."
            for s in range(per_file)
        ]
        (folder / f"synthetic-{f:05d}.md").write_text(
            f"# Synthetic {f}\n\n" + "\n\n".join(sections)
        )


def percentiles(samples: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99 of a list of milliseconds."""
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"p50": statistics.median(ordered), "p90": pick(0.90), "p99": pick(0.99)}


def build_knowledge(components: Components, chunks: int, workdir: Path) -> float:
    """Ingest the synthetic corpus and the demo help centre; returns seconds taken."""
    from assistant.demo import HELP_CENTRE

    write_corpus(workdir / "corpus", chunks)
    started = time.perf_counter()
    components.knowledge.ingest([workdir / "corpus"])
    components.embedder.synthetic = False  # type: ignore[attr-defined]
    components.knowledge.ingest([HELP_CENTRE])
    elapsed = time.perf_counter() - started
    require_relevant(components)
    return elapsed


def require_relevant(components: Components) -> None:
    """Each question finds a help-centre passage above the relevance threshold, or the suite
    stops."""
    settings = components.settings
    for question in QUESTIONS:
        hits = components.knowledge.search(question, k=settings.top_k, min_score=settings.min_score)
        if not any("help_centre" in hit.source for hit in hits):
            raise TurnsMissedTheModel(f"turn: no help-centre passage answers {question!r}")


def measure_overhead(components: Components, turns: int) -> dict[str, float]:
    """Per-turn milliseconds with an instant LM: guard, lock, state, embedding, retrieval, prompt,
    persistence."""
    assistant, model = components.assistant, components.chat_model
    samples, replies = [], []
    before = model.streams  # type: ignore[attr-defined]
    for i in range(turns):
        message = Message(
            QUESTIONS[i % len(QUESTIONS)], conversation_id=f"bench-{i % 20}", channel="bench"
        )
        started = time.perf_counter()
        replies.append(assistant.handle(message))
        samples.append((time.perf_counter() - started) * 1000)
    require_answered(replies, model.streams - before, "turn overhead")  # type: ignore[attr-defined]
    return percentiles(samples[min(5, len(samples) // 10) :])


def turns_per_second(components: Components, seconds: float, workers: int = 4) -> float:
    """Stub-LM turns/s from several threads on distinct conversations."""
    assistant = components.assistant
    stop = time.perf_counter() + seconds
    counts = [0] * workers

    def work(n: int) -> None:
        while time.perf_counter() < stop:
            assistant.handle(
                Message(QUESTIONS[counts[n] % len(QUESTIONS)], f"rps-{n}-{counts[n] % 5}", "bench")
            )
            counts[n] += 1

    threads = [threading.Thread(target=work, args=(n,)) for n in range(workers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - started)


def lm_requests_per_second(
    model: ChatModel, messages: ChatMessages, *, requests: int, concurrency: int, max_tokens: int
) -> float:
    """Completed requests/s of the real LM at a given concurrency."""

    def one(_: int) -> None:
        for _delta in model.stream(messages, max_tokens=max_tokens):
            pass

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(requests)))
    return requests / (time.perf_counter() - started)


def first_token_ms(deltas: Iterator[str]) -> float:
    """Milliseconds to the first delta; the rest is drained so the model is free again."""
    started = time.perf_counter()
    first = None
    for _ in deltas:
        if first is None:
            first = (time.perf_counter() - started) * 1000
    return first if first is not None else float("nan")


def measure_ttft(
    components: Components, real: ChatModel, rounds: int, max_tokens: int
) -> dict[str, float]:
    """Whole-turn TTFT against the LM's own TTFT for the same prompt; every turn must have
    streamed its answer from the LM.

    The server keeps finished prompts' KV blocks for prefix sharing, so a prompt sent twice is
    cheaper the second time. Each round's turn therefore follows an opening exchange that carries a
    fresh reference (its prompt is new after the system prompt), and the bare LM gets that very
    prompt with another reference of the same length: both pay the same prefill.
    """
    from dialog.manager import Assistant

    counted = CountingModel(real)
    assistant = Assistant(
        components.store, components.knowledge, counted, components.assistant.options
    )
    assistant.options = type(assistant.options)(
        **{**assistant.options.__dict__, "max_new_tokens": max_tokens}
    )
    turn_ms, bare_ms, replies = [], [], []
    for i in range(rounds):
        conversation_id, ours, theirs = f"ttft-{i}", reference(2 * i), reference(2 * i + 1)
        opener = f"Reference {ours}. {QUESTIONS[(i + 1) % len(QUESTIONS)]}"
        components.assistant.handle(Message(opener, conversation_id, "bench"))  # instant LM
        streams = counted.streams
        started = time.perf_counter()
        turn = assistant.start(Message(QUESTIONS[i % len(QUESTIONS)], conversation_id, "bench"))
        setup_ms = (time.perf_counter() - started) * 1000
        turn_ms.append(setup_ms + first_token_ms(iter(turn)))
        replies.append(turn.reply)
        if counted.streams == streams:
            raise TurnsMissedTheModel(f"turn ttft: no LM answer for {turn.reply.answer[:80]!r}")
        twin = [
            {**m, "content": str(m["content"]).replace(ours, theirs)} for m in counted.prompts[-1]
        ]
        if twin == counted.prompts[-1]:
            raise TurnsMissedTheModel("turn ttft: the opening exchange is not in the turn's prompt")
        bare_ms.append(first_token_ms(iter(real.stream(twin, max_tokens=max_tokens))))
    require_answered(replies, counted.streams, "turn ttft")
    return {
        "turn_ttft_ms_p50": statistics.median(turn_ms),
        "lm_ttft_ms_p50": statistics.median(bare_ms),
        "turns_reaching_lm": counted.streams,
    }


def reference(n: int) -> str:
    """A six-letter reference, distinct for every n (letters only: no slot extractor takes it)."""
    letters = ""
    for _ in range(6):
        n, digit = divmod(n, 26)
        letters += chr(ord("a") + digit)
    return letters


def run(quick: bool = False, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """All turn figures, measured side by side in one process."""
    chunks, turns = (10_000, 60) if quick else (100_000, 300)
    with tempfile.TemporaryDirectory(prefix="assistant-bench-") as tmp:
        base = load_settings()
        settings = Settings(
            **{
                **base.model_dump(exclude={"data_dir", "database_url", "domain"}),
                "data_dir": Path(tmp),
                "domain": "demo",  # the figures on record were measured on the demo shop
            }
        )
        real_parts = Components(settings)
        progress(f"turn: building a {chunks:,}-chunk knowledge base")
        stub = Components(
            settings,
            {
                "chat_model": InstantModel(),
                "embedder": SyntheticIngestEmbedder(real_parts.embedder),
            },
        )
        ingest_s = build_knowledge(stub, chunks, Path(tmp))
        stub.__dict__.pop("assistant", None)
        progress("turn: overhead with an instant LM")
        overhead = measure_overhead(stub, turns)
        stub_rps = turns_per_second(stub, 10 if quick else 30)
        progress("turn: the real LM's requests/s and time to first token")
        real = real_parts.chat_model
        real_parts.__dict__["knowledge"] = stub.knowledge
        hits = stub.knowledge.search(QUESTIONS[0], k=settings.top_k, min_score=settings.min_score)
        from dialog.prompt import build_messages

        lm_tokens = 32 if quick else settings.max_new_tokens
        lm_rps = lm_requests_per_second(
            real,
            build_messages(QUESTIONS[0], hits, []),
            requests=16 if quick else 64,
            concurrency=16,
            max_tokens=lm_tokens,
        )
        ttft = measure_ttft(stub, real, 10 if quick else 20, max_tokens=8)
        real_parts.close()
        stub.close()
    return {
        "turn.overhead_ms_p50": round(overhead["p50"], 2),
        "turn.overhead_ms_p90": round(overhead["p90"], 2),
        "turn.overhead_ms_p99": round(overhead["p99"], 2),
        "turn.ttft_ratio_vs_bare_lm": round(ttft["turn_ttft_ms_p50"] / ttft["lm_ttft_ms_p50"], 3),
        "turn.ttft_ms_p50": round(ttft["turn_ttft_ms_p50"], 1),
        "turn.lm_ttft_ms_p50": round(ttft["lm_ttft_ms_p50"], 1),
        "turn.stub_turns_per_s": round(stub_rps, 1),
        "turn.lm_requests_per_s": round(lm_rps, 3),
        "turn.lm_max_tokens": lm_tokens,
        "turn.stub_turns_per_s_ratio_vs_lm_rps": round(stub_rps / lm_rps, 1),
        "turn.ttft_turns_reaching_lm": ttft["turns_reaching_lm"],
        "turn.kb_chunks": chunks,
        "turn.kb_build_s": round(ingest_s, 1),
    }


if __name__ == "__main__":
    run_suite_main("turn", run, __doc__)
