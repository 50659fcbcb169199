"""`assistant bench`: results, report, plot and the page's section, with suites swapped for
fakes; the turn suite's turns reach the model."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from assistant.cli.bench import bench
from assistant.wiring import Components
from assistant_core.chat_model import ChatMessages
from assistant_core.settings import Settings
from benchmarks import suite, turn, webhook_workers
from benchmarks.doc_sections import write_section
from benchmarks.serving import free_port
from dialog.messages import Grounding, Reply, Source
from tests.fakes import HashingEmbedder
from ui.signing import verify

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
    assert "| `turn.ttft_ratio_vs_bare_lm` | 2.0 | <= 1.3 | **no** |" in report
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


def test_the_webhook_suite_has_the_worker_scaling_and_queue_ack_goals() -> None:
    goals = {g.key: g for g in suite.GOALS}
    assert goals["webhook.serve_2_vs_1_workers_ratio"].met(1.59) is False
    assert goals["webhook.serve_2_vs_1_workers_ratio"].met(1.6) is True
    assert goals["webhook.serve_ack_p99_ms"].met(300.0) is True
    assert goals["webhook.serve_ack_p99_ms"].met(301.0) is False


def test_the_callback_receiver_times_each_delivery_and_counts_duplicates() -> None:
    with webhook_workers.Receiver().running() as receiver:
        for delivery_id in ("a", "b", "a"):
            httpx.post(receiver.url, json={"delivery_id": delivery_id}, timeout=5)
        last = receiver.wait_for(["a", "b"], timeout_s=5)
        assert last == max(receiver.arrived["a"][0], receiver.arrived["b"][0])
        assert receiver.duplicates() == 1
        with pytest.raises(RuntimeError, match="1 of 2 deliveries got no callback"):
            receiver.wait_for(["a", "c"], timeout_s=0.2)
    assert webhook_workers.percentile([5.0, 1.0, 3.0], 0.5) == 3.0
    assert webhook_workers.percentile([float(n) for n in range(100)], 0.99) == 98.0


@dataclass
class Desk:
    """A stand-in webhook endpoint for the benchmark's sender: checks each signature, answers
    202 (a repeat 200), and closes the connection after every third answer."""

    seen: list[str] = field(default_factory=list)
    status: int = 202

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        body = await webhook_workers.asgi_body(receive)
        verify(
            body,
            headers.get("x-assistant-timestamp"),
            headers.get("x-assistant-signature"),
            [webhook_workers.SECRET],
        )
        delivery_id = json.loads(body)["delivery_id"]
        status = 200 if delivery_id in self.seen else self.status
        self.seen.append(delivery_id)
        answer = json.dumps({"delivery_id": delivery_id}).encode()
        closes = [(b"connection", b"close")] if len(self.seen) % 3 == 0 else []
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-length", str(len(answer)).encode()), *closes],
            }
        )
        await send({"type": "http.response.body", "body": answer})


def test_the_sender_posts_every_delivery_signed_over_reused_connections() -> None:
    desk, port = Desk(), free_port()
    with webhook_workers.serving_asgi(desk.app, port):
        base = f"http://127.0.0.1:{port}"
        ids = [f"d-{n}" for n in range(20)]
        first, acks, retried = asyncio.run(
            webhook_workers._send(base, "http://127.0.0.1:9/callback", ids, in_flight=4)
        )
        assert sorted(desk.seen) == sorted(ids), "each delivery sent once, signed"
        assert len(acks) == 20 and all(ack > 0 for ack in acks) and first > 0
        assert retried == [], "a connection the server closed is reopened, not counted as an error"

        desk.status = 400
        with pytest.raises(RuntimeError, match="answered 400"):
            asyncio.run(webhook_workers._send(base, "http://127.0.0.1:9/cb", ["new"], in_flight=1))


SERVE_FIGURES: dict[str, Any] = {
    "webhook.serve_deliveries_per_s_1_worker": 40.0,
    "webhook.serve_deliveries_per_s_2_workers": 60.0,
    "webhook.serve_2_vs_1_workers_ratio": 1.5,
    "webhook.serve_rounds_1_worker": [39.0, 40.0, 41.0],
    "webhook.serve_rounds_2_workers": [58.0, 60.0, 61.0],
    "webhook.serve_deliveries_per_round": 120,
    "webhook.serve_in_flight": 50,
    "webhook.serve_ack_concurrency": 50,
    "webhook.serve_duplicate_callbacks": 0,
    "webhook.serve_ack_p50_ms_1_worker": 80.0,
    "webhook.serve_ack_p99_ms_1_worker": 150.0,
    "webhook.serve_ack_p50_ms_2_workers": 60.0,
    "webhook.serve_ack_p99_ms_2_workers": 120.0,
    "webhook.serve_ack_p99_ms": 150.0,
    "webhook.serve_cpu_ms_per_delivery_1_worker": {"server": 24.0, "postgres": 5.0},
    "webhook.serve_cpu_ms_per_delivery_2_workers": {"server": 26.0, "postgres": 5.5},
    "webhook.serve_cores_busy_1_worker": {"server": 0.96, "postgres": 0.2},
    "webhook.serve_cores_busy_2_workers": {"server": 1.56, "postgres": 0.33},
    "webhook.serve_other_jobs_at_start": [],
    "webhook.commit": "abc1234",
}


def test_a_webhook_run_writes_its_own_section_with_the_worker_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(suite, "load_suite", lambda name: _fake_suite(**SERVE_FIGURES))
    page = tmp_path / "benchmarks.md"
    suite.run_suites(
        ["webhook"], quick=True, out=tmp_path / "out", progress=lambda _: None, doc=page
    )
    text = page.read_text()
    section = text.split("<!-- webhook:start -->", 1)[1].split("<!-- webhook:end -->", 1)[0]
    assert "| `webhook.serve_2_vs_1_workers_ratio` | | **1.5** | >= 1.6 | **no** |" in section
    assert "80.0 / 150.0 | 60.0 / 120.0 | p99 <= 300 (the worse: 150.0) | yes |" in section
    assert "code abc1234" in section
    assert "| CPU ms per delivery, 2 workers | 5.5 | 26.0 |" in section
    report = (tmp_path / "out" / "report.md").read_text()
    assert "| `webhook.serve_2_vs_1_workers_ratio` | 1.5 | >= 1.6 | **no** |" in report


@pytest.mark.slow
def test_the_webhook_suite_measures_one_and_two_serve_processes_on_postgres() -> None:
    """Real `assistant serve --workers 1` and `--workers 2` (stub LM), tiny sizes: the figures'
    shape, every delivery called back once."""
    tiny = webhook_workers.Sizes(
        rounds=1, deliveries=10, in_flight=5, ack_rounds=1, ack_concurrency=5
    )
    try:
        figures = webhook_workers.run(progress=lambda _: None, sizes=tiny)
    except webhook_workers.NoPostgres as err:
        pytest.skip(str(err))
    one = figures["webhook.serve_deliveries_per_s_1_worker"]
    two = figures["webhook.serve_deliveries_per_s_2_workers"]
    assert one > 0 and two > 0
    assert figures["webhook.serve_2_vs_1_workers_ratio"] == round(two / one, 2)
    assert len(figures["webhook.serve_rounds_1_worker"]) == 1
    assert figures["webhook.serve_duplicate_callbacks"] == 0
    for label in ("1_worker", "2_workers"):
        p50 = figures[f"webhook.serve_ack_p50_ms_{label}"]
        assert 0 < p50 <= figures[f"webhook.serve_ack_p99_ms_{label}"]
    assert figures["webhook.serve_ack_p99_ms"] == max(
        figures["webhook.serve_ack_p99_ms_1_worker"], figures["webhook.serve_ack_p99_ms_2_workers"]
    )


def test_bench_leaves_the_docs_page_alone_unless_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(suite, "load_suite", lambda name: _fake_suite(**{"turn.ttft_ms_p50": 1.0}))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    plain = runner.invoke(bench, ["turn", "--quick", "--out", "out"])
    assert plain.exit_code == 0, plain.output
    assert (tmp_path / "out" / "results.json").is_file()
    assert not (tmp_path / "docs").exists(), "no docs/benchmarks.md written without --update-docs"

    asked = runner.invoke(bench, ["turn", "--quick", "--out", "out", "--update-docs"])
    assert asked.exit_code == 0, asked.output
    assert "<!-- suite-quick:start -->" in (tmp_path / "docs" / "benchmarks.md").read_text()


class RecordingModel(turn.InstantModel):
    """The instant stub, keeping every prompt it streamed an answer to."""

    def __init__(self) -> None:
        super().__init__()
        self.prompts: list[ChatMessages] = []

    def stream(self, messages: ChatMessages, **options: Any) -> Iterator[str]:
        self.prompts.append(list(messages))
        yield from super().stream(messages, **options)


@pytest.fixture
def stub(settings: Settings, tmp_path: Path) -> Iterator[Components]:
    """The turn suite's stub components over a hashing embedder, with a 200-chunk synthetic
    corpus."""
    embedder = turn.SyntheticIngestEmbedder(HashingEmbedder())  # type: ignore[arg-type]
    parts = Components(settings, {"chat_model": turn.InstantModel(), "embedder": embedder})
    yield parts
    parts.close()


def test_turn_suite_turns_reach_the_model(stub: Components, tmp_path: Path) -> None:
    turn.build_knowledge(stub, 200, tmp_path)
    figures = turn.measure_overhead(stub, 12)
    assert figures["p50"] > 0
    assert stub.chat_model.streams == 12  # type: ignore[attr-defined]

    real = RecordingModel()
    ttft = turn.measure_ttft(stub, real, 3, max_tokens=8)
    assert ttft["turns_reaching_lm"] == 3
    assert real.streams == 6, "each round: the turn's answer, then the bare LM's"
    for ours, bare in zip(real.prompts[0::2], real.prompts[1::2], strict=True):
        assert ours != bare, "the bare prompt must not reuse the turn's cached blocks"
        assert [len(str(m["content"])) for m in ours] == [len(str(m["content"])) for m in bare]
        assert "<passage>" in str(ours[-1]["content"])


def test_a_knowledge_base_without_relevant_passages_fails_the_turn_suite(
    stub: Components, tmp_path: Path
) -> None:
    turn.write_corpus(tmp_path / "corpus", 200)
    stub.knowledge.ingest([tmp_path / "corpus"])  # random vectors only: turns abstain
    with pytest.raises(turn.TurnsMissedTheModel, match="no help-centre passage"):
        turn.require_relevant(stub)
    with pytest.raises(turn.TurnsMissedTheModel, match="of 12 turns found no passage or abstained"):
        turn.measure_overhead(stub, 12)


def test_replies_that_abstained_or_skipped_the_model_are_refused() -> None:
    source = Source("faq.md", 1, 0.8, "Shipping costs 4.95 euros.")
    answered = Reply("c", "Shipping costs 4.95 euros.", [source], grounding=Grounding("passed"))
    abstained = Reply("c", "I couldn't find that.", [source], grounding=Grounding("abstained"))
    turn.require_answered([answered, answered], 2, "check")
    with pytest.raises(turn.TurnsMissedTheModel, match="1 of 2 turns"):
        turn.require_answered([answered, abstained], 2, "check")
    with pytest.raises(turn.TurnsMissedTheModel, match="1 LM answers for 2 turns"):
        turn.require_answered([answered, answered], 1, "check")
